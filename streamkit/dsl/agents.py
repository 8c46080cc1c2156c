"""Faust's agent idiom on the batched path: an `async for` over a stream that streamkit's
fetcher feeds, and tables with Faust's mapping interface (`table[key] += 1`) that are
streamkit tables (changelogged, restored, standby-replicated, served over HTTP).

The agent's coroutine is driven by hand, one record at a time, inside the processing of
a batch: its body runs between two records of its stream with the record's task in
hand, so that table writes land in that task's store and commit with its input offsets.
Its body may therefore wait only for its stream; it sends records by `yield` (to the
agent's sinks) and reaches other systems from a Faust agent or a service instead.
"""
from __future__ import annotations

from typing import Any, Callable, Generator

from ..errors import TopologyError
from ..partitioner import partition_for
from ..processing.context import ProcessorContext
from ..processing.nodes import Node, SinkNode
from ..processing.topology import Group, TableSpec, Topology
from ..serde import Serde
from ..state.store import MISSING

_EMPTY = object()
_WAITING = object()  # what a suspended agent hands back: "give me the next record"


class _Take:
    """The awaitable of `__anext__`: the pending record, or a suspension until one is."""

    __slots__ = ("stream", "pair")

    def __init__(self, stream: "AgentStream", pair: bool) -> None:
        self.stream, self.pair = stream, pair

    def __await__(self) -> Generator[Any, None, Any]:
        stream = self.stream
        while stream.pending is _EMPTY:
            yield _WAITING
        key, value = stream.pending
        stream.pending = _EMPTY
        return (key, value) if self.pair else value


class AgentStream:
    """What a batched agent iterates: the values of its records (`async for v in
    stream`), or (key, value) pairs (`async for k, v in stream.items()`)."""

    def __init__(self) -> None:
        self.pending: Any = _EMPTY

    def __aiter__(self) -> "AgentStream":
        return self

    def __anext__(self) -> _Take:
        return _Take(self, False)

    def items(self) -> "_Items":
        return _Items(self)


class _Items:
    def __init__(self, stream: AgentStream) -> None:
        self.stream = stream

    def __aiter__(self) -> "_Items":
        return self

    def __anext__(self) -> _Take:
        return _Take(self.stream, True)


class AgentNode(Node):
    """Hands each record to the agent's body; what the body yields goes on (to sinks)
    with the record's key and timestamp. A body that raises loses its coroutine (the
    record goes to dead letters) and starts afresh at the next record, as Faust restarts
    a crashed agent."""

    __slots__ = ("fn", "stream", "running", "step", "is_generator")

    def __init__(self, name: str, fn: Callable[[AgentStream], Any]) -> None:
        super().__init__(f"agent:{name}")
        self.fn = fn
        self.stream = AgentStream()
        self.running: Any = None   # the agent's coroutine or async generator
        self.step: Any = None      # the awaitable being driven
        self.is_generator = False

    def process(self, key: Any, value: Any, ts: int) -> None:
        ctx = self.ctx
        ctx.agent = self
        try:
            if self.running is None:
                self._start()
            self.stream.pending = (key, value)
            self._drive(key, ts)
        except BaseException:
            self.stream.pending = _EMPTY
            self._drop()
            raise
        finally:
            ctx.agent = None
        if self.stream.pending is not _EMPTY:
            # The body ended without taking the record: start it again for the next one.
            self.stream.pending = _EMPTY

    def _start(self) -> None:
        self.running = self.fn(self.stream)
        self.is_generator = hasattr(self.running, "__anext__")
        if not self.is_generator and not hasattr(self.running, "send"):
            raise TopologyError(f"{self.name}: a batched agent is an async function "
                                "(async def) that iterates its stream")
        self.step = None
        self._drive(None, 0)  # run the body up to its first wait for a record

    def _drive(self, key: Any, ts: int) -> None:
        """Run the body until it waits for the next record."""
        while True:
            if self.step is None:
                self.step = self.running.__anext__() if self.is_generator else self.running
            try:
                signal = self.step.send(None)
            except StopIteration as done:
                if not self.is_generator:
                    self._drop()  # the body returned
                    return
                self.step = None
                self.forward(key, done.value, ts)  # the body yielded a value
                continue
            except StopAsyncIteration:
                self._drop()
                return
            if signal is _WAITING:
                return
            raise TopologyError(
                f"{self.name}: a batched agent may await only its stream (it awaited "
                f"{signal!r}); send records by `yield`, and do I/O in a Faust agent")

    def _drop(self) -> None:
        """Forget the body's coroutine (an async generator is closed by the event loop's
        finalizer, as any abandoned one is)."""
        running, self.running, self.step = self.running, None, None
        if running is not None and not self.is_generator:
            running.close()


class AgentTable:
    """A streamkit table with Faust's mapping interface, for batched agents: read and
    written only inside an agent's body, where the record's task is in hand. A missing key
    reads as `default()` (not stored, as in Faust) or raises KeyError without a default.
    A key must belong to the partition of the record being processed (the input keyed by
    the table's key), so that queries find it where Kafka's partitioner puts it."""

    def __init__(self, spec: TableSpec, ctx: ProcessorContext,
                 default: Callable[[], Any] | None) -> None:
        self.spec, self.ctx, self.default = spec, ctx, default
        self.name = spec.name

    def _store(self) -> Any:
        task = self.ctx.task
        if task is None or self.ctx.agent is None:
            raise TopologyError(
                f"table {self.name} is read and written inside a batched agent's body; "
                f"elsewhere read it with `await app.read({self.name!r}, key)` or over HTTP")
        return task.stores[self.name]

    def __getitem__(self, key: Any) -> Any:
        value = self._store().get(key, MISSING)
        if value is MISSING:
            if self.default is None:
                raise KeyError(key)
            return self.default()
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        value = self._store().get(key, MISSING)
        return default if value is MISSING else value

    def __contains__(self, key: Any) -> bool:
        return self._store().get(key, MISSING) is not MISSING

    def __setitem__(self, key: Any, value: Any) -> None:
        store = self._store()
        self._check_partition(key)
        store.put(key, value)

    def __delitem__(self, key: Any) -> None:
        store = self._store()
        self._check_partition(key)
        store.delete(key)

    def pop(self, key: Any, *default: Any) -> Any:
        value = self.get(key, MISSING)
        if value is MISSING:
            if default:
                return default[0]
            raise KeyError(key)
        del self[key]
        return value

    def _check_partition(self, key: Any) -> None:
        ctx = self.ctx
        n = ctx.partitions.get(self.spec.changelog)
        if n is None:
            return
        p = partition_for(self.spec.keys.encode(key), n)
        if p != ctx.task.partition:
            raise TopologyError(
                f"table {self.name}: key {key!r} belongs to partition {p}, but the record "
                f"came from partition {ctx.task.partition}; key the agent's input by the "
                "table's key (produce with that key, or group_by before the agent)")

    def __repr__(self) -> str:
        return f"<AgentTable {self.name}>"


class Agents:
    """The batched agents and agent tables of one topology: one sub-topology holds all of
    them, as a Faust app's tables are co-partitioned with its agents' topics."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.group = Group()

    def table(self, name: str, keys: Serde, values: Serde, default: Callable[[], Any] | None,
              expose: bool) -> AgentTable:
        spec = self.topology.add_table(name, keys, values, self.group, expose)
        return AgentTable(spec, self.topology.context, default)

    def agent(self, stream: Any, fn: Callable[[AgentStream], Any], name: str,
              sinks: list[tuple[str, Serde, Serde]]) -> AgentNode:
        """Attach fn's node after stream (a dsl Stream) and its sinks after the node."""
        stream._group.union(self.group)
        node = AgentNode(name, fn)
        out = stream._then(node)
        for topic, keys, values in sinks:
            self.topology.sinks.add(topic)
            out._then(SinkNode(topic, keys, values))
        return node
