"""Arbitrary bytes on a request or response topic are refused with EnvelopeError, never
another exception (which would stop the consumer); what is decoded can be used: a request
gives its key and encodes, a reply's instance is a string or None."""
import orjson
from hypothesis import given, settings, strategies as st

from streamkit.errors import EnvelopeError
from streamkit.envelope import ReplyEnvelope, RequestEnvelope

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=6),
    max_leaves=20)
envelope_like = st.fixed_dictionaries({}, optional={
    "id": json_values, "reply_to": json_values, "instance": json_values, "method": json_values,
    "path": json_values, "query": json_values, "body": json_values, "deadline_ms": json_values,
    "status": json_values, "error": json_values, "entity": json_values})
# The fields a request must have, valid, and the others anything: the decoder's later checks.
request_like = st.fixed_dictionaries({
    "id": st.text(min_size=1, max_size=8), "reply_to": st.text(min_size=1, max_size=8),
    "instance": st.text(min_size=1, max_size=8),
    "method": st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"])}, optional={
    "path": json_values, "query": json_values, "body": json_values, "deadline_ms": json_values,
    "sent_ms": json_values, "request_id": json_values, "trace_id": json_values})
reply_like = st.fixed_dictionaries({"id": st.text(min_size=1, max_size=8),
                                    "status": st.integers(100, 599)}, optional={
    "body": json_values, "error": json_values, "instance": json_values, "trace_id": json_values,
    "entity": json_values})


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.none(), st.binary(max_size=200), envelope_like.map(orjson.dumps),
                 json_values.map(orjson.dumps), request_like.map(orjson.dumps),
                 reply_like.map(orjson.dumps)))
def test_request_and_reply_decoders_only_ever_raise_envelope_errors(data):
    try:
        request = RequestEnvelope.decode(data)
    except EnvelopeError:
        pass
    else:
        assert isinstance(request.key(), bytes)
        assert RequestEnvelope.decode(request.encode()).encode() == request.encode()
        assert isinstance(request.deadline_ms, int) and isinstance(request.sent_ms, int)
    try:
        reply = ReplyEnvelope.decode(data, b"key")
    except EnvelopeError:
        pass
    else:
        assert reply.instance is None or isinstance(reply.instance, str)
        assert ReplyEnvelope.decode(reply.encode()).encode() == reply.encode()
