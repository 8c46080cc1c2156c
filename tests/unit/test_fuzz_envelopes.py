"""Arbitrary bytes on a request or response topic are refused with EnvelopeError, never
another exception (which would stop the consumer)."""
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


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.none(), st.binary(max_size=200), envelope_like.map(orjson.dumps),
                 json_values.map(orjson.dumps)))
def test_request_and_reply_decoders_only_ever_raise_envelope_errors(data):
    for decode in (RequestEnvelope.decode, lambda d: ReplyEnvelope.decode(d, b"key")):
        try:
            decode(data)
        except EnvelopeError:
            pass
