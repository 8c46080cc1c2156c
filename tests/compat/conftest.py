"""The compat harness: one program, run twice (faust.App and streamkit.App) at the same time,
on the same input, each on topics of its own; what each produced is read back and compared
with the other and with an oracle computed in the test."""
from __future__ import annotations

import asyncio
import json
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streamkit.devbroker import free_port
from streamkit.testing.kafka import ensure_topic, read_topic
from streamkit.worker_process import WorkerProcess

FLAVORS = ("faust", "streamkit")
ROOT = str(Path(__file__).resolve().parents[2])
# Each flavor's app id is the test's app id and this suffix.
SUFFIX = {"faust": "f", "streamkit": "s"}


def wait_until(fn: Callable[[], Any], timeout: float, every: float = 0.2) -> Any:
    """Poll fn until it returns something true or timeout passes; its last value either way."""
    deadline = time.monotonic() + timeout
    while True:
        last = fn()
        if last or time.monotonic() >= deadline:
            return last
        time.sleep(every)


def encode(x: Any) -> bytes | None:
    """str as UTF-8 (Faust's raw key serializer reads it as the same str), bytes as they are,
    anything else as JSON."""
    if x is None or isinstance(x, bytes):
        return x
    if isinstance(x, str):
        return x.encode()
    return orjson.dumps(x)


def js(x: Any) -> bytes:
    """x as JSON bytes (what Faust's "json" serializer reads), e.g. a str value of a
    value_type=str topic."""
    return orjson.dumps(x)


def canon(items: Iterable[Any]) -> list[Any]:
    """items in a canonical order (by their JSON text): a multiset to compare."""
    return sorted(items, key=lambda x: json.dumps(x, sort_keys=True, default=repr))


def decode(b: bytes | None) -> Any:
    """A record's key or value as a test compares it: JSON when it parses, else text."""
    if b is None:
        return None
    try:
        return orjson.loads(b)
    except orjson.JSONDecodeError:
        return b.decode(errors="replace")


@dataclass(frozen=True)
class Rec:
    """One record of a topic, decoded (see decode), and its key and value as written."""
    partition: int
    offset: int
    key: Any
    value: Any
    key_bytes: bytes | None
    value_bytes: bytes | None


async def _produce(bootstrap: str, topic: str, records: list[tuple], partitions: int) -> None:
    await ensure_topic(bootstrap, topic, partitions)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = []
        for rec in records:
            key, value, ts_ms, partition = (*rec, None, None, None)[:4]
            futures.append(await producer.send(topic, encode(value), key=encode(key),
                                               timestamp_ms=ts_ms, partition=partition))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def produce(bootstrap: str, topic: str, records: Iterable[tuple], partitions: int = 4) -> None:
    """Send records (key, value[, timestamp_ms[, partition]]) in order, creating the topic
    with `partitions` unless it exists."""
    asyncio.run(_produce(bootstrap, topic, list(records), partitions))


@dataclass
class Run:
    """One flavor's run of the program: its app id (the prefix of its topics) and worker."""
    flavor: str
    app_id: str
    bootstrap: str
    data_dir: Path
    worker: WorkerProcess | None = None

    def topic(self, name: str) -> str:
        return f"{self.app_id}-{name}"

    def page(self, path: str) -> Any:
        """The JSON body of GET path on the worker; None unless it answered 200."""
        assert self.worker is not None
        status, body = self.worker.get(path)
        return body if status == 200 else None

    def records(self, name: str) -> list[Rec]:
        """Every record of this run's topic `name` (prefixed with the app id), decoded."""
        return self.records_of(self.topic(name))

    def records_of(self, topic: str) -> list[Rec]:
        """Every record of a topic named in full, decoded."""
        return [Rec(r.partition, r.offset, decode(r.key), decode(r.value), r.key, r.value)
                for r in read_topic(self.bootstrap, topic)]

    def values(self, name: str) -> list[Any]:
        return [r.value for r in self.records(name)]

    def errors(self) -> str:
        """The worker log's crashes and exceptions, each once (the full log is the worker's
        log file in the test's tmp_path)."""
        assert self.worker is not None
        keep: list[str] = []
        for line in self.worker.log_tail(5_000_000).splitlines():
            line = line.strip()
            if (("Crashed reason=" in line or "[CRITICAL]" in line
                 or re.match(r"^[\w.]+(Error|Exception|Mismatch): ", line))
                    and line[:300] not in keep):
                keep.append(line[:300])
        return "\n".join(keep[-25:]) or "(no crash or exception in the log)"


@dataclass
class Pair:
    """The program `module` run as both flavors; collects divergences for one verdict."""
    module: str
    bootstrap: str
    runs: dict[str, Run]
    start_worker: Callable[..., WorkerProcess]
    problems: list[str] = field(default_factory=list)

    def produce(self, name: str, records: Iterable[tuple], partitions: int = 4) -> None:
        """The same records to each run's topic `name`."""
        records = list(records)
        for run in self.runs.values():
            produce(self.bootstrap, run.topic(name), records, partitions)

    def create_topic(self, name: str, partitions: int) -> None:
        for run in self.runs.values():
            asyncio.run(ensure_topic(self.bootstrap, run.topic(name), partitions))

    def start(self, **env: str) -> "Pair":
        """Start both flavors' workers at once."""
        for flavor, run in self.runs.items():
            run.worker = self.start_worker(self.module, {
                "COMPAT_FLAVOR": flavor, "COMPAT_APP_ID": run.app_id,
                "STREAMKIT_BROKER": f"kafka://{self.bootstrap}",
                "STREAMKIT_DATA_DIR": str(run.data_dir),
                "STREAMKIT_WEB_PORT": str(free_port()), "PYTHONPATH": ROOT, **env}, flavor)
        return self

    def settle(self, probe: Callable[[Run], Any], done: Callable[[Any], bool],
               timeout: float = 60.0, grace: float = 15.0) -> dict[str, Any]:
        """Poll probe(run) for both runs until done(result) holds for both, or timeout, or
        `grace` seconds after the first run got there; the last results either way (a run
        that never got there is compared as it is)."""
        last: dict[str, Any] = {}
        pending = set(self.runs)
        deadline = [time.monotonic() + timeout]

        def step() -> bool:
            if time.monotonic() >= deadline[0]:
                return True
            for flavor in sorted(pending):
                run = self.runs[flavor]
                try:
                    last[flavor] = probe(run)
                except Exception as exc:  # a topic not created yet, a page not serving
                    last[flavor] = f"<probe failed: {type(exc).__name__}: {exc}>"
                    continue
                if done(last[flavor]):
                    pending.discard(flavor)
                    deadline[0] = min(deadline[0], time.monotonic() + grace)
                elif run.worker is not None and not run.worker.alive():
                    pending.discard(flavor)  # it will never get there
            return not pending

        wait_until(step, timeout)
        return last

    def check(self, what: str, got: dict[str, Any], oracle: Any) -> None:
        """Faust's result must equal the oracle, and streamkit's must equal Faust's (and so
        the oracle); every difference is recorded for the verdict."""
        f, s = got.get("faust"), got.get("streamkit")
        if f != oracle:
            self.problems.append(f"{what}: faust.App differs from the oracle\n"
                                 f"  oracle: {_show(oracle)}\n  faust:  {_show(f)}")
        if s != f:
            self.problems.append(f"{what}: streamkit.App differs from faust.App\n"
                                 f"  faust:     {_show(f)}\n  streamkit: {_show(s)}")

    def differs(self, what: str, got: dict[str, Any], faust_oracle: Any,
                streamkit_oracle: Any) -> None:
        """A documented difference (docs/faust.md): each flavor must give its own oracle."""
        for flavor, oracle in (("faust", faust_oracle), ("streamkit", streamkit_oracle)):
            if got.get(flavor) != oracle:
                self.problems.append(f"{what}: {flavor} differs from its oracle\n"
                                     f"  oracle: {_show(oracle)}\n  {flavor}: {_show(got.get(flavor))}")

    def verdict(self) -> None:
        if self.problems:
            logs = "\n".join(f"--- {flavor} worker log: crashes and exceptions ---\n"
                             f"{run.errors()}\n({run.worker.log_path})"
                             for flavor, run in self.runs.items() if run.worker is not None)
            pytest.fail("\n".join(self.problems) + "\n" + logs, pytrace=False)


def _show(x: Any, limit: int = 1500) -> str:
    try:
        text = json.dumps(x, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        text = repr(x)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


@pytest.fixture
def compat(broker, app_id, workers, tmp_path) -> Callable[[str], Pair]:
    """compat(module) -> a Pair of runs of the program module (workers not started yet)."""

    def make(module: str) -> Pair:
        runs = {flavor: Run(flavor, f"{app_id}-{SUFFIX[flavor]}", broker,
                            tmp_path / f"data-{flavor}") for flavor in FLAVORS}
        return Pair(module, broker, runs, workers)

    return make


# Programs that wait for the wall clock (a crontab fires on the minute; Faust resubscribes to
# a stream made at run time 45 s later) start with the session and are checked by their
# test: `@pytest.mark.early(start=start)` on the test, where start(pair) produces the input and
# starts the workers, and the test takes the started pair from the `early` fixture.

def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "early(start=start): start(pair) runs when the session's first compat test "
                   "starts; the test gets that pair from the `early` fixture")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The early tests last: by then their programs have had the time they need.
    here = Path(__file__).parent
    early = [i for i in items if i.get_closest_marker("early")
             and Path(str(i.fspath)).parent == here]
    if early:
        items[:] = [i for i in items if i not in early] + early


@pytest.fixture(scope="session", autouse=True)
def _early_pairs(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Any:
    items = [item for item in request.session.items if item.get_closest_marker("early")
             and Path(str(item.fspath)).parent == Path(__file__).parent]
    pairs: dict[str, Pair] = {}
    started: list[WorkerProcess] = []
    try:
        if items:
            broker = request.getfixturevalue("broker")
        for item in items:
            tmp = tmp_path_factory.mktemp(f"early-{item.name}"[:30])
            app_id = f"t-{item.name.replace('_', '-')[:30]}-{uuid.uuid4().hex[:6]}"

            def start_worker(module: str, env: dict[str, str], name: str,
                             tmp: Path = tmp) -> WorkerProcess:
                w = WorkerProcess(module, env, tmp / f"{name}.log",
                                  cwd=os.environ.get("STREAMKIT_TEST_CWD"))
                started.append(w)
                return w.start()

            pair = Pair(item.module.MODULE, broker,
                        {flavor: Run(flavor, f"{app_id}-{SUFFIX[flavor]}", broker,
                                     tmp / f"data-{flavor}") for flavor in FLAVORS},
                        start_worker)
            item.get_closest_marker("early").kwargs["start"](pair)
            pairs[item.nodeid] = pair
        yield pairs
    finally:
        for w in started:
            w.kill()


@pytest.fixture
def early(request: pytest.FixtureRequest, _early_pairs: dict[str, Pair]) -> Pair:
    """The pair of this test's program, started with the session (see _early_pairs)."""
    return _early_pairs[request.node.nodeid]
