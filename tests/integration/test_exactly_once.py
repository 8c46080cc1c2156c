"""STREAMKIT_PROCESSING_GUARANTEE=exactly_once on Apache Kafka: a worker SIGKILLed again and
again, a worker paused past its session timeout (a zombie), and a transaction aborted
half-way by fencing leave every output exactly once for read_committed consumers and every
table value exact; a broker without transactions is refused at start-up."""
from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
import time

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streamkit import devbroker
from streamkit.testing.kafka import caught_up, produce, read_topic

from tests.oracles import kafka_partition

from .conftest import metric, metrics_text, records_in, table_values, worker_env
from .test_tables import wait_for
from .test_windows import BASE, KEYS, PARTITIONS, closers, events, expected

EOS = "tests.integration.apps.exactly_once"


@pytest.fixture
def eos_env(broker, app_id, tmp_path):
    def env(name: str = "w0", **extra: str) -> dict[str, str]:
        return worker_env(broker, tmp_path / f"data-{name}", EOS_APP_ID=app_id,
                          STREAMKIT_PROCESSING_GUARANTEE="exactly_once", **extra)

    return env


def eos_events(n: int, groups: bool = False):
    """test_windows.events, each with an id of its own (the join gives pairs of ids); with
    groups, each also names one of LABELS' groups (for the foreign-key join)."""
    return [(key, {**ev, "id": i, **({"group": f"g{i % len(LABELS)}"} if groups else {})})
            for i, (key, ev) in enumerate(events(n))]


LABELS = {"g0": "zero", "g1": "one", "g2": "two"}


def labelled(evs) -> dict[str, list[tuple[int, str]]]:
    """Per key, its events' (id, label of its group) in the order they were produced: a
    foreign-key join result is each key's latest event with its label, so every result of
    a key is one of these, in this order, and its last result is the last of these."""
    out: dict[str, list[tuple[int, str]]] = {}
    for key, ev in evs:
        out.setdefault(key, []).append((ev["id"], LABELS[ev["group"]]))
    return out


def labelled_results_differ(broker, app_id, evs) -> dict:
    """The keys whose committed foreign-key join results are not distinct events of the
    key, in order, with their labels, ending with its last event: a result made again
    after a crash would be there twice. (A result may be skipped: an update that a later
    one overtakes before the answer for it comes back gives no result.)"""
    want = labelled(evs)
    got: dict[str, list[tuple[int, str]]] = {}
    for rec in read_topic(broker, f"{app_id}-labelled", isolation_level="read_committed"):
        v = None if rec.value is None else orjson.loads(rec.value)
        if v is not None:
            got.setdefault(rec.key.decode(), []).append((v["id"], v["label"]))
    bad = {}
    for key in want.keys() | got.keys():
        results, order = got.get(key, []), {r: i for i, r in enumerate(want.get(key, []))}
        positions = [order.get(r, -1) for r in results]
        if (not results or -1 in positions or positions != sorted(set(positions))
                or results[-1] != want[key][-1]):
            bad[key] = (results[-5:], want.get(key, [])[-5:])
    return dict(sorted(bad.items())[:5]) | ({"...": len(bad)} if len(bad) > 5 else {})


# The oracle, from the definitions: per key the running sum after each of its events, in
# the order they were produced; per key and 1 s window of event time the sum of its events
# (test_windows.expected); per key the pairs of an event of amount <= 4 and an event of
# amount >= 5 at most 100 ms apart (both bounds inclusive), every pair once.
def running_sums(evs) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for key, ev in evs:
        sums = out.setdefault(key, [])
        sums.append((sums[-1] if sums else 0) + ev["amount"])
    return out


def joined_pairs(evs) -> dict[str, list[tuple[int, int]]]:
    by_key: dict[str, list[dict]] = {}
    for key, ev in evs:
        by_key.setdefault(key, []).append(ev)
    out = {}
    for key, evs_of_key in by_key.items():
        pairs = [(a["id"], b["id"]) for a in evs_of_key for b in evs_of_key
                 if a["amount"] <= 4 and b["amount"] >= 5 and abs(a["ts"] - b["ts"]) <= 100]
        if pairs:
            out[key] = sorted(pairs)
    return out


def committed_pairs(broker: str, app_id: str) -> dict[str, list[tuple[int, int]]]:
    out: dict[str, list[tuple[int, int]]] = {}
    for rec in read_topic(broker, f"{app_id}-joined", isolation_level="read_committed"):
        pair = orjson.loads(rec.value)
        out.setdefault(rec.key.decode(), []).append((pair["l"], pair["r"]))
    return {key: sorted(pairs) for key, pairs in out.items()}


def committed_running(broker: str, app_id: str) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for rec in read_topic(broker, f"{app_id}-running", isolation_level="read_committed"):
        key = rec.key.decode()
        if not key.startswith("close"):
            out.setdefault(key, []).append(orjson.loads(rec.value))
    return out


def committed_windows(broker: str, app_id: str) -> dict[tuple, list[int]]:
    out: dict[tuple, list[int]] = {}
    for rec in read_topic(broker, f"{app_id}-windows", isolation_level="read_committed"):
        w = orjson.loads(rec.key)
        if not w["key"].startswith("close"):
            out.setdefault((w["key"], w["start"], w["end"]), []).append(int(rec.value))
    return out


def table_sums(worker) -> dict[str, int]:
    return table_values(worker, "sums", KEYS)


def finish_and_check(broker, app_id, worker, evs, groups: bool = False) -> None:
    """Close every window, wait until the input is committed and every window is out, and
    compare everything with the oracle (with groups, the foreign-key join's too)."""
    topic = f"{app_id}-events"
    produce(broker, topic, closers(BASE + 10 * len(evs) + 60_000))
    want_windows = expected(evs)
    wait_for(lambda: caught_up(broker, f"{app_id}-processors", topic), timeout=90, every=0.5)
    try:
        wait_for(lambda: len(committed_windows(broker, app_id)) >= len(want_windows),
                 timeout=60, every=0.5)
    finally:
        got_windows = committed_windows(broker, app_id)
        # Exactly once: no window twice, none missing, none wrong.
        assert differences(got_windows, {k: [v] for k, v in want_windows.items()}) == {}
    # Every update of every key once, in order: a replayed record would repeat a sum.
    assert differences(committed_running(broker, app_id), running_sums(evs)) == {}
    # Every pair of the join once (a pair made again would be there twice).
    assert differences(committed_pairs(broker, app_id), joined_pairs(evs)) == {}
    want_totals = {k: v[-1] for k, v in running_sums(evs).items()}
    assert wait_for(lambda: table_sums(worker) == want_totals, timeout=30)
    assert read_topic(broker, f"{app_id}-dead-letters") == []
    if groups:
        # The join's answers travel through two more topics: wait for the last ones.
        try:
            wait_for(lambda: labelled_results_differ(broker, app_id, evs) == {}, timeout=30)
        finally:
            assert labelled_results_differ(broker, app_id, evs) == {}


def differences(got: dict, want: dict) -> dict:
    """What got has that want has not, per key (a short message, not two large dicts)."""
    out = {}
    for k in want.keys() | got.keys():
        if got.get(k) != want.get(k):
            out[k] = (got.get(k), want.get(k))
    return dict(sorted(out.items(), key=str)[:10]) | ({"...": len(out)} if len(out) > 10 else {})


def trickle(broker, topic, evs, done: threading.Event) -> threading.Thread:
    def run():
        for start in range(0, len(evs), 400):
            produce(broker, topic, evs[start:start + 400])
            time.sleep(0.05)  # pacing: records keep arriving while workers die
        done.set()

    t = threading.Thread(target=run)
    t.start()
    return t


def test_five_sigkills_leave_every_result_exactly_once(broker, app_id, workers, eos_env):
    # Short commits, so that every kill falls among several transactions.
    env = eos_env(STREAMKIT_COMMIT_MAX_RECORDS="300", STREAMKIT_FETCH_MAX_RECORDS="100",
                  STREAMKIT_COMMIT_INTERVAL_MS="2000")
    total = 8000
    evs = eos_events(total, groups=True)
    produce(broker, f"{app_id}-labels", [(g, {"label": label}) for g, label in LABELS.items()])
    rng = random.Random(20)
    w = workers(EOS, env, "w0")
    w.wait_ready()
    done = threading.Event()
    t = trickle(broker, f"{app_id}-events", evs, done)
    try:
        for i in range(5):
            # Kill after a random number of records, counted by the worker in hand (a
            # restarted worker counts from 0 and replays what was not committed).
            mark = rng.randrange(300, 1500)
            wait_for(lambda w=w, mark=mark: records_in(w) >= mark, timeout=60, every=0.05)
            w.kill()
            w = workers(EOS, env, f"w{i + 1}")
            w.wait_ready()
    finally:
        t.join()
    finish_and_check(broker, app_id, w, evs, groups=True)


def test_a_paused_worker_that_comes_back_after_its_tasks_moved_commits_nothing(
        broker, app_id, workers, eos_env):
    total = 4000
    evs = eos_events(total)
    # The worker to be paused commits only when its partitions are taken from it: it
    # holds uncommitted results when it stops, and tries to commit them when it wakes.
    # With a standby of every task on the other worker: what it applies of the zombie's
    # changelogs must be committed transactions only, or the takeover starts from them.
    zombie = workers(EOS, eos_env("z", STREAMKIT_COMMIT_INTERVAL_MS="600000",
                                  STREAMKIT_COMMIT_MAX_RECORDS="1000000",
                                  STREAMKIT_STANDBY_REPLICAS="1"), "zombie")
    zombie.wait_ready()
    n_tasks = len(zombie.tasks())  # alone, it runs every task of the app
    other = workers(EOS, eos_env("o", STREAMKIT_STANDBY_REPLICAS="1"), "other")
    other.wait_ready()
    wait_for(lambda: zombie.tasks() and other.tasks(), timeout=60)
    done = threading.Event()
    t = trickle(broker, f"{app_id}-events", evs[:total // 2], done)
    try:
        wait_for(lambda: records_in(zombie) > 200, timeout=60, every=0.05)
        # Reads show committed state only: the zombie's keys as its transactions left them
        # (nothing yet: its commit interval is long), not the sums it has computed since.
        wait_for(lambda: reads_show_committed_state_only(broker, app_id, zombie), timeout=60,
                 every=0.2)
        os.kill(zombie.pid, signal.SIGSTOP)
        try:
            # The group drops the silent member; the other worker takes every task and
            # processes everything produced so far.
            t.join()
            produce(broker, f"{app_id}-events", evs[total // 2:])
            wait_for(lambda: len(other.tasks()) == n_tasks, timeout=60)
            wait_for(lambda: caught_up(broker, f"{app_id}-processors", f"{app_id}-events"),
                     timeout=90, every=0.5)
        finally:
            os.kill(zombie.pid, signal.SIGCONT)
        # The woken worker tries to commit what it processed before the pause: fenced.
        wait_for(lambda: "was fenced" in zombie.log_tail(200_000), timeout=60, every=0.5)
    finally:
        t.join()
    # It rejoins and may get tasks again; it commits them when it stops (its interval is
    # long), and the other worker finishes.
    assert zombie.stop() == 0
    finish_and_check(broker, app_id, other, evs)


def reads_show_committed_state_only(broker: str, app_id: str, worker) -> bool:
    """Read every key of the worker's tasks between two reads of the committed changelog:
    each answer must be a committed value (404 for none). False, to read again, when a
    rebalance is under way (a 503, or its tasks changed meanwhile): the worker commits
    when its tasks are taken, so what is committed moves while it answers."""
    def committed() -> dict[str, int]:
        return {rec.key.decode(): orjson.loads(rec.value) for rec in read_topic(
            broker, f"{app_id}-sums-changelog", isolation_level="read_committed")}

    mine = {p for _, p in worker.tasks()}
    keys = [k for k in KEYS if kafka_partition(k.encode(), PARTITIONS) in mine]
    before = committed()
    read = {k: worker.get(f"/tables/sums/keys/{k}") for k in keys}
    after = committed()
    if not keys or any(status == 503 for status, _ in read.values()) or \
            {p for _, p in worker.tasks()} != mine:
        return False
    for k, (status, body) in read.items():
        assert status in (200, 404), (k, status, body)
        shown = body["value"] if status == 200 else None
        assert shown in (before.get(k), after.get(k)), (k, shown, before.get(k), after.get(k))
    return True


async def fence_an_open_transaction(broker: str, app_id: str, worker, timeout: float = 60.0
                                    ) -> tuple[TopicPartition, int, int]:
    """Watch the partitions of `<id>-running` until one ends past its last stable offset (a
    transaction of its task is open and has written there); freeze the worker, start a
    producer with that task's transactional id (the broker then ends the open
    transaction: it aborts it, unless its commit was already under way), and let the
    worker go on. Return the partition and the offsets [start, end) the transaction had
    written."""
    topic = f"{app_id}-running"
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    stable_reader = AIOKafkaConsumer(bootstrap_servers=broker, isolation_level="read_committed")
    end_reader = AIOKafkaConsumer(bootstrap_servers=broker)
    await stable_reader.start()
    await end_reader.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stable = await stable_reader.end_offsets(tps)
            ends = await end_reader.end_offsets(tps)
            for tp in tps:
                if ends[tp] <= stable[tp]:
                    continue
                os.kill(worker.pid, signal.SIGSTOP)
                try:
                    # Read again with the worker frozen: the transaction seen open may have
                    # committed in the meantime; if one is still open, the range is its
                    # records (one task's producer writes a partition).
                    start = (await stable_reader.end_offsets([tp]))[tp]
                    end = (await end_reader.end_offsets([tp]))[tp]
                    if end > start:
                        fencer = AIOKafkaProducer(bootstrap_servers=broker,
                                                  transactional_id=f"{app_id}-0_{tp.partition}")
                        await fencer.start()
                        await fencer.stop()
                finally:
                    os.kill(worker.pid, signal.SIGCONT)
                if end > start:
                    return tp, start, end
        raise TimeoutError(f"no transaction seen open on {topic} in {timeout}s")
    finally:
        await stable_reader.stop()
        await end_reader.stop()


async def read_range(broker: str, tp: TopicPartition, start: int, end: int,
                     isolation_level: str) -> list[int]:
    """The offsets in [start, end) of tp that a reader of isolation_level is given."""
    reader = AIOKafkaConsumer(bootstrap_servers=broker, isolation_level=isolation_level)
    await reader.start()
    try:
        reader.assign([tp])
        reader.seek(tp, start)
        got: list[int] = []
        deadline = time.monotonic() + 30
        while await reader.position(tp) < end:
            assert time.monotonic() < deadline, f"could not read {tp} to {end}"
            batches = await reader.getmany(tp, timeout_ms=200)
            got += [r.offset for r in batches.get(tp, []) if r.offset < end]
        return got
    finally:
        await reader.stop()


def test_a_transaction_fenced_half_way_shows_nothing_and_the_worker_recovers(
        broker, app_id, workers, eos_env):
    env = eos_env(STREAMKIT_COMMIT_MAX_RECORDS="200", STREAMKIT_FETCH_MAX_RECORDS="100",
                  STREAMKIT_COMMIT_INTERVAL_MS="1000")
    pool = eos_events(20_000)  # what is produced of it is the input
    sent = [0]
    topic = f"{app_id}-events"
    w = workers(EOS, env, "w0")
    w.wait_ready()
    n_tasks = len(w.tasks())
    fenced = threading.Event()

    def feed(more) -> None:
        # Small steps, so that the worker commits transaction after transaction, for as
        # long as more(events produced by this call) says.
        n = 0
        while sent[0] < len(pool) and more(n):
            produce(broker, topic, pool[sent[0]:sent[0] + 50])
            sent[0] += 50
            n += 50

    feeder = threading.Thread(target=feed, args=(lambda n: not fenced.is_set(),))
    feeder.start()
    try:
        for _ in range(20):
            tp, start, end = asyncio.run(fence_an_open_transaction(broker, app_id, w))
            written = asyncio.run(read_range(broker, tp, start, end, "read_uncommitted"))
            visible = asyncio.run(read_range(broker, tp, start, end, "read_committed"))
            if not visible:
                break
            # Its commit had been sent before the worker froze: it counts, try again.
    finally:
        fenced.set()
        feeder.join()
    # The transaction had written its records, and they never became visible. The last
    # stable offset and the log end are read in two requests, so [start, end) can begin with
    # a transaction that ended between them (aborted, as nothing in the range is visible)
    # and its marker, which the reader skips: the fenced transaction's records are those
    # after the range's last gap.
    assert visible == [] and written, (visible, written)
    gaps = [i for i in range(1, len(written)) if written[i] != written[i - 1] + 1]
    fenced_records = written[gaps[-1]:] if gaps else written
    assert fenced_records == list(range(fenced_records[0], end)), (start, end, written)
    assert wait_for(lambda: "was fenced" in w.log_tail(200_000), timeout=60, every=0.2)
    # The worker rejoined, took the task again with a new producer, and processes on.
    assert wait_for(lambda: len(w.tasks()) == n_tasks, timeout=60)
    feed(lambda n: n < 1000)
    evs = pool[:sent[0]]
    finish_and_check(broker, app_id, w, evs)
    text = metrics_text(w)
    commits = metric(text, "streamkit_commit_seconds_count")
    p50 = metric(text, "streamkit_commit_seconds", quantile="0.5")
    p99 = metric(text, "streamkit_commit_seconds", quantile="0.99")
    assert commits and commits >= len(evs) // 200 and 0 < p50 <= p99 < 10, (commits, p50, p99)


def test_exactly_once_on_a_broker_without_transactions_fails_at_start_up(
        app_id, workers, tmp_path):
    b = devbroker.start()
    try:
        env = worker_env(b.bootstrap, tmp_path / "data", EOS_APP_ID=app_id,
                         STREAMKIT_PROFILE="devbroker",
                         STREAMKIT_PROCESSING_GUARANTEE="exactly_once")
        w = workers(EOS, env, "w0")
        wait_for(lambda: not w.alive(), timeout=90, every=0.5)
        assert w.returncode != 0
        assert "needs a broker with transactions" in w.log_tail(20_000)
    finally:
        b.stop()
