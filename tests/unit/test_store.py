import gc

import orjson
import pytest

from streamkit.serde import resolve
from streamkit.state.keys import SerdeKeys, StrKeys
from streamkit.state.store import PartitionStore, ReadCache


def test_updates_reach_disk_with_their_checkpoint_and_survive_reopen(tmp_path):
    store = PartitionStore(tmp_path / "t", StrKeys(), resolve("json")).open()
    store.put("a", {"n": 1})
    store.put("b", 2)
    store.delete("c")
    assert store.get("a") == {"n": 1} and store.get("c") is None
    items = store.encode_dirty()
    assert (b"c", None) in items
    store.write(items, checkpoint=42)
    store.dirty.clear()
    store.close()
    again = PartitionStore(tmp_path / "t", StrKeys(), resolve("json")).open()
    assert again.checkpoint == 42
    assert again.get("a") == {"n": 1} and again.get("b") == 2
    assert list(again.items()) == [("a", {"n": 1}), ("b", 2)]
    again.wipe()
    assert again.checkpoint is None and again.get("a") is None
    again.close()


def test_a_store_reopens_while_a_reference_cycle_still_holds_an_object_of_its_closed_database(
        tmp_path):
    """RocksDB's lock stays taken while any object of a closed database lives: one held by
    a reference cycle lives until the collector runs, which open() then makes happen."""
    store = PartitionStore(tmp_path / "t", StrKeys(), resolve("json")).open()
    store.write([(b"k", b"1")], 7)
    cycle: list = [store._db.get_column_family("default")]
    cycle.append(cycle)
    del cycle
    collecting = gc.isenabled()
    gc.disable()  # the cycle must still be alive at open()
    try:
        store.close()
        store.open()
    finally:
        if collecting:
            gc.enable()
    assert (store.get("k"), store.checkpoint) == (1, 7)
    store.close()


def test_a_commits_values_are_read_again_without_rocksdb_until_another_write(tmp_path):
    store = PartitionStore(tmp_path / "t", StrKeys(), resolve("json")).open()
    total = {"n": 1}
    store.put("a", total)
    store.delete("gone")
    store.write(store.encode_dirty(), checkpoint=1)
    store.settle()
    assert store.dirty == {}
    assert store.get("a") is total  # the object the commit wrote, not decoded again
    assert store.get("gone", "default") == "default"
    # Another writer of the database (a restore, a standby) makes those values stale.
    store.write([(b"a", b'{"n": 7}'), (b"gone", b"3")], checkpoint=2)
    assert store.get("a") == {"n": 7} and store.get("gone") == 3
    store.put("a", {"n": 8})
    store.write(store.encode_dirty(), checkpoint=3)
    store.settle()
    store.close()
    store.open()
    assert store.recent == {} and store.get("a") == {"n": 8}
    store.close()


def test_ranges_and_prefixes_follow_key_order(tmp_path):
    store = PartitionStore(tmp_path / "t", StrKeys(), resolve("json")).open()
    store.write([(k.encode(), b"1") for k in ["b1", "a2", "b2", "c1", "a1"]], checkpoint=5)
    assert [k for k, _ in store.items()] == ["a1", "a2", "b1", "b2", "c1"]
    assert [k for k, _ in store.items(start="a2", end="c1")] == ["a2", "b1", "b2"]
    assert [k for k, _ in store.items(prefix=b"b")] == ["b1", "b2"]
    assert store.count() == 5
    store.close()


def test_query_reads_are_cached_and_every_write_drops_what_it_changes(tmp_path):
    cache = ReadCache(3)
    store = PartitionStore(tmp_path / "t", StrKeys(), resolve("json"), cache).open()
    store.write([(b"a", b'{"n": 1}'), (b"b", b"2")], checkpoint=1)
    assert store.read("a") == {"n": 1} and store.read("zz") is None
    assert store.read("a") == {"n": 1} and store.read("zz") is None
    assert (cache.hits, cache.misses) == (2, 2)  # an absent key is cached too
    # A changelog record applied by restore or a standby replaces the cached value...
    store.write((kv for kv in [(b"a", b'{"n": 5}'), (b"zz", b"7")]), checkpoint=2)
    assert store.read("a") == {"n": 5} and store.read("zz") == 7
    # ...so does a commit, and an uncommitted update is read before the cache.
    store.put("a", {"n": 6})
    assert store.read("a") == {"n": 6}
    # A committed read (exactly-once) skips the uncommitted update.
    assert store.read("a", committed=True) == {"n": 5}
    store.write(store.encode_dirty(), checkpoint=3)
    store.dirty.clear()
    assert store.read("a") == {"n": 6}
    store.delete("b")
    assert store.read("b") is None
    store.write(store.encode_dirty(), checkpoint=4)
    store.dirty.clear()
    assert store.read("b") is None
    # The cache stays within its bound, and a wiped store forgets it.
    for k in ["c", "d", "e", "f"]:
        store.read(k)
    assert len(store._read_cache) == 3
    store.wipe()
    assert store.read("a") is None
    store.close()


def test_stores_share_their_workers_read_cache_figures_and_zero_entries_caches_nothing(tmp_path):
    cache = ReadCache(0)
    stores = [PartitionStore(tmp_path / str(p), StrKeys(), resolve("json"), cache).open()
              for p in range(2)]
    for store in stores:
        store.write([(b"k", b"1")], checkpoint=1)
        assert [store.read("k") for _ in range(3)] == [1, 1, 1]
        store.put("k", 2)
        assert store.read("k") == 2            # an uncommitted update: not a cache lookup
        assert store._read_cache == {}
        store.close()
    assert (cache.hits, cache.misses) == (0, 6)
    with pytest.raises(ValueError):
        ReadCache(-1)


def test_a_scan_ends_at_its_bound_without_walking_the_deleted_entries_after_it(
        tmp_path, monkeypatch):
    """A window or join store deletes its expired entries; a scan of one key's entries
    must stop at its range, not step over every deleted entry of the keys after it.
    RocksDB counts the internal entries its iterators skip (rocksdb.number.iter.skip)."""
    from streamkit.state import store as store_module

    with_statistics = store_module._options()
    with_statistics.enable_statistics()
    monkeypatch.setattr(store_module, "_options", lambda: with_statistics)

    def skipped() -> int:
        line = next(ln for ln in with_statistics.get_statistics().splitlines()
                    if ln.startswith("rocksdb.number.iter.skip "))
        return int(line.rsplit(":", 1)[1])

    store = PartitionStore(tmp_path / "s", SerdeKeys(resolve("raw")), resolve("raw")).open()
    try:
        store.write([(b"a\x01", b"1"), (b"a\x02", b"2")], None)
        deleted = [b"b" + i.to_bytes(4, "big") for i in range(20_000)]
        store.write([(kb, b"x") for kb in deleted], None)
        store.write([(kb, None) for kb in deleted], None)
        store.write([(b"c", b"3")], None)
        before = skipped()
        assert list(store.raw_items(prefix=b"a")) == [(b"a\x01", b"1"), (b"a\x02", b"2")]
        assert list(store.raw_items(start=b"a", end=b"a\x02")) == [(b"a\x01", b"1")]
        assert list(store.raw_items(start=b"a\x02", end=b"b")) == [(b"a\x02", b"2")]
        assert skipped() - before < 10  # unbounded: 40,000 (each put and delete of b...)
        # The bound lives as long as the scan (not only while raw_items runs).
        scan = store.raw_items(prefix=b"a")
        gc.collect()
        assert list(scan) == [(b"a\x01", b"1"), (b"a\x02", b"2")]
        assert list(store.raw_items(start=b"b")) == [(b"c", b"3")]
        # A prefix of 0xff bytes only has no key past it: the scan checks the prefix.
        store.write([(b"\xfe", b"4"), (b"\xff\x01", b"5")], None)
        assert list(store.raw_items(prefix=b"\xff")) == [(b"\xff\x01", b"5")]
        assert list(store.raw_items(start=b"\xfe", end=b"\xff")) == [(b"\xfe", b"4")]
    finally:
        store.close()


def test_prefix_end_is_the_first_key_past_the_prefix():
    from streamkit.state.store import prefix_end, scan_end

    assert prefix_end(b"ab") == b"ac"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff\xff") is None
    assert scan_end(None, None) is None
    assert scan_end(b"az", b"a") == b"az" and scan_end(b"c", b"a") == b"b"
    assert scan_end(None, b"\xff") is None and scan_end(b"q", None) == b"q"


def test_the_value_a_key_awaits_the_commit_with_is_given_encoded(tmp_path):
    """What a waiter is judged against before a commit (uncommitted): the pending value,
    encoded; nothing for a key without one, deleted, or committed since; and nothing, not
    an error, for a key no dict can hold (a JSON list, which a client may name in a read)."""
    keys = SerdeKeys(resolve("json"))
    store = PartitionStore(tmp_path / "t", keys, resolve("json")).open()
    store.put("o1", {"state": "CREATED"})
    store.put("o2", {"state": "VALIDATED"})
    store.delete("o2")
    assert orjson.loads(store.uncommitted(b'"o1"')) == {"state": "CREATED"}
    assert store.uncommitted(b'"o2"') is None
    assert store.uncommitted(b'"o3"') is None
    assert store.uncommitted(b"[1,2]") is None
    store.write(store.encode_dirty(), 1)
    store.settle()
    assert store.uncommitted(b'"o1"') is None
    assert store.get("o1") == {"state": "CREATED"}
