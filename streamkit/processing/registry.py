"""Discovery: each worker publishes where its app's tables live to the compacted topic
streamkit.topics.REGISTRY_TOPIC, so a gateway can route table reads of any app without
per-worker configuration."""
from __future__ import annotations

import time
from typing import Any

from .ownership import Ownership


def registry_record(app_id: str, ownership: Ownership) -> dict[str, Any]:
    """The record published under key = app id after each assignment."""
    desc = ownership.describe()
    return {
        "app": app_id,
        "hosts": desc["hosts"] or [ownership.url],
        "tables": {name: {"partitions": t["partitions"], "keys": t["keys"]}
                   for name, t in desc["tables"].items()},
        "owners": {name: t["active"] for name, t in desc["tables"].items()},
        "updated_ms": int(time.time() * 1000),
    }
