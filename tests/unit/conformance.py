"""Running cases transcribed from Kafka Streams' own DSL unit tests (apache/kafka,
streams/src/test/java/org/apache/kafka/streams/kstream/internals/) through streamkit's
TopologyTestDriver.

A case is data: the records the Kafka test pipes, in order, each step followed by the
records the Kafka test expects its topology to have emitted since the step before, copied
from the Kafka test (never regenerated from streamkit). Kafka's test helpers are mirrored
here: MockValueJoiner.TOSTRING_JOINER (left + "+" + right, null as "null"),
MockInitializer.STRING_INIT ("0"), MockAggregator.TOSTRING_ADDER (agg + "+" + value) and
MockReducer.STRING_ADDER (a + "+" + b)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from streamkit import JoinWindows, WindowedKey
from streamkit.dsl import source_stream
from streamkit.processing.topology import Topology
from streamkit.testing import TopologyTestDriver

# A step: the records piped ((topic, key, value, timestamp), ...) and what the Kafka test
# expects to have been emitted since the previous step (None: not checked).
Step = tuple[list[tuple[str, Any, Any, int]], Any]


def L(key: Any, value: Any, ts: int) -> tuple[str, Any, Any, int]:  # noqa: N802
    """A record of the join's left stream (Kafka's topic1)."""
    return ("left", key, value, ts)


def R(key: Any, value: Any, ts: int) -> tuple[str, Any, Any, int]:  # noqa: N802
    """A record of the join's right stream (Kafka's topic2)."""
    return ("right", key, value, ts)


def I(key: Any, value: Any, ts: int) -> tuple[str, Any, Any, int]:  # noqa: N802, E743
    """A record of an aggregation's input topic."""
    return ("in", key, value, ts)


def W(key: Any, start: int, end: int) -> WindowedKey:  # noqa: N802
    """Kafka's Windowed(key, window): the key of a windowed result."""
    return WindowedKey(key, start, end)


def _text(v: Any) -> str:
    return "null" if v is None else str(v)


def tostring_joiner(left: Any, right: Any) -> str:
    """MockValueJoiner.TOSTRING_JOINER."""
    return f"{_text(left)}+{_text(right)}"


def string_adder(agg: str, value: str) -> str:
    """MockAggregator.TOSTRING_ADDER and MockReducer.STRING_ADDER."""
    return f"{agg}+{value}"


@dataclass(frozen=True)
class JoinCase:
    kafka_test: str            # "<Kafka test class>.<test method>"
    how: str
    windows: JoinWindows
    steps: list[Step]
    same: bool = True          # streamkit's default semantics gives these records too


def join_topology(how: str, windows: JoinWindows, semantics: str) -> Topology:
    topo = Topology("conformance")
    left = source_stream(topo, "left", "int", "json", None, None)
    right = source_stream(topo, "right", "int", "json", None, None)
    left.join_window(right, windows, tostring_joiner, how=how, name="join", values="str",
                     semantics=semantics).to("out")
    return topo


def run_steps(driver: TopologyTestDriver, steps: list[Step],
              emitted: Callable[[TopologyTestDriver], Any], label: str) -> None:
    """Pipe each step's records and compare what was emitted with the Kafka test's."""
    for i, (records, expected) in enumerate(steps):
        for topic, key, value, ts in records:
            driver.pipe(topic, key, value, ts)
        got = emitted(driver)
        if expected is not None:
            assert got == expected, f"{label}, step {i} ({records})"


def joined(driver: TopologyTestDriver) -> list[tuple[Any, Any, int]]:
    return [(r.key, r.value, r.timestamp) for r in driver.read_output("out")]


def run_join(case: JoinCase, semantics: str) -> None:
    logging.getLogger("streamkit.windows.late").setLevel(logging.ERROR)
    with TopologyTestDriver(join_topology(case.how, case.windows, semantics)) as driver:
        run_steps(driver, case.steps, joined, f"{case.kafka_test} [{semantics}]")


def emitted_from(topic: str) -> Callable[[TopologyTestDriver], list[tuple[Any, Any, int]]]:
    def read(driver: TopologyTestDriver) -> list[tuple[Any, Any, int]]:
        return [(r.key, r.value, r.timestamp) for r in driver.read_output(topic)]
    return read


def by_window_start(records: list[tuple[Any, Any, int]]) -> dict[int, set[tuple[Any, int]]]:
    """The Kafka sliding-window tests' gatherOutput: per window start, the set of (value,
    timestamp) emitted."""
    out: dict[int, set[tuple[Any, int]]] = {}
    for key, value, ts in records:
        out.setdefault(key.start, set()).add((value, ts))
    return out


def by_key_and_start(records: list[tuple[Any, Any, int]]) -> list[tuple[Any, Any, int]]:
    """The Kafka tests' comparator on windowed results: key, then window start (stable)."""
    return sorted(records, key=lambda r: (r[0].key, r[0].start))


# --------------------------------------------------------------------------- windows
# How a Kafka test compares the windowed results its topology emitted.

@dataclass(frozen=True)
class Ordered:
    """Every result, in order (MockApiProcessor.processed())."""
    records: list

    def check(self, got: list) -> None:
        assert got == self.records


@dataclass(frozen=True)
class ByStart:
    """gatherOutput: per window start, the set of (value, timestamp) emitted."""
    values: dict

    def check(self, got: list) -> None:
        assert by_window_start(got) == self.values


@dataclass(frozen=True)
class SortedByKeyAndStart:
    """Every result, sorted by key then window start (a stable sort)."""
    records: list

    def check(self, got: list) -> None:
        assert by_key_and_start(got) == self.records


@dataclass(frozen=True)
class SortedByTextAndTime:
    """Every result, sorted by the text of Kafka's Windowed key ("[k1@0/2]") then timestamp."""
    records: list

    def check(self, got: list) -> None:
        def text(r: tuple) -> tuple[str, int]:
            return f"[{r[0].key}@{r[0].start}/{r[0].end}]", r[2]
        assert sorted(got, key=text) == self.records


@dataclass(frozen=True)
class LastPerWindow:
    """lastValueAndTimestampPerKey: the last (value, timestamp) of each window named."""
    values: dict

    def check(self, got: list) -> None:
        last = {k: (v, t) for k, v, t in got}
        assert {k: last.get(k) for k in self.values} == self.values


@dataclass(frozen=True)
class WindowCase:
    kafka_test: str
    spec: Any
    final_spec: Any            # the spec with emit-on-close when the Kafka test changes it
    op: str                    # "aggregate", "reduce" or "count"
    records: list
    update: Any                # the expectation with emit="update" (None: not checked)
    final: Any                 # with emit="final" (Kafka: emitStrategy onWindowClose, or
                               # suppress(untilWindowCloses))
    initial: str = "0"
    merge: Callable[[Any, Any], Any] | None = None
    late: int | None = None    # records dropped for closed windows (Kafka's dropped-records)


def run_window_case(case: WindowCase, emit: str) -> None:
    logging.getLogger("streamkit.windows.late").setLevel(logging.ERROR)
    spec = case.final_spec if emit == "final" and case.final_spec is not None else case.spec
    topo = Topology("conformance")
    stream = source_stream(topo, "in", "str", "str", None, None).group_by_key().windowed_by(spec)
    if case.op == "count":
        stream.count("store", emit=emit, to="out")
    elif case.op == "reduce":
        stream.reduce("store", string_adder, emit=emit, to="out", values="str")
    else:
        stream.aggregate("store", initial=case.initial, add=string_adder, merge=case.merge,
                         emit=emit, to="out", values="str")
    expected = case.update if emit == "update" else case.final
    with TopologyTestDriver(topo) as driver:
        for topic, key, value, ts in case.records:
            driver.pipe(topic, key, value, ts)
        if expected is not None:
            expected.check(emitted_from("out")(driver))
        if case.late is not None:
            assert driver.late_records == case.late
