"""Settings.from_env(): the one place that reads a worker's environment.

Every setting is declared once below (its variable, type, default per profile and one line
of documentation); Settings is built from those declarations, the gateway's settings from
its own (streamkit.gateway.settings), and README.md's table is rendered from them
(`python -m streamkit.config`, checked by tests/unit/test_config.py).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Literal, Mapping

from .errors import ConfigError

DEFAULT_BROKER = "kafka://127.0.0.1:9092"
PROFILES = ("dev", "devbroker", "production")

Profile = Literal["dev", "devbroker", "production"]
OnError = Literal["continue", "stop"]
PRODUCTION_POLICIES = ("fail", "continue")
OnProductionError = Literal["fail", "continue"]
UNCAUGHT_POLICIES = ("shutdown_worker", "replace", "shutdown_app")
OnUncaughtError = Literal["shutdown_worker", "replace", "shutdown_app"]
GUARANTEES = ("at_least_once", "exactly_once")
Guarantee = Literal["at_least_once", "exactly_once"]

# Group timings and fetch waits per profile.
# dev: a broker on this machine (`streamkit kafka`). A short session timeout makes a
#   killed worker's partitions move within seconds; Apache Kafka admits it when its
#   group.min.session.timeout.ms does (streamkit kafka sets 1 s). Kafka answers a fetch as
#   soon as records arrive, so a long fetch wait costs no latency and saves idle fetches.
# devbroker: the in-memory dev broker (Tansu). It holds every JoinGroup for half the
#   session timeout, and answers a fetch only when the fetch wait runs out, even with
#   records waiting: a 10 ms wait keeps one hop near 10 ms there. It never answers a
#   fetch wait of 0, which Apache Kafka answers at once: reads to the end on demand
#   (restores, global-table catch-ups, one before each batch that looks a global table
#   up) ask for 1 ms there and 0 elsewhere.
# production: Apache Kafka's own minimum session timeout is 6 s by default; 30 s rides out
#   a long pause of a worker without a rebalance.


class PerProfile(dict):
    """A default that differs by profile."""


def per_profile(dev: Any, devbroker: Any, production: Any) -> PerProfile:
    return PerProfile(dev=dev, devbroker=devbroker, production=production)


@dataclass(frozen=True)
class Var:
    """One setting: its environment variable, the field it fills, how to read it, its
    default (a value, or one per profile), and one line of documentation."""

    env: str
    field: str
    parse: Callable[[str, str], Any]
    default: Any
    doc: str
    shown_default: str | None = None  # for the docs, when the default is computed

    def default_for(self, profile: str) -> Any:
        return self.default[profile] if isinstance(self.default, PerProfile) else self.default

    def read(self, env: Mapping[str, str], profile: str) -> Any:
        raw = env.get(self.env)
        if raw is None or raw == "":
            return self.default_for(profile)
        return self.parse(self.env, raw)


def whole(name: str, raw: str) -> int:
    """A whole number; ConfigError naming the variable if it is not."""
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


def text(_name: str, raw: str) -> str:
    return raw


def one_of(*choices: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        if raw not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
        return raw
    return parse


def gc_thresholds(name: str, raw: str) -> tuple[int, int, int] | None:
    """Three whole numbers for gc.set_threshold, or `python` for Python's own."""
    if raw.strip() == "python":
        return None
    parts = raw.split(",")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) < 1:
        raise ConfigError(f"{name} must be three whole numbers of 1 or more, such as "
                          f"700,10,100, or python; got {raw!r}")
    return values[0], values[1], values[2]


# The worker's collector: a young pass per 7,000 allocations (Python's 700), 10 young passes
# a middle one, and a full pass once per 100 middle passes instead of 10. Records held for a
# commit period or two (write-back caches, join buffers) outlive the young passes; with
# Python's 10 the collector walked them all again about twice a second, each full pass
# 50-100 ms of a worker's time. A serving process (a gateway) has thousands of live objects
# of its requests in flight at each young pass: at 700 its passes took 3-11 ms about once
# a second (bench/README.md, "The collector's full passes", "The collector's young
# passes in a gateway").
GC_THRESHOLDS = (7000, 10, 100)


def env_int(env: Mapping[str, str], name: str, default: int) -> int:
    """A whole number from the environment, or default when unset."""
    raw = env.get(name)
    return default if raw is None or raw == "" else whole(name, raw)


def read_vars(variables: tuple[Var, ...], env: Mapping[str, str], profile: str) -> dict[str, Any]:
    """The fields the variables fill, from env, with the profile's defaults."""
    return {v.field: v.read(env, profile) for v in variables}


SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")

VARS: tuple[Var, ...] = (
    Var("STREAMKIT_BROKER", "broker", text, DEFAULT_BROKER,
        "brokers, e.g. `kafka://k1:9092,kafka://k2:9092`"),
    Var("STREAMKIT_PROFILE", "profile", one_of(*PROFILES), None,
        "`dev`, `devbroker` or `production`: group timings and fetch waits (above)",
        "`dev` for the default broker, else `production`"),
    Var("STREAMKIT_DATA_DIR", "data_dir", text, "streamkit-data",
        "RocksDB files, under `<dir>/<app id>/<table>/<partition>`"),
    Var("STREAMKIT_WEB_HOST", "web_host", text, "127.0.0.1", "the HTTP server's address"),
    Var("STREAMKIT_WEB_PORT", "web_port", whole, 6066, "the HTTP server's port"),
    Var("STREAMKIT_ADVERTISED_URL", "advertised_url", text, None,
        "how other workers reach this one", "`http://<host>:<port>`"),
    Var("STREAMKIT_PARTITIONS", "partitions", whole, 4, "partitions of topics streamkit creates"),
    Var("STREAMKIT_REPLICATION_FACTOR", "replication_factor", whole, per_profile(1, 1, 3),
        "of topics streamkit creates"),
    Var("STREAMKIT_SESSION_TIMEOUT_MS", "session_timeout_ms", whole,
        per_profile(4000, 4000, 30000), "consumer groups: when a silent member is dropped"),
    Var("STREAMKIT_HEARTBEAT_INTERVAL_MS", "heartbeat_interval_ms", whole,
        per_profile(1000, 1000, 3000), "consumer groups: how often a member says it is alive"),
    Var("STREAMKIT_COMMIT_INTERVAL_MS", "commit_interval_ms", whole, 1000,
        "commit at least this often (or at `STREAMKIT_COMMIT_MAX_RECORDS`)"),
    Var("STREAMKIT_COMMIT_MAX_RECORDS", "commit_max_records", whole, 50000,
        "commit once this many records wait to be written: table updates (a key updated "
        "again in the same commit counts once) and output records"),
    Var("STREAMKIT_CLOSE_TIMEOUT_MS", "close_timeout_ms", whole, 30000,
        "at a stop, how long the last commit, and then each Kafka client's close, may wait "
        "for brokers that do not answer (the records since the last commit are then "
        "processed again)"),
    Var("STREAMKIT_FETCH_MAX_RECORDS", "fetch_max_records", whole, 2000, "records per fetch"),
    Var("STREAMKIT_FETCH_MAX_WAIT_MS", "fetch_max_wait_ms", whole, per_profile(500, 10, 500),
        "how long a fetch may wait for records"),
    Var("STREAMKIT_READ_TO_END_WAIT_MS", "read_to_end_wait_ms", whole, per_profile(0, 1, 0),
        "fetch wait of reads to the end on demand (restores, global-table catch-ups): 0 "
        "answers at once on Apache Kafka; some Kafka-protocol brokers never answer a wait "
        "of 0"),
    Var("STREAMKIT_GLOBAL_FETCH_MAX_WAIT_MS", "global_fetch_max_wait_ms", whole, None,
        "how long the consumer that tails global tables waits (lookups catch up on their own)",
        "the fetch wait"),
    Var("STREAMKIT_GLOBAL_FETCH_MIN_BYTES", "global_fetch_min_bytes", whole, 1,
        "how much that consumer waits for before a fetch returns"),
    Var("STREAMKIT_GATEWAY_FETCH_WAIT_MS", "request_fetch_max_wait_ms", whole, None,
        "fetch wait of the gateway's response consumer and the service helper's",
        "the fetch wait"),
    Var("STREAMKIT_STANDBY_REPLICAS", "standby_replicas", whole, 0,
        "standby copies of each table partition on other workers"),
    Var("STREAMKIT_PROCESSING_GUARANTEE", "processing_guarantee",
        one_of(*GUARANTEES), "at_least_once",
        "`at_least_once` or `exactly_once` (one Kafka transaction per task and commit; "
        "docs/exactly-once.md)"),
    Var("STREAMKIT_REPARTITION_PURGE_INTERVAL_MS", "repartition_purge_interval_ms", whole,
        30000, "how often records of repartition topics that every task has committed are "
        "deleted (0: never); those topics keep records until then, whatever their timestamp"),
    Var("STREAMKIT_ISOLATION_LEVEL", "isolation_level",
        one_of("read_committed", "read_uncommitted"),
        per_profile("read_committed", "read_uncommitted", "read_committed"),
        "what streamkit's consumers read of transactional topics: `read_committed` hides "
        "aborted records and open transactions (the dev broker has no transactions)"),
    Var("STREAMKIT_ON_ERROR", "on_error", one_of("continue", "stop"), "continue",
        "`continue` (dead-letter a failing record) or `stop`"),
    Var("STREAMKIT_ON_PRODUCTION_ERROR", "on_production_error", one_of(*PRODUCTION_POLICIES),
        "fail", "a record the broker rejects (too large...): `fail` (stop, nothing committed) "
        "or `continue` (dead-letter it); `.to(topic, on_error=...)` per sink "
        "(docs/operations.md)"),
    Var("STREAMKIT_ON_UNCAUGHT_ERROR", "on_uncaught_error", one_of(*UNCAUGHT_POLICIES),
        "shutdown_worker", "an error that escapes processing: `shutdown_worker`, `replace` "
        "(restart the tasks from their last commit) or `shutdown_app` (every worker stops; "
        "docs/operations.md)"),
    Var("STREAMKIT_QUERY_TIMEOUT_MS", "query_timeout_ms", whole, 5000,
        "a read forwarded to another worker"),
    Var("STREAMKIT_API_TOKEN", "api_token", text, None,
        "require `Authorization: Bearer <token>` (all routes but /health, /ready)"),
    Var("STREAMKIT_MAX_URL_BYTES", "max_url_bytes", whole, 8192, "longest URL (414 past it)"),
    Var("STREAMKIT_MAX_HEADER_BYTES", "max_header_bytes", whole, 16384,
        "largest headers (431 past it)"),
    Var("STREAMKIT_MAX_BODY_BYTES", "max_body_bytes", whole, 1 << 20,
        "largest request body (413 past it)"),
    Var("STREAMKIT_SCAN_MAX_LIMIT", "scan_max_limit", whole, 1000, "most items of a scan page"),
    Var("STREAMKIT_MAX_WAIT_MS", "max_wait_ms", whole, 60000,
        "longest `?wait_for=` a worker accepts"),
    Var("STREAMKIT_READ_CACHE_ENTRIES", "read_cache_entries", whole, 10000,
        "decoded values kept per table partition for key reads (`0`: none; docs/queries.md)"),
    Var("STREAMKIT_GC_THRESHOLDS", "gc_thresholds", gc_thresholds, GC_THRESHOLDS,
        "the worker's `gc.set_threshold` (`python`: Python's 700,10,10; docs/operations.md)",
        "`7000,10,100`"),
    Var("STREAMKIT_PLUGINS", "plugins", text, "",
        "more plugins, `module:attr,...` (docs/plugins.md)"),
    Var("STREAMKIT_SECURITY_PROTOCOL", "security_protocol", one_of(*SECURITY_PROTOCOLS),
        "PLAINTEXT", "or `SSL`, `SASL_PLAINTEXT`, `SASL_SSL`"),
    Var("STREAMKIT_SASL_MECHANISM", "sasl_mechanism", text, None, "SASL, e.g. `PLAIN`, `SCRAM-SHA-256`"),
    Var("STREAMKIT_SASL_USERNAME", "sasl_username", text, None, "SASL user"),
    Var("STREAMKIT_SASL_PASSWORD", "sasl_password", text, None, "SASL password"),
    Var("STREAMKIT_SSL_CAFILE", "ssl_cafile", text, None, "TLS: the CA certificates to trust"),
    Var("STREAMKIT_SSL_CERTFILE", "ssl_certfile", text, None, "TLS: this client's certificate"),
    Var("STREAMKIT_SSL_KEYFILE", "ssl_keyfile", text, None, "TLS: this client's key"),
)
_SECURITY_FIELDS = {"security_protocol": "protocol", "sasl_mechanism": "sasl_mechanism",
                    "sasl_username": "sasl_username", "sasl_password": "sasl_password",
                    "ssl_cafile": "ssl_cafile", "ssl_certfile": "ssl_certfile",
                    "ssl_keyfile": "ssl_keyfile"}
_BY_PROFILE = {v.field: v for v in VARS if isinstance(v.default, PerProfile)}
_POSITIVE = ("partitions", "replication_factor", "commit_interval_ms", "commit_max_records",
             "close_timeout_ms",
             "fetch_max_records", "session_timeout_ms", "heartbeat_interval_ms",
             "query_timeout_ms", "scan_max_limit", "max_url_bytes", "max_body_bytes",
             "max_header_bytes", "max_wait_ms", "global_fetch_min_bytes")
# A field whose default depends on the profile: Settings(profile=...) fills it.
_FROM_PROFILE: Any = None


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
    """Everything a worker needs to know, with defaults that work on a fresh machine. The
    fields whose default depends on the profile get that profile's value unless given."""

    broker: str = DEFAULT_BROKER
    profile: Profile = "dev"
    data_dir: str = "streamkit-data"
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    advertised_url: str | None = None
    partitions: int = 4
    replication_factor: int = _FROM_PROFILE
    session_timeout_ms: int = _FROM_PROFILE
    heartbeat_interval_ms: int = _FROM_PROFILE
    commit_interval_ms: int = 1000
    commit_max_records: int = 50000
    close_timeout_ms: int = 30000
    fetch_max_records: int = 2000
    fetch_max_wait_ms: int = _FROM_PROFILE
    read_to_end_wait_ms: int = _FROM_PROFILE
    global_fetch_max_wait_ms: int | None = None  # None: fetch_max_wait_ms
    global_fetch_min_bytes: int = 1
    request_fetch_max_wait_ms: int | None = None  # None: fetch_max_wait_ms
    standby_replicas: int = 0
    on_error: OnError = "continue"
    on_production_error: OnProductionError = "fail"
    on_uncaught_error: OnUncaughtError = "shutdown_worker"
    processing_guarantee: Guarantee = "at_least_once"
    isolation_level: str = _FROM_PROFILE
    repartition_purge_interval_ms: int = 30000
    query_timeout_ms: int = 5000
    scan_max_limit: int = 1000
    max_url_bytes: int = 8192
    max_body_bytes: int = 1 << 20
    max_header_bytes: int = 16384
    max_wait_ms: int = 60000
    read_cache_entries: int = 10000
    gc_thresholds: tuple[int, int, int] | None = GC_THRESHOLDS  # None: Python's own
    api_token: str | None = None
    plugins: str = ""
    security: Security = field(default_factory=Security)

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ConfigError(f"STREAMKIT_PROFILE must be one of {', '.join(PROFILES)}, "
                              f"not {self.profile!r}")
        for name, var in _BY_PROFILE.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, var.default_for(self.profile))
        if self.on_error not in ("continue", "stop"):
            raise ConfigError(f"STREAMKIT_ON_ERROR must be continue or stop, not {self.on_error!r}")
        for name, env, choices in (("on_production_error", "STREAMKIT_ON_PRODUCTION_ERROR",
                                    PRODUCTION_POLICIES),
                                   ("on_uncaught_error", "STREAMKIT_ON_UNCAUGHT_ERROR",
                                    UNCAUGHT_POLICIES)):
            if getattr(self, name) not in choices:
                raise ConfigError(f"{env} must be one of {', '.join(choices)}, "
                                  f"not {getattr(self, name)!r}")
        if self.processing_guarantee not in GUARANTEES:
            raise ConfigError(f"STREAMKIT_PROCESSING_GUARANTEE must be one of "
                              f"{', '.join(GUARANTEES)}, not {self.processing_guarantee!r}")
        for name in _POSITIVE:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("standby_replicas", "read_cache_entries", "repartition_purge_interval_ms"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be 0 or more, got {getattr(self, name)}")
        if not 0 < self.web_port < 65536:
            raise ConfigError(f"STREAMKIT_WEB_PORT must be a TCP port, got {self.web_port}")
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ConfigError("the heartbeat interval must be shorter than the session timeout")
        _ = self.bootstrap_servers  # validates the broker URL

    @property
    def exactly_once(self) -> bool:
        return self.processing_guarantee == "exactly_once"

    @property
    def close_timeout_s(self) -> float:
        return self.close_timeout_ms / 1000

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
    def request_fetch_wait_ms(self) -> int:
        """How long the gateway's response consumer and the services' request consumers
        wait for records."""
        if self.request_fetch_max_wait_ms is None:
            return self.fetch_max_wait_ms
        return self.request_fetch_max_wait_ms

    @property
    def web_url(self) -> str:
        """The address other workers use to reach this worker's HTTP server."""
        return self.advertised_url or f"http://{self.web_host}:{self.web_port}"

    def with_overrides(self, **changes: Any) -> "Settings":
        """A copy with some fields changed."""
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """Read the STREAMKIT_* variables; a bad value raises ConfigError naming it."""
        env = os.environ if env is None else env
        broker = env.get("STREAMKIT_BROKER") or DEFAULT_BROKER
        # The local broker's address is the default; any other is taken for a real cluster.
        default_profile = "dev" if broker == DEFAULT_BROKER else "production"
        profile = env.get("STREAMKIT_PROFILE") or default_profile
        if profile not in PROFILES:
            raise ConfigError(f"STREAMKIT_PROFILE must be one of {', '.join(PROFILES)}, "
                              f"not {profile!r}")
        values = read_vars(VARS, env, profile)
        values["profile"] = profile
        security = Security(**{attr: values.pop(f) for f, attr in _SECURITY_FIELDS.items()})
        return cls(**values, security=security)


def markdown_table(variables: tuple[Var, ...] = VARS) -> str:
    """The table of the variables, as README.md shows it."""
    def shown(v: Var) -> str:
        if v.shown_default is not None:
            return v.shown_default
        if isinstance(v.default, PerProfile):
            values: dict[Any, list[str]] = {}
            for profile, value in v.default.items():
                values.setdefault(value, []).append(profile)
            return ", ".join(f"`{value}` {' / '.join(ps)}" for value, ps in values.items())
        return "" if v.default in (None, "") or not isinstance(v.default, (int, str)) \
            else f"`{v.default}`"

    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    rows += [f"| `{v.env}` | {shown(v)} | {v.doc} |" for v in variables]
    return "\n".join(rows)


if __name__ == "__main__":  # python -m streamkit.config: the table README.md holds
    sys.stdout.write(markdown_table() + "\n")
