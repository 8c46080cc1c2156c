from hypothesis import given, strategies as st
import pytest

from faust import Record

from streamkit.errors import DecodeError
from streamkit.serde import resolve
from streamkit.state.keys import IntKeys, StrKeys


@given(st.lists(st.integers(min_value=-2**63, max_value=2**63 - 1), min_size=2))
def test_int_keys_sort_numerically_as_bytes(keys):
    codec = IntKeys()
    assert sorted(keys) == [codec.decode(b) for b in sorted(codec.encode(k) for k in keys)]


@given(st.lists(st.text(), min_size=2))
def test_str_keys_sort_lexicographically_as_bytes(keys):
    codec = StrKeys()
    assert sorted(keys) == [codec.decode(b) for b in sorted(codec.encode(k) for k in keys)]


class Order(Record):
    id: str
    qty: int


def test_model_serde_round_trips_and_rejects_bad_input():
    serde = resolve(Order)
    order = serde.decode(serde.encode(Order(id="o1", qty=2)))
    assert (order.id, order.qty) == ("o1", 2)
    with pytest.raises(DecodeError):
        serde.decode(b"[1, 2]")
    with pytest.raises(DecodeError):
        serde.decode(b"{oops")


def test_named_serdes():
    assert resolve("int").decode(resolve("int").encode(-5)) == -5
    assert resolve("str").decode(b"abc") == "abc"
    with pytest.raises(DecodeError):
        resolve("str").decode(b"\xff")
    with pytest.raises(ValueError, match="unknown serde"):
        resolve("yaml")


def test_encoded_values_are_held_at_their_own_size():
    """Encoded values wait for their commit (changelog batches, the outbox): each must take
    about its own length, not the buffer the encoder wrote it into (orjson keeps about
    4 KB per small result)."""
    import tracemalloc

    from streamkit.serde import JsonSerde, dumps

    values = [{"key": f"k{i}", "amount": i % 9 + 1} for i in range(2_000)]
    for encode in (JsonSerde().encode, dumps):
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            held = [encode(v) for v in values]
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert held[7] == b'{"key":"k7","amount":8}'
        # the JSON is about 25 bytes, a bytes object adds 33 and the list 8 per item
        assert grown / len(held) < 100, f"{grown / len(held):.0f} bytes per encoded value"
