"""Creation of the topics streamkit needs, with explicit partitions and cleanup policy.

Internal topics (changelogs, repartition, dead letters, late events) are never left to
a broker's auto-creation: their partition count must match the sources they serve,
and changelogs must be compacted.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import cast

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.protocol.metadata import MetadataRequest

from .clients import Clients
from .config import Settings

log = logging.getLogger(__name__)

_ALREADY_EXISTS = TopicAlreadyExistsError.errno
# Pauses between metadata reads while topics just created are not yet visible: doubled
# from the first to the last.
VISIBLE_FIRST_PAUSE_S = 0.005
VISIBLE_MAX_PAUSE_S = 0.05
BROKER_ASK_S = 5.0  # the longest a topic's visibility waits for one broker's answer


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compact: bool = False
    # Kept until streamkit deletes what its consumers committed (repartition topics): never
    # by time, since their records carry event times, which may be older than any retention.
    purged: bool = False

    def configs(self) -> dict[str, str]:
        configs = {"cleanup.policy": "compact" if self.compact else "delete"}
        if self.purged:
            configs["retention.ms"] = "-1"
        return configs


# Where every worker says where its app's tables live (streamkit.registry).
REGISTRY_TOPIC = "streamkit-registry"


def dead_letter_topic(app_id: str) -> str:
    return f"{app_id}-dead-letters"


def late_events_topic(app_id: str) -> str:
    return f"{app_id}-late-events"


class TopicAdmin:
    """Creates missing topics and reports partition counts."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._admin: AIOKafkaAdminClient = cast(AIOKafkaAdminClient, None)  # set on entry

    async def __aenter__(self) -> "TopicAdmin":
        self._admin = Clients(self.settings).admin()
        await self._admin.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self._admin.close()

    async def partition_counts(self, names: list[str], node: int | None = None) -> dict[str, int]:
        """Partition count of each named topic that exists (as broker `node` lists it, or
        any one broker)."""
        if not names:
            return {}
        # The metadata of these topics only, and with auto-creation off: listing every topic
        # of a cluster costs time in proportion to its size, at each start-up, and the admin
        # client's describe_topics would let a broker auto-create the missing ones with its
        # default partitions and cleanup policy.
        request = MetadataRequest(sorted(set(names)), allow_auto_topic_creation=False)
        response = await self._admin._send_request(request, node)
        out = {}
        for desc in response.to_object()["topics"]:
            if desc.get("error_code", 0) == 0 and desc.get("partitions"):
                out[desc["topic"]] = len(desc["partitions"])
        return out

    async def ensure(self, specs: list[TopicSpec], existing: dict[str, int] | None = None
                     ) -> dict[str, int]:
        """Create the topics that do not exist; return every topic's partition count.
        `existing`: the counts of the topics that exist, when the caller has just read
        them (partition_counts of every name in specs)."""
        # A topic may be named twice (a source that is also a sink); a broker refuses a
        # request that creates one topic twice.
        specs = list({s.name: s for s in reversed(specs)}.values())
        if existing is None:
            existing = await self.partition_counts([s.name for s in specs])
        counts = {s.name: existing[s.name] for s in specs if s.name in existing}
        missing = [s for s in specs if s.name not in counts]
        if missing:
            new = [NewTopic(s.name, s.partitions, self.settings.replication_factor,
                            topic_configs=s.configs())
                   for s in missing]
            response = await self._admin.create_topics(new)
            for topic, code, message in _errors(response):
                if code not in (0, _ALREADY_EXISTS):
                    raise RuntimeError(f"could not create topic {topic}: {message} (error {code})")
            for s in missing:
                log.info("created topic %s partitions=%d compact=%s", s.name, s.partitions, s.compact)
            counts.update(await self._until_visible([s.name for s in missing]))
        return counts

    async def _until_visible(self, names: list[str], timeout_s: float = 30.0) -> dict[str, int]:
        """Partition counts of topics just created (or created meanwhile by another worker),
        once every broker's metadata shows them: CreateTopics is answered before every
        broker knows the topic, and a client's next metadata request may go to any broker
        (a group that formed on metadata without its topic would be assigned none of it
        until its client next refreshed its metadata, 5 minutes later). Usually they show
        within milliseconds, so the first pauses are short (a worker's start waits on
        this)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        pause = VISIBLE_FIRST_PAUSE_S
        while True:
            counts = await self._counts_on_every_broker(names)
            if len(counts) == len(names):
                return counts
            if loop.time() > deadline:
                missing = sorted(set(names) - set(counts))
                raise RuntimeError(f"topics {missing} were created but are not visible after "
                                   f"{timeout_s:.0f}s")
            await asyncio.sleep(pause)
            pause = min(pause * 2, VISIBLE_MAX_PAUSE_S)

    async def _counts_on_every_broker(self, names: list[str]) -> dict[str, int]:
        """The partition counts of the named topics that every broker lists, asking each
        at once. A broker that does not answer within BROKER_ASK_S is left out (it is down
        or frozen: no client's metadata comes from it now), unless none answers."""
        nodes = sorted(b.nodeId for b in self._admin._client.cluster.brokers())
        if not nodes:
            return await self.partition_counts(names)
        answers = await asyncio.gather(
            *(asyncio.wait_for(self.partition_counts(names, n), BROKER_ASK_S) for n in nodes),
            return_exceptions=True)
        for answer in answers:
            if isinstance(answer, BaseException) and not isinstance(
                    answer, (KafkaError, asyncio.TimeoutError)):
                raise answer
        lists = [a for a in answers if isinstance(a, dict)]
        if not lists:
            raise next(a for a in answers if isinstance(a, BaseException))
        return {t: c for t, c in lists[0].items() if all(t in other for other in lists[1:])}


def _errors(response) -> list[tuple[str, int, str | None]]:
    out = []
    for entry in response.topic_errors:
        topic, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 else None
        out.append((topic, code, message))
    return out
