"""GatewaySettings.from_env(): the gateway's own STREAMKIT_GATEWAY_* variables, declared as
streamkit.config declares a worker's (docs/gateway.md's table is rendered from them); the
worker-wide ones (broker, web address, session timeout, security, the fetch wait of the
response consumer) come from streamkit.config.Settings.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from ..config import Var, read_vars, text, whole
from ..errors import ConfigError
from ..topics import REGISTRY_TOPIC


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
    linger_ms: int = 2
    registry_topic: str = REGISTRY_TOPIC
    static_apps: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("response_partitions", "timeout_ms", "max_timeout_ms", "max_body_bytes",
                     "max_parked", "fetch_wait_ms", "handoff_timeout_ms", "max_websockets"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.linger_ms < 0:
            raise ConfigError(f"linger_ms must be 0 or more, got {self.linger_ms}")
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
                 **overrides: Any) -> "GatewaySettings":
        """Read STREAMKIT_GATEWAY_*; keyword overrides win over the environment.
        fetch_wait_ms: the wait of the response consumer (the worker's
        Settings.request_fetch_wait_ms)."""
        env = os.environ if env is None else env
        values = read_vars(GATEWAY_VARS, env, "dev")
        values["fetch_wait_ms"] = fetch_wait_ms
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


def _services(name: str, raw: str) -> dict[str, str]:
    return parse_services(raw)


def _apps(name: str, raw: str) -> dict[str, tuple[str, ...]]:
    return parse_apps(raw)


GATEWAY_VARS: tuple[Var, ...] = (
    Var("STREAMKIT_GATEWAY_ID", "gateway_id", text, "gateway",
        "the gateway's group, and the prefix of its response topic"),
    Var("STREAMKIT_GATEWAY_SERVICES", "services", _services, MappingProxyType({}),
        "`name=request-topic,...`: what `/api/{name}` sends to"),
    Var("STREAMKIT_GATEWAY_RESPONSE_TOPIC", "response_topic", text, None,
        "the response topic", "`<gateway id>-responses`"),
    Var("STREAMKIT_GATEWAY_RESPONSE_PARTITIONS", "response_partitions", whole, 12,
        "partitions of the response topic when the gateway creates it"),
    Var("STREAMKIT_GATEWAY_TIMEOUT_MS", "timeout_ms", whole, 10_000,
        "a request's deadline unless its `X-Timeout-Ms` says otherwise"),
    Var("STREAMKIT_GATEWAY_MAX_TIMEOUT_MS", "max_timeout_ms", whole, 60_000,
        "the longest deadline a request may ask for"),
    Var("STREAMKIT_GATEWAY_MAX_BODY_BYTES", "max_body_bytes", whole, 1024 * 1024,
        "largest request body (413 past it, refused before it is read)"),
    Var("STREAMKIT_GATEWAY_MAX_PARKED", "max_parked", whole, 10_000,
        "parked requests per instance before `503`"),
    Var("STREAMKIT_GATEWAY_HANDOFF_TIMEOUT_MS", "handoff_timeout_ms", whole, 2_000,
        "one hand-off POST"),
    Var("STREAMKIT_GATEWAY_LINGER_MS", "linger_ms", whole, 2,
        "requests that arrive within this window go to the broker in one produce request"),
    Var("STREAMKIT_REGISTRY_TOPIC", "registry_topic", text, REGISTRY_TOPIC,
        "where workers say where their tables live"),
    Var("STREAMKIT_GATEWAY_MAX_WEBSOCKETS", "max_websockets", whole, 1_000,
        "open websockets per instance; more are refused with 429"),
    Var("STREAMKIT_GATEWAY_APPS", "static_apps", _apps, MappingProxyType({}),
        "static hosts per app: `app=http://h1:6066\\|http://h2:6066;...`"),
)
