"""GatewaySettings.from_env(): the gateway's and the service helper's own STREAMKIT_* variables.

They live here rather than in streamkit.config so that the gateway can be configured
without touching the settings every worker reads; the worker-wide ones (broker, web
address, session timeout, security) still come from streamkit.config.Settings.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping

from ..config import env_int
from ..errors import ConfigError

REGISTRY_TOPIC = "streamkit-registry"


@dataclass(frozen=True)
class GatewaySettings:
    """Limits and topics of a gateway deployment (and the fetch wait of service consumers)."""

    gateway_id: str = "gateway"
    services: Mapping[str, str] = field(default_factory=dict)
    response_topic: str | None = None
    response_partitions: int = 12
    timeout_ms: int = 10_000
    max_timeout_ms: int = 60_000
    max_body_bytes: int = 1024 * 1024
    max_parked: int = 10_000
    max_websockets: int = 1_000
    fetch_wait_ms: int = 500
    handoff_timeout_ms: int = 2_000
    registry_topic: str = REGISTRY_TOPIC
    static_apps: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("response_partitions", "timeout_ms", "max_timeout_ms", "max_body_bytes",
                     "max_parked", "fetch_wait_ms", "handoff_timeout_ms", "max_websockets"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.timeout_ms > self.max_timeout_ms:
            raise ConfigError("STREAMKIT_GATEWAY_TIMEOUT_MS must not exceed "
                              "STREAMKIT_GATEWAY_MAX_TIMEOUT_MS")
        for name, topic in self.services.items():
            if not name or "/" in name or not topic:
                raise ConfigError(f"bad service mapping {name!r} -> {topic!r}")

    @property
    def responses(self) -> str:
        """The deployment's one response topic."""
        return self.response_topic or f"{self.gateway_id}-responses"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, fetch_wait_ms: int = 500,
                 **overrides) -> "GatewaySettings":
        """Read STREAMKIT_GATEWAY_*; keyword overrides win over the environment.
        fetch_wait_ms: the default wait of the request and response consumers (the
        worker's STREAMKIT_FETCH_MAX_WAIT_MS, which its profile sets)."""
        env = os.environ if env is None else env

        def num(name: str, default: int) -> int:
            return env_int(env, name, default)

        values = dict(
            gateway_id=env.get("STREAMKIT_GATEWAY_ID", "gateway"),
            services=parse_services(env.get("STREAMKIT_GATEWAY_SERVICES", "")),
            response_topic=env.get("STREAMKIT_GATEWAY_RESPONSE_TOPIC") or None,
            response_partitions=num("STREAMKIT_GATEWAY_RESPONSE_PARTITIONS", 12),
            timeout_ms=num("STREAMKIT_GATEWAY_TIMEOUT_MS", 10_000),
            max_timeout_ms=num("STREAMKIT_GATEWAY_MAX_TIMEOUT_MS", 60_000),
            max_body_bytes=num("STREAMKIT_GATEWAY_MAX_BODY_BYTES", 1024 * 1024),
            max_websockets=num("STREAMKIT_GATEWAY_MAX_WEBSOCKETS", 1_000),
            max_parked=num("STREAMKIT_GATEWAY_MAX_PARKED", 10_000),
            fetch_wait_ms=num("STREAMKIT_GATEWAY_FETCH_WAIT_MS", fetch_wait_ms),
            handoff_timeout_ms=num("STREAMKIT_GATEWAY_HANDOFF_TIMEOUT_MS", 2_000),
            registry_topic=env.get("STREAMKIT_REGISTRY_TOPIC", REGISTRY_TOPIC),
            static_apps=parse_apps(env.get("STREAMKIT_GATEWAY_APPS", "")),
        )
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def parse_services(raw: str) -> dict[str, str]:
    """'orders=orders-requests,basket=basket-requests' -> {service: request topic}."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        name, sep, topic = part.partition("=")
        if not sep or not name.strip() or not topic.strip():
            raise ConfigError(f"STREAMKIT_GATEWAY_SERVICES: {part!r} is not service=topic")
        out[name.strip()] = topic.strip()
    return out


def parse_apps(raw: str) -> dict[str, tuple[str, ...]]:
    """'orders=http://h1:6066|http://h2:6066;basket=...' -> {app: hosts}: hosts to use for
    an app until (or instead of) its record in the registry topic."""
    out: dict[str, tuple[str, ...]] = {}
    for part in filter(None, (p.strip() for p in raw.split(";"))):
        name, sep, hosts = part.partition("=")
        urls = tuple(h.strip().rstrip("/") for h in hosts.split("|") if h.strip())
        if not sep or not name.strip() or not urls:
            raise ConfigError(f"STREAMKIT_GATEWAY_APPS: {part!r} is not app=url|url")
        out[name.strip()] = urls
    return out
