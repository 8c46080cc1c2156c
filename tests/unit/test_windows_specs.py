"""Window specs reject impossible arguments; window bounds; the window store's encoding."""
from __future__ import annotations

import dataclasses

import orjson
import pytest

from streamkit.errors import TopologyError
from streamkit.dsl import source_stream
from streamkit.processing.topology import Topology
from streamkit.serde import resolve
from streamkit.state.keys import IntKeys, StrKeys
from streamkit.windows import Hopping, Session, Sliding, Tumbling, WindowedKey
from streamkit.windows.codec import (STREAM_TIME, Agg, Buffered, Clock, WindowedKeySerde,
                                     WindowKeys, WindowValues)


@pytest.mark.parametrize("make", [
    lambda: Tumbling(size_ms=10),
    lambda: Hopping(size_ms=10, advance_ms=5),
    lambda: Sliding(difference_ms=10),
    lambda: Session(gap_ms=10),
])
def test_grace_has_no_default_for_any_window_kind(make):
    with pytest.raises(TypeError, match="grace_ms"):
        make()


@pytest.mark.parametrize("make, message", [
    (lambda: Tumbling(size_ms=0, grace_ms=0), "size_ms must be > 0"),
    (lambda: Tumbling(size_ms=10, grace_ms=-1), "grace_ms must be >= 0"),
    (lambda: Hopping(size_ms=10, advance_ms=0, grace_ms=0), "advance_ms must be > 0"),
    (lambda: Hopping(size_ms=10, advance_ms=11, grace_ms=0), "advance_ms .* must be <= size_ms"),
    (lambda: Sliding(difference_ms=-5, grace_ms=0), "difference_ms must be > 0"),
    (lambda: Session(gap_ms=0, grace_ms=1), "gap_ms must be > 0"),
    (lambda: Session(gap_ms=5, grace_ms=-10), "grace_ms must be >= 0"),
])
def test_impossible_sizes_and_negative_grace_are_rejected(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("value", [1.5, 60.0, True, "10"])
def test_times_must_be_int_milliseconds(value):
    with pytest.raises(TypeError, match="int of milliseconds"):
        Tumbling(size_ms=value, grace_ms=0)


def test_window_specs_are_frozen_and_compare_by_value():
    spec = Tumbling(size_ms=60_000, grace_ms=10_000)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.grace_ms = 0
    assert spec == Tumbling(size_ms=60_000, grace_ms=10_000)


def test_tumbling_window_includes_its_start_and_excludes_its_end():
    spec = Tumbling(size_ms=10, grace_ms=3)
    assert spec.windows_for(0) == [(0, 10)]
    assert spec.windows_for(9) == [(0, 10)]
    assert spec.windows_for(10) == [(10, 20)]
    assert spec.windows_for(-1) == []  # windows start at 0, as in Kafka Streams
    assert spec.close_at(0, 10) == 13


def test_hopping_record_belongs_to_size_over_advance_windows_oldest_first():
    spec = Hopping(size_ms=10, advance_ms=5, grace_ms=0)
    assert spec.windows_for(0) == [(0, 10)]  # never [-5, 5): Kafka's TimeWindows.windowsFor
    assert spec.windows_for(7) == [(0, 10), (5, 15)]
    assert spec.windows_for(10) == [(5, 15), (10, 20)]
    assert Hopping(size_ms=10, advance_ms=3, grace_ms=0).windows_for(9) == [(0, 10), (3, 13),
                                                                           (6, 16), (9, 19)]


def test_a_sliding_record_earlier_than_the_difference_opens_the_window_at_0():
    spec = Sliding(difference_ms=50, grace_ms=0)
    assert spec.own_window(0) == (0, 50)
    assert spec.own_window(49) == (0, 50)
    assert spec.own_window(50) == (0, 50)
    assert spec.own_window(51) == (1, 51)


def test_inclusive_end_windows_close_one_millisecond_after_end_plus_grace():
    assert Sliding(difference_ms=10, grace_ms=5).close_at(0, 10) == 16
    assert Session(gap_ms=10, grace_ms=5).close_at(0, 3) == 19


def test_window_store_keys_round_trip_and_sort_by_time_within_a_key():
    keys = WindowKeys(StrKeys())
    samples = [("a", -5, 5), ("a", 0, 10), ("a", 10, 20), ("x", 3, 13), ("x", 7, "a", 0, 7),
               ("r", "a", 4, "clicks", 17), ("y", 9, "a", 4, "clicks", 17), STREAM_TIME]
    for k in samples:
        assert keys.decode(keys.encode(k)) == k
    a_windows = [("a", -5, 5), ("a", 0, 10), ("a", 10, 20)]
    assert sorted(a_windows, key=keys.encode) == a_windows
    # the index sorts by close time across keys
    index = [("x", 30, "b", 0, 10), ("x", 12, "zz", 0, 2), ("x", -3, "a", 0, 1)]
    assert sorted(index, key=keys.encode) == sorted(index, key=lambda k: k[1])


def test_a_keys_windows_do_not_share_a_prefix_with_a_longer_key():
    keys = WindowKeys(StrKeys())
    assert not keys.encode(("ab", 0, 10)).startswith(keys.window_prefix("a"))
    assert keys.encode(("a", 0, 10)).startswith(keys.window_prefix("a"))
    ints = WindowKeys(IntKeys())
    assert ints.decode(ints.encode((-7, 0, 10))) == (-7, 0, 10)


def test_a_plain_key_is_refused_by_a_window_store():
    for key in ("abc", b"abc", b"t"):  # bytes too: a raw key read as a window's is an error
        with pytest.raises(TypeError, match="fetch_window"):
            WindowKeys(StrKeys()).encode(key)


def test_window_store_values_round_trip():
    values = WindowValues(resolve("json"), resolve("json"))
    open_agg = values.decode(values.encode(Agg({"n": 1}, {"clicks": 4})))
    assert (open_agg.value, open_agg.offsets, open_agg.closed) == ({"n": 1}, {"clicks": 4}, None)
    closed = values.decode(values.encode(Agg([1], {"clicks": 4}, ("clicks", 9))))
    assert (closed.value, closed.closed) == ([1], ("clicks", 9))
    assert values.decode(values.encode(Clock(-5, -9, {"clicks": 3}))) == (-5, -9, {"clicks": 3})
    assert values.decode(values.encode(True)) is True
    assert values.decode(values.encode(Buffered({"v": 2}))).value == {"v": 2}


def test_windowed_key_is_written_as_json_with_key_start_and_end():
    serde = WindowedKeySerde(resolve("str"))
    data = serde.encode(WindowedKey("u1", 0, 60_000))
    assert orjson.loads(data) == {"key": "u1", "start": 0, "end": 60_000}
    assert serde.decode(data) == WindowedKey("u1", 0, 60_000)


def _grouped():
    return source_stream(Topology("t"), "in", "str", "json", None, None).group_by_key()


def test_windowed_by_refuses_anything_but_a_window_spec():
    with pytest.raises(TopologyError, match="Tumbling, Hopping, Sliding or Session"):
        _grouped().windowed_by(60_000)


def test_session_windows_need_merge_and_other_windows_refuse_it():
    with pytest.raises(ValueError, match="merge"):
        _grouped().windowed_by(Session(gap_ms=5, grace_ms=0)).aggregate("s", 0, lambda a, v: a)
    with pytest.raises(ValueError, match="session windows only"):
        _grouped().windowed_by(Tumbling(size_ms=5, grace_ms=0)).aggregate(
            "s", 0, lambda a, v: a, merge=lambda a, b: a)


def test_emit_must_be_update_or_final():
    with pytest.raises(TopologyError, match="emit"):
        _grouped().windowed_by(Tumbling(size_ms=5, grace_ms=0)).count("c", emit="eventually")
