"""Settings.from_env(): the one place that reads the environment."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Literal, Mapping

from .errors import ConfigError

DEFAULT_BROKER = "kafka://127.0.0.1:9092"

Profile = Literal["dev", "devbroker", "production"]
OnError = Literal["continue", "stop"]

# Group timings and fetch waits per profile.
# dev: a broker on this machine (`streamkit kafka`). A short session timeout makes a
#   killed worker's partitions move within seconds; Apache Kafka admits it when its
#   group.min.session.timeout.ms does (streamkit kafka sets 1 s). Kafka answers a fetch as
#   soon as records arrive, so a long fetch wait costs no latency and saves idle fetches.
# devbroker: the in-memory dev broker (Tansu). It holds every JoinGroup for half the
#   session timeout, and answers a fetch only when the fetch wait runs out, even with
#   records waiting: a 10 ms wait keeps one hop near 10 ms there.
# production: Apache Kafka's own minimum session timeout is 6 s by default; 30 s rides out
#   a long pause of a worker without a rebalance.
_PROFILE_DEFAULTS: dict[str, dict[str, int]] = {
    "dev": {"session_timeout_ms": 4000, "heartbeat_interval_ms": 1000, "replication_factor": 1,
            "fetch_max_wait_ms": 500},
    "devbroker": {"session_timeout_ms": 4000, "heartbeat_interval_ms": 1000,
                  "replication_factor": 1, "fetch_max_wait_ms": 10},
    "production": {"session_timeout_ms": 30000, "heartbeat_interval_ms": 3000,
                   "replication_factor": 3, "fetch_max_wait_ms": 500},
}


def env_int(env: Mapping[str, str], name: str, default: int) -> int:
    """A whole number from the environment; ConfigError naming the variable if it is not."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


@dataclass(frozen=True)
class Security:
    """Connection security for a real cluster (passed to every Kafka client)."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    def client_kwargs(self) -> dict:
        """Keyword arguments for aiokafka clients."""
        kw: dict = {"security_protocol": self.protocol}
        if self.protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context

            kw["ssl_context"] = create_ssl_context(
                cafile=self.ssl_cafile, certfile=self.ssl_certfile, keyfile=self.ssl_keyfile
            )
        if self.sasl_mechanism:
            kw["sasl_mechanism"] = self.sasl_mechanism
            kw["sasl_plain_username"] = self.sasl_username
            kw["sasl_plain_password"] = self.sasl_password
        return kw


@dataclass(frozen=True)
class Settings:
    """Everything a worker needs to know, with defaults that work on a fresh machine."""

    broker: str = DEFAULT_BROKER
    profile: Profile = "dev"
    data_dir: str = "streamkit-data"
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    advertised_url: str | None = None
    partitions: int = 4
    replication_factor: int = 1
    session_timeout_ms: int = 4000
    heartbeat_interval_ms: int = 1000
    commit_interval_ms: int = 1000
    commit_max_records: int = 20000
    fetch_max_records: int = 2000
    fetch_max_wait_ms: int = 10
    global_fetch_max_wait_ms: int | None = None  # None: fetch_max_wait_ms
    global_fetch_min_bytes: int = 1
    standby_replicas: int = 0
    on_error: OnError = "continue"
    query_timeout_ms: int = 5000
    scan_max_limit: int = 1000
    max_url_bytes: int = 8192
    max_body_bytes: int = 1 << 20
    max_header_bytes: int = 16384
    max_wait_ms: int = 60000
    api_token: str | None = None
    security: Security = field(default_factory=Security)

    def __post_init__(self) -> None:
        if self.profile not in _PROFILE_DEFAULTS:
            raise ConfigError(f"STREAMKIT_PROFILE must be one of {sorted(_PROFILE_DEFAULTS)}, "
                              f"not {self.profile!r}")
        if self.on_error not in ("continue", "stop"):
            raise ConfigError(f"STREAMKIT_ON_ERROR must be continue or stop, not {self.on_error!r}")
        for name in ("partitions", "replication_factor", "commit_interval_ms", "commit_max_records",
                     "fetch_max_records", "session_timeout_ms", "heartbeat_interval_ms",
                     "query_timeout_ms", "scan_max_limit", "max_url_bytes", "max_body_bytes",
                     "max_header_bytes", "max_wait_ms", "global_fetch_min_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.standby_replicas < 0:
            raise ConfigError(f"standby_replicas must be 0 or more, got {self.standby_replicas}")
        if not 0 < self.web_port < 65536:
            raise ConfigError(f"STREAMKIT_WEB_PORT must be a TCP port, got {self.web_port}")
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ConfigError("the heartbeat interval must be shorter than the session timeout")
        self.bootstrap_servers  # validates the broker URL

    @property
    def bootstrap_servers(self) -> list[str]:
        """host:port of each broker named in the broker URL."""
        servers = []
        for part in self.broker.split(","):
            part = part.strip()
            if "://" in part:
                scheme, _, part = part.partition("://")
                if scheme != "kafka":
                    raise ConfigError(f"STREAMKIT_BROKER: unsupported scheme {scheme!r} (use kafka://)")
            host, sep, port = part.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ConfigError(f"STREAMKIT_BROKER: {part!r} is not host:port")
            servers.append(part)
        return servers

    @property
    def global_fetch_wait_ms(self) -> int:
        """How long the consumer that tails global tables waits for records."""
        if self.global_fetch_max_wait_ms is None:
            return self.fetch_max_wait_ms
        return self.global_fetch_max_wait_ms

    @property
    def web_url(self) -> str:
        """The address other workers use to reach this worker's HTTP server."""
        return self.advertised_url or f"http://{self.web_host}:{self.web_port}"

    def with_overrides(self, **changes) -> "Settings":
        """A copy with some fields changed."""
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """Read STREAMKIT_* variables; a bad value raises ConfigError naming it."""
        env = os.environ if env is None else env
        broker = env.get("STREAMKIT_BROKER", DEFAULT_BROKER)
        # The local dev broker is the default; anything else is taken for a real cluster.
        default_profile = "dev" if broker == DEFAULT_BROKER else "production"
        profile = env.get("STREAMKIT_PROFILE", default_profile)
        base = _PROFILE_DEFAULTS.get(profile, _PROFILE_DEFAULTS["dev"])

        def num(name: str, default: int) -> int:
            return env_int(env, name, default)

        security = Security(
            protocol=env.get("STREAMKIT_SECURITY_PROTOCOL", "PLAINTEXT"),
            sasl_mechanism=env.get("STREAMKIT_SASL_MECHANISM") or None,
            sasl_username=env.get("STREAMKIT_SASL_USERNAME") or None,
            sasl_password=env.get("STREAMKIT_SASL_PASSWORD") or None,
            ssl_cafile=env.get("STREAMKIT_SSL_CAFILE") or None,
            ssl_certfile=env.get("STREAMKIT_SSL_CERTFILE") or None,
            ssl_keyfile=env.get("STREAMKIT_SSL_KEYFILE") or None,
        )
        if security.protocol not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
            raise ConfigError(f"STREAMKIT_SECURITY_PROTOCOL: unknown protocol {security.protocol!r}")
        return cls(
            broker=broker,
            profile=profile,  # type: ignore[arg-type]
            data_dir=env.get("STREAMKIT_DATA_DIR", "streamkit-data"),
            web_host=env.get("STREAMKIT_WEB_HOST", "127.0.0.1"),
            web_port=num("STREAMKIT_WEB_PORT", 6066),
            advertised_url=env.get("STREAMKIT_ADVERTISED_URL") or None,
            partitions=num("STREAMKIT_PARTITIONS", 4),
            replication_factor=num("STREAMKIT_REPLICATION_FACTOR", base["replication_factor"]),
            session_timeout_ms=num("STREAMKIT_SESSION_TIMEOUT_MS", base["session_timeout_ms"]),
            heartbeat_interval_ms=num("STREAMKIT_HEARTBEAT_INTERVAL_MS", base["heartbeat_interval_ms"]),
            commit_interval_ms=num("STREAMKIT_COMMIT_INTERVAL_MS", 1000),
            commit_max_records=num("STREAMKIT_COMMIT_MAX_RECORDS", 20000),
            fetch_max_records=num("STREAMKIT_FETCH_MAX_RECORDS", 2000),
            fetch_max_wait_ms=num("STREAMKIT_FETCH_MAX_WAIT_MS", base["fetch_max_wait_ms"]),
            global_fetch_max_wait_ms=(num("STREAMKIT_GLOBAL_FETCH_MAX_WAIT_MS", 0)
                                      if env.get("STREAMKIT_GLOBAL_FETCH_MAX_WAIT_MS") else None),
            global_fetch_min_bytes=num("STREAMKIT_GLOBAL_FETCH_MIN_BYTES", 1),
            standby_replicas=num("STREAMKIT_STANDBY_REPLICAS", 0),
            on_error=env.get("STREAMKIT_ON_ERROR", "continue"),  # type: ignore[arg-type]
            query_timeout_ms=num("STREAMKIT_QUERY_TIMEOUT_MS", 5000),
            scan_max_limit=num("STREAMKIT_SCAN_MAX_LIMIT", 1000),
            max_url_bytes=num("STREAMKIT_MAX_URL_BYTES", 8192),
            max_body_bytes=num("STREAMKIT_MAX_BODY_BYTES", 1 << 20),
            max_header_bytes=num("STREAMKIT_MAX_HEADER_BYTES", 16384),
            max_wait_ms=num("STREAMKIT_MAX_WAIT_MS", 60000),
            api_token=env.get("STREAMKIT_API_TOKEN") or None,
            security=security,
        )
