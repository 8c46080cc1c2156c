"""What the gateway knows of every app: the latest record of each app in `streamkit-registry`.

Every streamkit worker publishes, after each assignment, one record keyed by its app id:
    {"app", "hosts": [url], "tables": {table: {"partitions", "keys"}},
     "owners": {table: {"<partition>": url}}, "updated_ms"}
The gateway reads every partition of that compacted topic from the beginning without a
consumer group (each instance needs all of it) and keeps tailing it, so that it can route
a query for any app's key to its owner with no per-worker configuration.
"""
from __future__ import annotations

import asyncio
import logging
from typing import cast

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from ..clients import Clients, stop_client
from ..config import Settings
from ..query.keys import parse_key_text
from ..serde import resolve
from .correlation import partition_of

log = logging.getLogger(__name__)


def encode_key(kind: str, raw: str) -> bytes:
    """A key's bytes as its table stores them, from its URL text (as the query routes parse it)."""
    serde = resolve(kind if kind in ("int", "json", "raw") else "str")
    return serde.encode(parse_key_text(serde.name, raw))


class Registry:
    """The latest registry record of every app, plus static hosts from the environment."""

    def __init__(self, settings: Settings, topic: str,
                 static_apps: dict[str, tuple[str, ...]] | None = None) -> None:
        self.settings, self.topic = settings, topic
        self.static_apps = dict(static_apps or {})
        self.apps: dict[str, dict] = {}
        self.records = 0
        self._consumer = cast(AIOKafkaConsumer, None)  # made in start()
        self._task: asyncio.Task | None = None
        self._turn = 0

    async def start(self) -> None:
        self._consumer = Clients(self.settings).reader(200)
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await stop_client(self._consumer, self.settings.close_timeout_s)

    async def _assign(self) -> bool:
        consumer = self._consumer
        await consumer._client.force_metadata_update()  # as streamkit.testing.kafka does
        parts = consumer.partitions_for_topic(self.topic)
        if not parts:
            return False
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        return True

    async def _run(self) -> None:
        while not await self._assign():
            await asyncio.sleep(1.0)  # the topic appears when its first worker publishes
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=500, max_records=1000)
            except KafkaError as exc:
                log.warning("registry fetch failed, retrying: %r", exc)
                await asyncio.sleep(0.5)
                continue
            for records in batches.values():
                for rec in records:
                    self.apply(rec.key, rec.value)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """Take one registry record (a null value removes the app)."""
        if not key:
            return
        app = key.decode(errors="replace")
        if value is None:
            self.apps.pop(app, None)
            return
        try:
            record = orjson.loads(value)
        except orjson.JSONDecodeError:
            log.warning("undecodable registry record for app=%s", app)
            return
        if not isinstance(record, dict):
            return
        previous = self.apps.get(app)
        if previous and previous.get("updated_ms", 0) > record.get("updated_ms", 0):
            return  # records from two workers may arrive out of order
        self.apps[app] = record
        self.records += 1

    def known(self, app: str) -> bool:
        return app in self.apps or app in self.static_apps

    def hosts(self, app: str) -> list[str]:
        """Every known host of app, rotated so that load spreads across them."""
        record = self.apps.get(app) or {}
        hosts = [h.rstrip("/") for h in record.get("hosts") or [] if isinstance(h, str)]
        hosts += [h for h in self.static_apps.get(app, ()) if h not in hosts]
        if not hosts:
            return []
        self._turn += 1
        k = self._turn % len(hosts)
        return hosts[k:] + hosts[:k]

    def owner(self, app: str, table: str, raw_key: str) -> str | None:
        """The host that owns raw_key of app's table, if the registry says so."""
        record = self.apps.get(app) or {}
        meta = (record.get("tables") or {}).get(table)
        owners = (record.get("owners") or {}).get(table) or {}
        if not isinstance(meta, dict) or not meta.get("partitions"):
            return None
        try:
            key = encode_key(str(meta.get("keys", "str")), raw_key)
        except (ValueError, TypeError):
            return None
        owner = owners.get(str(partition_of(key, int(meta["partitions"]))))
        return owner.rstrip("/") if isinstance(owner, str) else None

    def describe(self) -> dict:
        out = {name: {k: rec.get(k) for k in ("hosts", "tables", "updated_ms")}
               for name, rec in self.apps.items()}
        for name, hosts in self.static_apps.items():
            out.setdefault(name, {"hosts": list(hosts), "tables": None, "updated_ms": None})
        return out
