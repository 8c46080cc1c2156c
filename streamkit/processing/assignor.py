"""Task assignment for the processors' consumer group, in the manner of Kafka Streams.

Each member sends its web address and the tasks it held; the leader gives every task
(sub-topology, partition) to one member, sticky where it can and balanced, picks
standby members for each task, and sends every member the whole map, so that any
worker can say which worker owns which partition of which table.

A member may carry a request that the whole app stop (STREAMKIT_ON_UNCAUGHT_ERROR=
shutdown_app, processing/uncaught.py): the leader then gives no member any task and sends
every member the request instead, as Kafka Streams' assignor does with its shutdown error
code.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import orjson
from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment, ConsumerProtocolMemberMetadata

log = logging.getLogger(__name__)

TaskId = tuple[int, int]  # (sub-topology, partition)


@dataclass
class ClusterMap:
    """Who owns what, as the last assignment said."""

    generation: int = -1
    active: dict[TaskId, str] = field(default_factory=dict)     # task -> url
    standby: dict[TaskId, list[str]] = field(default_factory=dict)
    partitions: dict[int, int] = field(default_factory=dict)    # group -> partition count
    # A member asked every worker of the app to stop: {"by": its url, "error": ...}.
    shutdown: dict | None = None

    def hosts(self) -> dict[str, dict[str, list[TaskId]]]:
        out: dict[str, dict[str, list[TaskId]]] = defaultdict(lambda: {"active": [], "standby": []})
        for task, url in sorted(self.active.items()):
            out[url]["active"].append(task)
        for task, urls in sorted(self.standby.items()):
            for url in urls:
                out[url]["standby"].append(task)
        return dict(out)


def _encode_tasks(tasks: Iterable[TaskId]) -> list[list[int]]:
    return [list(t) for t in sorted(tasks)]


def _decode_tasks(raw: Iterable[Iterable[int]]) -> set[TaskId]:
    return {(int(g), int(p)) for g, p in raw}


class TaskAssignor(AbstractPartitionAssignor):
    name = "streamkit-tasks"
    version = 1

    def __init__(self, url: str, topics_of_group: Callable[[], dict[int, list[str]]],
                 standby_replicas: int, held: Callable[[], tuple[set[TaskId], set[TaskId]]],
                 on_map: Callable[[ClusterMap, set[TaskId], set[TaskId]], None]) -> None:
        self.url = url
        self._topics_of_group = topics_of_group
        self._standby_replicas = standby_replicas
        self._held = held
        self._on_map = on_map
        self._generation = 0
        # This member's request that the app stop, sent with its metadata once set.
        self.shutdown: dict | None = None

    def metadata(self, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        active, standby = self._held()
        data: dict[str, Any] = {"url": self.url, "active": _encode_tasks(active),
                                "standby": _encode_tasks(standby)}
        if self.shutdown is not None:
            data["shutdown"] = self.shutdown
        return ConsumerProtocolMemberMetadata(self.version, sorted(topics), orjson.dumps(data))

    def assign(self, cluster: ClusterMetadata,
               members: Mapping[str, ConsumerProtocolMemberMetadata]
               ) -> dict[str, ConsumerProtocolMemberAssignment]:
        info = {m: orjson.loads(meta.user_data) for m, meta in members.items()}
        requests = [info[m]["shutdown"] for m in sorted(info) if info[m].get("shutdown")]
        if requests:
            log.error("worker %s asked every worker of the app to stop: %s",
                      requests[0].get("by"), requests[0].get("error"))
            return {m: ConsumerProtocolMemberAssignment(
                self.version, [], orjson.dumps({"shutdown": requests[0]})) for m in members}
        groups = self._topics_of_group()
        partitions: dict[int, int] = {}
        for g, topics in groups.items():
            counts = {t: len(cluster.partitions_for_topic(t) or ()) for t in topics}
            partitions[g] = min(counts.values()) if counts else 0
        tasks = [(g, p) for g in sorted(partitions) for p in range(partitions[g])]
        order = sorted(members)
        prev_active = {m: _decode_tasks(info[m]["active"]) for m in order}
        prev_standby = {m: _decode_tasks(info[m]["standby"]) for m in order}

        active = self._place_active(tasks, order, prev_active, prev_standby)
        standby = self._place_standby(tasks, order, active, prev_active, prev_standby)

        by_member: dict[str, list[TaskId]] = defaultdict(list)
        for task, m in active.items():
            by_member[m].append(task)
        cmap = {
            "partitions": {str(g): n for g, n in partitions.items()},
            "active": [[g, p, info[m]["url"]] for (g, p), m in sorted(active.items())],
            "standby": [[g, p, [info[m]["url"] for m in ms]] for (g, p), ms in sorted(standby.items())],
        }
        out = {}
        for m in order:
            assignment: dict[str, list[int]] = defaultdict(list)
            for g, p in by_member[m]:
                for topic in groups[g]:
                    assignment[topic].append(p)
            user = {"map": cmap,
                    "active": _encode_tasks(by_member[m]),
                    "standby": _encode_tasks(t for t, ms in standby.items() if m in ms)}
            out[m] = ConsumerProtocolMemberAssignment(
                self.version, sorted((t, sorted(ps)) for t, ps in assignment.items()),
                orjson.dumps(user))
        return out

    @staticmethod
    def _place_active(tasks, order, prev_active, prev_standby) -> dict[TaskId, str]:
        """Each sub-topology is spread evenly on its own (so one table does not end up on
        one worker), sticky within that balance, and the total load breaks ties."""
        total = {m: 0 for m in order}
        placed: dict[TaskId, str] = {}
        by_group: dict[int, list[TaskId]] = defaultdict(list)
        for task in tasks:
            by_group[task[0]].append(task)
        for group_tasks in by_group.values():
            quota = _Quota(order, len(group_tasks))
            for task in group_tasks:  # sticky: keep a task where it ran
                for m in order:
                    if task in prev_active[m] and quota.fits(m):
                        placed[task] = quota.take(m)
                        total[m] += 1
                        break
            for task in group_tasks:  # then warm standbys, then the least loaded member
                if task not in placed:
                    m = min((m for m in order if quota.fits(m)),
                            key=lambda m: (task not in prev_standby[m], quota.load[m],
                                           total[m], m))
                    placed[task] = quota.take(m)
                    total[m] += 1
        return placed

    def _place_standby(self, tasks, order, active, prev_active, prev_standby
                       ) -> dict[TaskId, list[str]]:
        load = {m: 0 for m in order}
        out: dict[TaskId, list[str]] = {}
        for task in tasks:
            candidates = [m for m in order if m != active[task]]
            candidates.sort(key=lambda m: (task not in prev_standby[m] and task not in prev_active[m],
                                           load[m], m))
            chosen = candidates[: self._standby_replicas]
            for m in chosen:
                load[m] += 1
            if chosen:
                out[task] = chosen
        return out

    def on_assignment(self, assignment: ConsumerProtocolMemberAssignment) -> None:
        user = orjson.loads(assignment.user_data) if assignment.user_data else {}
        raw = user.get("map", {})
        self._generation += 1
        cmap = ClusterMap(
            generation=self._generation,
            active={(g, p): url for g, p, url in raw.get("active", [])},
            standby={(g, p): urls for g, p, urls in raw.get("standby", [])},
            partitions={int(g): n for g, n in raw.get("partitions", {}).items()},
            shutdown=user.get("shutdown"),
        )
        self._on_map(cmap, _decode_tasks(user.get("active", [])),
                     _decode_tasks(user.get("standby", [])))


class _Quota:
    """One sub-topology's tasks spread evenly over the members: each takes n // M of them,
    and n % M members one more."""

    def __init__(self, members: list[str], n: int) -> None:
        self.base, self.extra = divmod(n, len(members)) if members else (0, 0)
        self.load = {m: 0 for m in members}

    def fits(self, m: str) -> bool:
        return self.load[m] < self.base or (self.load[m] == self.base and self.extra > 0)

    def take(self, m: str) -> str:
        if self.load[m] == self.base:
            self.extra -= 1
        self.load[m] += 1
        return m
