"""Request and reply envelopes: what the gateway writes is what a service reads, and back."""
import orjson
import pytest

from streamkit.errors import EnvelopeError
from streamkit.envelope import ReplyEnvelope, RequestEnvelope, entity_of


def request(**changes):
    fields = dict(id="p-1", reply_to="gw-responses", instance="http://127.0.0.1:7001",
                  method="PUT", path="o-17/items", query={"x": "1", "y": ["a", "b"]},
                  body={"n": 3, "text": "été"}, deadline_ms=1_700_000_010_000, trace_id="t1",
                  request_id="r-9", sent_ms=1_700_000_000_000)
    fields.update(changes)
    return RequestEnvelope(**fields)


def test_request_envelope_round_trips_every_field():
    env = request()
    again = RequestEnvelope.decode(env.encode())
    assert again == env
    raw = orjson.loads(env.encode())
    assert raw["v"] == 1
    assert raw["reply_to"] == "gw-responses" and raw["instance"] == "http://127.0.0.1:7001"
    assert raw["deadline_ms"] == 1_700_000_010_000 and raw["trace_id"] == "t1"


def test_requests_for_one_entity_share_a_key_then_the_request_id_then_the_correlation_id():
    assert request(path="o-17/items").key() == b"o-17"
    assert request(path="o-17", request_id="k").key() == b"o-17"
    # Without an entity, a client's retries (same request id) share a partition.
    assert request(path="", request_id="k").key() == b"k"
    assert request(path="", request_id=None).key() == b"p-1"
    assert entity_of("/c1/basket") == "c1"
    assert entity_of("") is None and entity_of("/") is None


@pytest.mark.parametrize("data, fragment", [
    (b"", "empty"),
    (b"{nope", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (orjson.dumps({"reply_to": "r", "instance": "i", "method": "GET"}), "'id'"),
    (orjson.dumps({"id": "x", "instance": "i", "method": "GET"}), "'reply_to'"),
    (orjson.dumps({"id": "x", "reply_to": "r", "instance": "i", "method": "BREW"}), "BREW"),
    (orjson.dumps({"id": "x", "reply_to": "r", "instance": "i", "method": "GET",
                   "query": [1]}), "query"),
    (orjson.dumps({"id": "x", "reply_to": "r", "instance": "i", "method": "GET",
                   "deadline_ms": "soon"}), "deadline_ms"),
    (orjson.dumps({"id": "x", "reply_to": "r", "instance": "i", "method": "GET",
                   "deadline_ms": True}), "deadline_ms"),
    (orjson.dumps({"id": "x", "reply_to": "r", "instance": "i", "method": "GET",
                   "sent_ms": {"at": 1}}), "sent_ms"),
    (orjson.dumps({"id": "x", "reply_to": "r", "instance": "i", "method": "GET",
                   "request_id": 5}), "request_id"),
])
def test_bad_request_envelopes_are_refused_with_what_could_be_read(data, fragment):
    with pytest.raises(EnvelopeError) as info:
        RequestEnvelope.decode(data)
    assert fragment in str(info.value)
    if b'"id"' in data:
        assert info.value.partial["id"] == "x"


def test_reply_envelope_round_trips_and_gives_the_http_body():
    ok = ReplyEnvelope(id="p-1", status=201, body={"order_id": "o-1"}, instance="http://a:1",
                       trace_id="t", entity={"app": "orders", "table": "orders", "key": "o-1"})
    assert ReplyEnvelope.decode(ok.encode()) == ok
    assert ok.http_body() == {"order_id": "o-1"}
    failed = ReplyEnvelope(id="p-2", status=409, error={"code": "conflict", "message": "m"})
    assert ReplyEnvelope.decode(failed.encode()).http_body() == {
        "error": {"code": "conflict", "message": "m"}}


def test_a_reply_without_an_id_takes_the_record_key_which_is_the_correlation_id():
    reply = ReplyEnvelope.decode(orjson.dumps({"status": 200, "body": 1}), key=b"p-7")
    assert (reply.id, reply.status, reply.body, reply.instance) == ("p-7", 200, 1, None)


@pytest.mark.parametrize("obj", [{"id": "x"}, {"id": "x", "status": 99}, {"id": "x", "status": "200"},
                                 {"status": 200}])
def test_replies_without_a_valid_status_or_id_are_refused(obj):
    with pytest.raises(EnvelopeError):
        ReplyEnvelope.decode(orjson.dumps(obj))


def test_a_reply_whose_instance_is_not_a_url_has_none():
    for instance in (5, ["http://a:1"], "", None):
        reply = ReplyEnvelope.decode(orjson.dumps({"id": "x", "status": 200,
                                                   "instance": instance}))
        assert (reply.id, reply.instance) == ("x", None)


def test_a_request_s_times_may_be_whole_numbers_written_as_floats():
    env = RequestEnvelope.decode(orjson.dumps({"id": "x", "reply_to": "r", "instance": "i",
                                               "method": "GET", "deadline_ms": 1.7e12}))
    assert env.deadline_ms == 1_700_000_000_000 and env.sent_ms == 0
