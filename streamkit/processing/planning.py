"""Which topics a topology needs and how many partitions each has: no I/O here, so that a
worker and the test driver size topics, and check co-partitioning, the same way.

External topics (sources and sinks the user names, the sources of global tables) keep
whatever count they have; the dead-letter and late-event topics get the app's default.
Internal topics (changelogs, repartition topics, a foreign-key join's subscription and
response topics) take the count of the sub-topology they serve, which for a chain of
repartitions is known only once its upstream is: `internal_counts` works outward from what
is known.
"""
from __future__ import annotations

from ..errors import TopologyError
from ..topics import REGISTRY_TOPIC, TopicSpec, dead_letter_topic, late_events_topic
from .topology import Group, Topology


def external_topics(topology: Topology, partitions: int) -> list[TopicSpec]:
    """The topics a worker creates, if missing, before it sizes the internal ones."""
    internal = topology.internal
    names = [t for t in topology.sources if t not in internal]
    names += [t for t in sorted(topology.sinks) if t not in internal]
    names += [g.spec.topic for g in topology.globals.values()]
    specs = [TopicSpec(t, partitions) for t in dict.fromkeys(names)]
    return specs + [TopicSpec(dead_letter_topic(topology.app_id), partitions),
                    TopicSpec(late_events_topic(topology.app_id), partitions),
                    TopicSpec(REGISTRY_TOPIC, 1, compact=True)]


def internal_topics(topology: Topology, counts: dict[str, int]) -> list[TopicSpec]:
    """Every internal topic, sized from the counts known (those of external topics, and of
    internal topics that exist already, which keep theirs)."""
    known = dict(counts)
    specs: list[TopicSpec] = []
    todo = dict(topology.internal)
    while todo:
        ready = {}
        for name, topic in todo.items():
            n = (known.get(name) or topic.partitions
                 or _group_partitions(topology, topic.partitions_from, known))
            if n is not None:
                # Every internal topic that is not a changelog is read by this app's own
                # tasks, which delete what they have committed (purge.py).
                ready[name] = TopicSpec(name, n, topic.compact, purged=not topic.compact)
        if not ready:
            raise TopologyError(f"cannot size internal topics {sorted(todo)}")
        for name, spec in ready.items():
            known[name] = spec.partitions
            specs.append(spec)
            del todo[name]
    return specs


def check_copartitioned(topology: Topology, counts: dict[str, int]) -> None:
    """TopologyError unless the topics of every sub-topology have one partition count."""
    for g in topology.groups():
        sizes = {t: counts[t] for t in topology.topics_of_group(g)}
        for spec in topology.tables_of_group(g):
            sizes[spec.changelog] = counts[spec.changelog]
        if len(set(sizes.values())) > 1:
            raise TopologyError(
                f"topics processed together must have the same number of partitions: {sizes}")


def _group_partitions(topology: Topology, group: Group | None, counts: dict[str, int]
                      ) -> int | None:
    # A sub-topology may read internal topics sized after itself (a foreign-key join's
    # subscriptions): the topics that are sized already decide, and the co-partitioning
    # check afterwards makes sure they all agree.
    if group is None:
        return None
    known = [counts[t] for t in topology.topics_of_group(group.root().id) if t in counts]
    return max(known) if known else None
