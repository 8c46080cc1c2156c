"""The app shell: a faust.App with streamkit's defaults, its processing path, its parts
(routes, readiness conditions) and its plugins. streamkit.App builds on it with the query
layer and the operations routes; what needs the app sees only this shell."""
from __future__ import annotations

import gc
import importlib.util
import logging
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable

import faust
from aiohttp import web
from mode import ServiceT

from . import plugins
from .auth import auth_middleware
from .config import Settings
from .dsl import GroupedStream, Stream, Table, global_table, source_stream, table_from_topic
from .dsl.agents import AgentNode, Agents, AgentStream, AgentTable
from .errors import ConfigError
from .http import json_response, unavailable
from .parts import Part, RoutesPart, runs_as_worker
from .processing.runner import Runner
from .processing.topology import Topology
from .routing import Routes
from .serde import SerdeSpec, resolve
from .state.directory_lock import DirectoryLock
from .state.global_tables import GlobalTable

log = logging.getLogger(__name__)


def _require_rocksdict() -> None:
    if importlib.util.find_spec("rocksdict") is None:
        raise ConfigError("streamkit keeps state in RocksDB: pip install rocksdict")


def _credentials(settings: Settings) -> Any:
    sec = settings.security
    if sec.sasl_mechanism:
        return faust.SASLCredentials(username=sec.sasl_username, password=sec.sasl_password,
                                     mechanism=sec.sasl_mechanism,
                                     ssl_context=sec.client_kwargs().get("ssl_context"))
    if sec.protocol == "SSL":
        return faust.SSLCredentials(sec.client_kwargs()["ssl_context"])
    return None


def faust_options(app_id: str, settings: Settings) -> dict[str, Any]:
    """faust.App's options for a streamkit worker: broker, state, web server, timings."""
    options: dict[str, Any] = dict(
        broker=",".join(f"kafka://{s}" for s in settings.bootstrap_servers),
        store="rocksdb://",
        datadir=str(Path(settings.data_dir) / app_id / "faust"),
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        # The address Faust's assignor gives other workers is the one streamkit's does.
        canonical_url=settings.web_url,
        broker_session_timeout=settings.session_timeout_ms / 1000,
        broker_heartbeat_interval=settings.heartbeat_interval_ms / 1000,
        # Faust's tables take Faust's partition count (topic_partitions, 8 unless the app
        # gives it), which must match their agents' topics: STREAMKIT_PARTITIONS sizes
        # streamkit's own topics only.
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest",
        producer_linger=0.005,
        # Faust's own serializer defaults (raw keys, JSON values) are kept: a Faust program
        # moved to streamkit.App writes and reads the same bytes as before.
        # Lines and headers up to 64 KiB reach streamkit's route guard, which answers an
        # over-long URL with a JSON 414 instead of aiohttp's plain-text 400.
        web_application_options={
            "client_max_size": settings.max_body_bytes,
            "handler_args": {"max_line_size": 65536, "max_field_size": 65536},
        },
    )
    credentials = _credentials(settings)
    if credentials is not None:
        options["broker_credentials"] = credentials
    return options


def _topic_name(topic: Any) -> str:
    """The name of a topic given by name or as a Faust topic of one name."""
    if isinstance(topic, str):
        return topic
    names = list(getattr(topic, "topics", None) or ())
    if len(names) != 1:
        raise ConfigError(f"a batched agent reads and writes topics of one name, not {topic!r}")
    return names[0]


def _value_type(topic: Any, default: SerdeSpec) -> SerdeSpec:
    """A Faust topic's value_type (a faust.Record class) when it has one, else default."""
    value_type = getattr(topic, "value_type", None)
    return value_type if isinstance(value_type, type) and value_type is not dict else default


def _json_types(kwargs: dict[str, Any]) -> dict[str, Any]:
    """key_type/value_type dict or list -> None (JSON decoded as it is)."""
    for name in ("key_type", "value_type"):
        if kwargs.get(name) in (dict, list):
            kwargs[name] = None
    return kwargs


class AppShell(faust.App):
    """A Faust app with streamkit's defaults: broker and web address from the environment,
    RocksDB state, orjson, /health and /ready, the batched processing path, parts and
    plugins."""

    def __init__(self, id: str, *, settings: Settings | None = None,
                 service_name: str | None = None, processing_guarantee: str | None = None,
                 **options: Any) -> None:
        _require_rocksdict()
        settings = settings or Settings.from_env()
        if processing_guarantee is not None:
            # streamkit's guarantee (docs/exactly-once.md); Faust's own agents and tables
            # keep Faust's at-least-once, whose exactly-once has open correctness bugs.
            settings = replace(settings, processing_guarantee=processing_guarantee)  # type: ignore[arg-type]
        self.settings = settings
        super().__init__(id, **{**faust_options(id, settings), **options})
        self.topology = Topology(id)
        self.processors = Runner(id, self.topology, settings, beacon=self.beacon)
        # What only a worker starts (after Faust's own services): not Faust's client-only
        # or producer-only app, which must not join the workers' groups.
        self.worker_services: list[ServiceT] = [self.processors]
        self.parts: list[Part] = []
        self.limit_breaches: Counter[str] = Counter()   # HTTP requests refused, per limit
        self._routes_on: Any = None
        # Plugins name the service they extend; several app ids (tests, tenants) may run
        # the same service.
        self.service_name = service_name or id
        self.plugins: list[str] | None = None
        self._agents = Agents(self.topology)
        # <data dir>/<app id>: the stores of streamkit's tables, its services' reply records
        # and Faust's own tables, used by one worker at a time.
        self.state_lock = DirectoryLock(Path(settings.data_dir) / id)

    # the processing DSL ---------------------------------------------------------
    def source(self, topic: str, keys: SerdeSpec = "str", values: SerdeSpec = "json",
               timestamp: Callable[[Any], int] | None = None,
               on_error: str | None = None) -> Stream:
        """The records of a topic, on the batched path: the entry point of streamkit's DSL.
        `timestamp(value)` gives event time in ms (default: the record timestamp);
        `on_error` is 'continue' (dead-letter the record, the default) or 'stop'.
        (`app.stream` is Faust's own, for agents.)"""
        if on_error not in (None, "continue", "stop"):
            raise ConfigError(f"on_error must be 'continue' or 'stop', not {on_error!r}")
        return source_stream(self.topology, topic, keys, values, timestamp, on_error)

    def table(self, name: str, topic: str, keys: SerdeSpec = "str", values: SerdeSpec = "json",
              expose: bool = True) -> Table:
        """Table `name` holding the latest value of each key of `topic`."""
        return table_from_topic(self.topology, name, topic, keys, values, expose)

    def global_table(self, name: str, topic: str, keys: SerdeSpec = "str",
                     values: SerdeSpec = "json", expose: bool = True) -> GlobalTable:
        """Global table `name`: every worker holds every key of `topic` (latest value per
        key, None deletes); join streams to it with `stream.join_global(...)`."""
        return global_table(self.topology, name, topic, keys, values, expose)

    # Faust's agent idiom on the batched path ------------------------------------
    def agent_table(self, name: str, default: Callable[[], Any] | None = None,
                    keys: SerdeSpec = "str", values: SerdeSpec = "json",
                    expose: bool = True) -> AgentTable:
        """A table for batched agents, with Faust's mapping interface (`t[k] += 1`,
        `t.get(k)`, `del t[k]`; a missing key reads as default()): a streamkit table,
        changelogged, restored, and served over HTTP like every other."""
        return self._agents.table(name, resolve(keys, "str"), resolve(values), default, expose)

    def batched_agent(self, source: Any, *, sink: Any = (), name: str | None = None,
                      keys: SerdeSpec = "str", values: SerdeSpec = "json"
                      ) -> Callable[[Callable[[AgentStream], Any]], AgentNode]:
        """Decorate `async def f(stream)` (Faust's agent shape) to run on the batched path:
        `source` is a topic name, a Faust topic, or a DSL stream (a grouped one
        brings each key's records to the partition of its new key); what the body yields
        goes to each topic of `sink` (names or Faust topics), keyed as its record. The body
        may wait only for its stream (see streamkit.dsl.agents)."""
        if isinstance(source, GroupedStream):
            source = source.stream
        stream = source if isinstance(source, Stream) else self.source(
            _topic_name(source), keys, _value_type(source, values))
        sinks = [sink] if isinstance(sink, str) or not isinstance(sink, (list, tuple)) else sink
        targets = [(_topic_name(t), stream.keys, resolve(_value_type(t, "json"))) for t in sinks]

        def register(fn: Callable[[AgentStream], Any]) -> AgentNode:
            return self._agents.agent(stream, fn, name or fn.__name__, targets)

        return register

    # Faust's API, where Faust would fail ---------------------------------------------
    # Faust takes any value_type for a faust.Record and fails on every record when given
    # dict or list; here they mean what a Faust user means by them: a JSON object or array
    # (Faust's own decoding without a model). Every other argument is Faust's.
    def topic(self, *topics: str, **kwargs: Any) -> Any:
        return super().topic(*topics, **_json_types(kwargs))

    def channel(self, **kwargs: Any) -> Any:
        return super().channel(**_json_types(kwargs))

    def Table(self, name: str, **kwargs: Any) -> Any:  # noqa: N802 (Faust's name)
        return super().Table(name, **_json_types(kwargs))

    def GlobalTable(self, name: str, **kwargs: Any) -> Any:  # noqa: N802 (Faust's name)
        return super().GlobalTable(name, **_json_types(kwargs))

    def check_table_names(self) -> None:
        """Faust's tables and streamkit's share the changelog naming `<app>-<name>-changelog`:
        one name for both would mix two tables in one topic."""
        both = sorted(set(self.tables) & (set(self.topology.tables) | set(self.topology.globals)))
        if both:
            raise ConfigError(f"{', '.join(both)}: a Faust table and a streamkit table of one "
                              "name would share a changelog topic; rename one of them")

    # parts ----------------------------------------------------------------------
    def add_part(self, part: Part) -> Part:
        """Add a part (routes, OpenAPI paths, a condition of /ready) to this worker."""
        self.parts.append(part)
        return part

    def add_routes(self, installer: Callable[[Routes], None]) -> None:
        """Call installer(routes) when the web server starts, to add routes; routes is a
        streamkit.routing.Routes, whose routes get the URL and header limits and JSON
        errors (routes.app is the aiohttp application)."""
        self.add_part(RoutesPart(installer))

    def openapi_paths(self) -> dict[str, Any]:
        """The OpenAPI path items that the parts add to the worker's own."""
        paths: dict[str, Any] = {}
        for part in self.parts:
            paths.update(part.openapi_paths())
        return paths

    @property
    def is_ready(self) -> bool:
        """Partitions assigned, every table recovered, and every part ready."""
        return (self.processors.ownership.ready and not self.rebalancing
                and all(part.ready() for part in self.parts))

    async def topology_view(self) -> dict[str, Any]:
        """What GET /topology answers: this app's processing graph."""
        return {"app": self.conf.id, **self.topology.describe()}

    # Faust integration ------------------------------------------------------------
    def load_plugins(self) -> list[str]:
        """Install the plugins that name this app (once); see streamkit.plugins."""
        if self.plugins is None:
            self.plugins = plugins.install(self, self.settings.plugins)
        return self.plugins

    def worker_init_post_autodiscover(self) -> None:
        # Before Faust initializes the web server: a plugin may add routes (a service does).
        self.load_plugins()
        super().worker_init_post_autodiscover()

    async def on_first_start(self) -> None:
        s = self.settings
        if s.gc_thresholds is not None:
            gc.set_threshold(*s.gc_thresholds)
        log.info("streamkit app=%s broker=%s profile=%s session_timeout_ms=%d "
                 "heartbeat_interval_ms=%d fetch_max_wait_ms=%d commit_interval_ms=%d "
                 "partitions=%d replication_factor=%d security=%s gc_thresholds=%s",
                 self.conf.id,
                 ",".join(s.bootstrap_servers), s.profile, s.session_timeout_ms,
                 s.heartbeat_interval_ms, s.fetch_max_wait_ms, s.commit_interval_ms,
                 s.partitions, s.replication_factor, s.security.protocol,
                 ",".join(map(str, gc.get_threshold())))
        Path(self.conf.datadir).parent.mkdir(parents=True, exist_ok=True)
        self.check_table_names()
        await super().on_first_start()

    @property
    def keeps_state(self) -> bool:
        """Whether a worker of this app keeps stores under its state directory: streamkit's
        tables (window stores and join buffers among them), global tables, Faust's tables,
        or a part's (the services' reply records). A stateless app (a gateway) runs as many
        workers as wanted on one data directory."""
        topo = self.topology
        return bool(topo.tables or topo.globals or self.tables
                    or any(part.keeps_state() for part in self.parts))

    async def on_start(self) -> None:
        if runs_as_worker(self) and self.keeps_state:
            self.state_lock.acquire()  # before any child opens a store (at every start)
        await super().on_start()

    async def stop(self) -> None:
        try:
            await super().stop()
        finally:
            # After every child (the runner, the services, Faust's tables) closed its
            # stores, and whether or not each stopped cleanly.
            self.state_lock.release()

    async def on_started(self) -> None:
        await super().on_started()
        # What exists now (Faust, aiohttp, the topology, the clients) lives as long as the
        # worker. Frozen, it is left out of the collector's full passes, which would
        # otherwise walk all of it and stall the event loop for tens of milliseconds.
        gc.collect()
        gc.freeze()

    def on_init_dependencies(self) -> Iterable[ServiceT]:
        self.load_plugins()  # for workers started without the faust command; plugins may add agents
        if not self.agents and not self.tables and not self._app_tasks:
            # Faust's consumer serves Faust's agents, tables, and the streams and leader
            # timers that tasks use. Without any of them it would hold a consumer group of
            # its own, and rebalance it, for nothing.
            self.boot_strategy.enable_kafka_consumer = False
        own = self.worker_services if runs_as_worker(self) else []
        return [*super().on_init_dependencies(), *own]

    def on_webserver_init(self, web: Any) -> None:
        super().on_webserver_init(web)
        # `faust worker` initializes the web server twice (after autodiscovery and when
        # the web service starts): install the routes and their listeners once.
        if self._routes_on is not web.web_app:
            self._routes_on = web.web_app
            self.install_routes(web.web_app)

    def install_routes(self, web_app: web.Application) -> None:
        """Add /health, /ready, every part's routes, and the JSON 404/405 catch-all last
        (Faust's web server calls this when it starts)."""
        if self.settings.api_token:
            # A middleware, not a per-route check, so that every route is covered, including
            # any that bypass streamkit's Routes; it costs every request a little.
            web_app.middlewares.append(auth_middleware(
                self.settings.api_token, lambda: self.limit_breaches.update(["auth"])))
        routes = Routes(web_app, self.settings, self.limit_breaches)

        async def health(request: web.Request) -> web.Response:
            return json_response({"status": "ok", "app": self.conf.id})

        async def ready(request: web.Request) -> web.Response:
            if self.is_ready:
                runner = self.processors
                return json_response({"ready": True, "app": self.conf.id,
                                      "tasks": sorted(runner.tasks),
                                      "standby": sorted(runner.standbys or ())})
            return unavailable("partitions are being assigned or tables recovered")

        routes.get("/health", health)
        routes.get("/ready", ready)
        for part in self.parts:
            part.install_routes(routes)
        routes.add_fallback()
