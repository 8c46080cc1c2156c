"""Correlation ids: murmur2 of an id's UTF-8 bytes lands on a partition the instance owns."""
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given, settings
from hypothesis import strategies as st

from streamkit.gateway.correlation import CorrelationIds, partition_of
from tests.oracles import kafka_partition


@st.composite
def ownership(draw):
    n = draw(st.integers(min_value=1, max_value=64))
    owned = draw(st.sets(st.integers(min_value=0, max_value=n - 1), min_size=1))
    return n, owned


@settings(max_examples=200, deadline=None)
@given(ownership())
def test_every_id_hashes_to_an_owned_partition_as_kafka_places_its_reply(case):
    n, owned = case
    ids = CorrelationIds(n)
    for _ in range(20):
        cid = ids.next(owned)
        key = cid.encode()
        assert partition_of(key, n) in owned
        # The same partition as streamkit's partitioner and aiokafka's default producer give.
        assert kafka_partition(key, n) == partition_of(key, n)
        assert DefaultPartitioner()(key, list(range(n)), list(range(n))) == partition_of(key, n)
    assert ids.misses == 0


def test_ids_are_unique_and_carry_the_instance_prefix():
    ids = CorrelationIds(12, prefix="abc")
    made = [ids.next({3}) for _ in range(2000)]
    assert len(set(made)) == 2000
    assert all(m.startswith("abc-") for m in made)
    assert {partition_of(m.encode(), 12) for m in made} == {3}


def test_two_instances_never_mint_the_same_id():
    a, b = CorrelationIds(4), CorrelationIds(4)
    assert a.prefix != b.prefix
    assert not {a.next({0}) for _ in range(500)} & {b.next({0}) for _ in range(500)}


def test_an_instance_that_owns_nothing_gets_ids_for_any_partition():
    ids = CorrelationIds(8)
    made = [ids.next(()) for _ in range(400)]
    assert len({partition_of(m.encode(), 8) for m in made}) == 8
    # Partitions outside the topic (a stale assignment) count as owning nothing.
    assert ids.next({99}).startswith(ids.prefix)


def test_search_gives_up_after_max_tries_and_counts_the_miss():
    ids = CorrelationIds(1000, max_tries=1)
    made = [ids.next({7}) for _ in range(50)]
    assert len(set(made)) == 50
    assert ids.misses == sum(1 for m in made if partition_of(m.encode(), 1000) != 7) > 0


def test_spread_over_owned_partitions_is_even():
    ids = CorrelationIds(12)
    owned = {1, 5, 9}
    counts = {p: 0 for p in owned}
    for _ in range(3000):
        counts[partition_of(ids.next(owned).encode(), 12)] += 1
    assert min(counts.values()) > 800
