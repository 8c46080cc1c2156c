"""The service helper's parts without a broker: replies from handler outcomes, the record of
replies given (on real RocksDB files), ids made for new entities, the decorator."""
import faust
import pytest
from aiokafka import TopicPartition

import streamkit
from streamkit.envelope import RequestEnvelope
from streamkit.services.replies import ReplyLog
from streamkit.errors import ServiceError
from streamkit.services.handler import (Reply, ServiceRequest, build_reply,
                                       readdress)


def env(cid="p-1", instance="http://127.0.0.1:7001"):
    return RequestEnvelope(id=cid, reply_to="gw-responses", instance=instance, method="POST",
                           path="o-1", trace_id="t-1")


def test_plain_values_become_200_and_none_204():
    ok = build_reply(env(), {"a": 1}, "orders", None)
    assert (ok.id, ok.status, ok.body, ok.error, ok.instance, ok.trace_id) == (
        "p-1", 200, {"a": 1}, None, "http://127.0.0.1:7001", "t-1")
    assert build_reply(env(), None, "orders", None).status == 204


def test_a_reply_naming_an_entity_carries_app_table_and_key_for_wait_for():
    reply = build_reply(env(), Reply(201, {"order_id": "o-1"}, entity="o-1"), "orders", "orders")
    assert reply.status == 201 and reply.body == {"order_id": "o-1"}
    assert reply.entity == {"app": "orders", "table": "orders", "key": "o-1"}
    other = build_reply(env(), Reply(200, None, entity=7, table="baskets"), "shop", "orders")
    assert other.entity == {"app": "shop", "table": "baskets", "key": 7}


def test_service_errors_keep_their_status_and_other_exceptions_are_500_without_details():
    conflict = build_reply(env(), ServiceError(409, "conflict", "taken"), "a", None)
    assert (conflict.status, conflict.error) == (409, {"code": "conflict", "message": "taken"})
    crash = build_reply(env(), KeyError("secret-key-name"), "a", None)
    assert crash.status == 500 and crash.error["code"] == "internal_error"
    assert "secret" not in crash.error["message"] and "KeyError" in crash.error["message"]
    with pytest.raises(ValueError):
        ServiceError(200, "fine")


def test_a_cached_reply_is_readdressed_to_the_retry():
    first = build_reply(env("p-1", "http://a:1"), {"n": 1}, "app", None)
    again = readdress(first, env("p-2", "http://b:2"))
    assert (again.id, again.instance, again.body, again.status) == ("p-2", "http://b:2", {"n": 1}, 200)


def test_recorded_replies_are_found_under_each_key_until_they_expire(tmp_path):
    tp = TopicPartition("app-req-replies", 2)
    log = ReplyLog(tmp_path / "r", tp, retention_ms=1000).open()
    reply = build_reply(env("p-1"), {"n": 1}, "a", None)
    items = log.record(["id:p-1", "rq:req:k1"], reply, now_ms=5000)
    # Seen at once (before the changelog acknowledged it), as a later request needs.
    assert log.get("rq:req:k1", 5001).body == {"n": 1}
    assert log.get("id:p-1", 5999).id == "p-1"
    assert log.get("id:p-1", 6000) is None  # expired at 5000 + 1000
    assert log.get("rq:req:other", 5001) is None
    log.apply(items, checkpoint=17)
    assert log.store.dirty == {} and log.store.checkpoint == 17
    assert log.get("rq:req:k1", 5500).body == {"n": 1}
    # Expiry removes both keys of each entry that is due, and only those.
    later = log.record(["id:p-2"], build_reply(env("p-2"), 2, "a", None), now_ms=5500)
    log.apply(later, checkpoint=19)
    gone = log.expired(now_ms=6200)
    assert sorted(k for k, v in gone if v is None) == sorted(
        [k for k, _ in items])  # the two entries of p-1 and k1, each with its index key
    log.apply(gone, checkpoint=23)
    assert log.get("id:p-2", 6200).body == 2
    assert log.get("id:p-1", 5100) is None and log.get("rq:req:k1", 5100) is None
    log.close()


def test_a_reply_log_rebuilt_from_its_changelog_records_answers_the_same(tmp_path):
    tp = TopicPartition("app-req-replies", 0)
    first = ReplyLog(tmp_path / "a", tp, retention_ms=60_000).open()
    items = first.record(["rq:req:k"], build_reply(env("p-9"), {"ok": True}, "a", None), 1000)
    first.close()
    # What a restore does: the changelog's records, as they are, into an empty store.
    second = ReplyLog(tmp_path / "b", tp, retention_ms=60_000).open()
    second.store.write(items, 2)
    again = second.get("rq:req:k", 2000)
    assert (again.id, again.status, again.body) == ("p-9", 200, {"ok": True})
    second.close()


def test_new_ids_are_the_same_for_a_request_run_again_and_differ_between_requests():
    def request(cid, request_id=None):
        e = RequestEnvelope(id=cid, reply_to="r", instance="http://x", method="POST",
                            request_id=request_id)
        return ServiceRequest(e, "customer-requests", 0, 0)

    first, rerun = request("p-1"), request("p-1")
    ids = [first.new_id("c-"), first.new_id("c-")]
    assert ids == [rerun.new_id("c-"), rerun.new_id("c-")]
    assert ids[0] != ids[1] and all(i.startswith("c-") and len(i) == 26 for i in ids)
    assert request("p-2").new_id("c-") != ids[0]
    # With an Idempotency-Key, a retry (a new correlation id) makes the same id.
    assert request("p-3", "k1").new_id() == request("p-4", "k1").new_id()
    assert request("p-3", "k1").new_id() != request("p-3", "k2").new_id()
    many = {request(f"p-{i}").new_id() for i in range(10_000)}
    assert len(many) == 10_000


def test_decorator_refuses_sync_handlers_and_a_second_handler_for_one_topic():
    app = faust.App("t-service-decorator", broker="kafka://127.0.0.1:1")
    with pytest.raises(TypeError):
        streamkit.service(app, "t-requests")(lambda req: None)

    @streamkit.service(app, "t-requests")
    async def first(req):
        return None

    with pytest.raises(ValueError):
        @streamkit.service(app, "t-requests")
        async def second(req):
            return None
