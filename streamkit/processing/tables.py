"""Operators on tables: filter, map_values, and re-grouping with an adder and a subtractor.

They follow Kafka Streams' KTable operators. Each result is a table of its own (a store,
changelogged and restored like every other), which is also where the value an update
replaces comes from. A re-grouped table's update travels through the repartition topic
as a change pair (new, old): the aggregate of the old group takes the subtraction and
that of the new group the addition, so that counts stay right under updates and deletes.

Across crashes the aggregate is exact, where Kafka Streams needs exactly-once processing:
each change pair carries its origin (the input record's topic, partition and offset, and
its place among the pairs that record caused), and the aggregate keeps, per origin
partition, the last origin it applied, in a store of its own. Pairs reach it in the order
their origins were processed, so one at or before that mark was applied already: a
replay after a crash (the repartition topic then holds pairs twice) skips it.
"""
from __future__ import annotations

import heapq
import struct
from typing import Any, Callable

import orjson

from ..errors import DecodeError, SuppressBufferFull
from ..serde import Serde
from .nodes import Node

# flags (1: new present, 2: old present, 4: origin present), lengths of new and old
_HEAD = struct.Struct(">BII")
_NEW, _OLD, _ORIGIN = 1, 2, 4

# Where a change pair comes from: input topic, partition, offset, and the pair's place
# among those that record caused.
Origin = tuple[str, int, int, int]


class ChangeSerde:
    """A change pair (new, old, origin) in one record: new and old values of `inner`
    (either may be None) and the origin (None, or a JSON array): a header of flags and
    lengths, new's bytes, old's bytes, the origin's."""

    def __init__(self, inner: Serde) -> None:
        self.inner = inner
        self.name = f"change({inner.name})"

    def encode(self, obj: Any) -> bytes:
        new, old, origin = obj
        nb = b"" if new is None else self.inner.encode(new)
        ob = b"" if old is None else self.inner.encode(old)
        flags = ((_NEW if new is not None else 0) | (_OLD if old is not None else 0)
                 | (_ORIGIN if origin is not None else 0))
        tail = b"" if origin is None else orjson.dumps(origin)
        return _HEAD.pack(flags, len(nb), len(ob)) + nb + ob + tail

    def decode(self, data: bytes) -> tuple[Any, Any, Origin | None]:
        if len(data) < _HEAD.size:
            raise DecodeError("a change pair shorter than its header")
        flags, n, m = _HEAD.unpack_from(data)
        start = _HEAD.size
        if start + n + m > len(data):
            raise DecodeError("a change pair shorter than its values")
        new = self.inner.decode(data[start:start + n]) if flags & _NEW else None
        old = self.inner.decode(data[start + n:start + n + m]) if flags & _OLD else None
        origin = None
        if flags & _ORIGIN:
            try:
                origin = tuple(orjson.loads(data[start + n + m:]))
            except orjson.JSONDecodeError as exc:
                raise DecodeError(f"a change pair with an invalid origin: {exc}") from None
        return new, old, origin


class _TableOperator(Node):
    """Keeps its result in table `table`; forwards each change with the value it replaced,
    read from that table."""

    __slots__ = ("table",)
    gives_old = True
    # Kafka Streams' filter (with old values sent) forwards nothing for a key that was
    # absent and stays absent; its mapValues forwards the tombstone all the same.
    skips_absent = False

    def __init__(self, name: str, table: str) -> None:
        super().__init__(name)
        self.table = table

    def result(self, value: Any) -> Any:
        raise NotImplementedError

    def process(self, key, value, ts):
        new = None if value is None else self.result(value)
        store = self.ctx.task.stores[self.table]
        old = store.get(key)
        if new is None and old is None and self.skips_absent:
            return
        store.put(key, new)
        self.forward_change(key, new, old, ts)


class TableFilterNode(_TableOperator):
    """The entries whose value satisfies pred; an entry that stops satisfying it is
    deleted (a tombstone is forwarded)."""

    __slots__ = ("pred",)
    skips_absent = True

    def __init__(self, table: str, pred: Callable[[Any], bool]) -> None:
        super().__init__(f"table-filter:{table}", table)
        self.pred = pred

    def result(self, value):
        return value if self.pred(value) else None


class TableMapValuesNode(_TableOperator):
    """fn(value) per entry; a deleted entry is deleted (fn is not called on None)."""

    __slots__ = ("fn",)

    def __init__(self, table: str, fn: Callable[[Any], Any]) -> None:
        super().__init__(f"table-map-values:{table}", table)
        self.fn = fn

    def result(self, value):
        return self.fn(value)


class RegroupNode(Node):
    """Kafka Streams' KTableRepartitionMap: an update (new, old) of key k becomes the
    subtraction of selector(k, old) from its group and the addition of selector(k, new)
    to its group. When both land in one group they travel as one change pair (as Kafka
    Streams does since 3.5), which the aggregate applies as subtract, then add; otherwise
    the subtraction is sent first. A pair whose key or value is None is skipped."""

    __slots__ = ("selector", "_serial", "_seq")

    def __init__(self, name: str, selector: Callable[[Any, Any], Any]) -> None:
        super().__init__(name)
        self.selector = selector
        self._serial = -1  # the input record of the last pair sent, and its count
        self._seq = 0

    def _origin(self) -> Origin | None:
        ctx = self.ctx
        rec = ctx.record
        if rec is None:
            return None
        if ctx.serial != self._serial:
            self._serial, self._seq = ctx.serial, 0
        self._seq += 1
        return (rec.topic, rec.partition, rec.offset, self._seq)

    def process(self, key, value, ts):
        raise TypeError(f"{self.name} needs the value each update replaced")

    def _pair(self, key: Any, value: Any) -> Any:
        if value is None:
            return None
        pair = self.selector(key, value)
        if pair is None or pair[0] is None or pair[1] is None:
            return None
        return pair

    def process_change(self, key, new, old, ts):
        new_pair, old_pair = self._pair(key, new), self._pair(key, old)
        if new_pair is not None and old_pair is not None and new_pair[0] == old_pair[0]:
            self.forward(new_pair[0], (new_pair[1], old_pair[1], self._origin()), ts)
            return
        if old_pair is not None:
            self.forward(old_pair[0], (None, old_pair[1], self._origin()), ts)
        if new_pair is not None:
            self.forward(new_pair[0], (new_pair[1], None, self._origin()), ts)


class TableAggregateNode(Node):
    """Kafka Streams' KTableAggregate and KTableReduce: per change pair (new, old) of a
    group, subtract(aggregate, old) when both exist, then add(aggregate or initial(),
    new) when new exists. reduce=True: a group with no aggregate takes new as it is.
    An aggregate that becomes None (a subtractor returning None) is deleted. A pair whose
    origin is at or before the mark in table `positions` for its origin partition was
    applied already and is skipped (see the module docstring)."""

    __slots__ = ("table", "positions", "initial", "add", "subtract", "reduce")
    gives_old = True

    def __init__(self, table: str, positions: str, initial: Any,
                 add: Callable[[Any, Any], Any], subtract: Callable[[Any, Any], Any],
                 reduce: bool = False) -> None:
        super().__init__(f"table-aggregate:{table}")
        self.table, self.positions = table, positions
        self.add, self.subtract, self.reduce = add, subtract, reduce
        self.initial = initial if callable(initial) else (lambda: initial)

    def _applied(self, origin: Origin | None) -> bool:
        """Whether the pair from origin was applied already; if not, marks it as applied."""
        if origin is None:
            return False
        topic, partition, offset, seq = origin
        marks = self.ctx.task.stores[self.positions]
        where = f"{topic}:{partition}"
        mark = marks.get(where)
        if mark is not None and (offset, seq) <= tuple(mark):
            return True
        marks.put(where, [offset, seq])
        return False

    def process(self, key, value, ts):
        if key is None:
            raise ValueError(f"{self.table}: a record without a key cannot be aggregated")
        new, old, origin = value
        if self._applied(origin):
            return
        store = self.ctx.task.stores[self.table]
        before = store.get(key)
        agg = before
        if old is not None and agg is not None:
            agg = self.subtract(agg, old)
        if new is not None:
            if agg is None:
                agg = new if self.reduce else self.add(self.initial(), new)
            else:
                agg = self.add(agg, new)
        store.put(key, agg)
        self.forward_change(key, agg, before, ts)


class _Buffer:
    """A suppression's buffered keys of one task, oldest first (a heap of buffer time,
    sequence number and key), its stream time, and (under max_bytes) the encoded size of
    each waiting entry and their sum."""

    __slots__ = ("heap", "seq", "stream_time", "sizes", "bytes")

    def __init__(self, heap: list[tuple[int, int, Any]], seq: int, stream_time: int,
                 sizes: dict[Any, int]) -> None:
        heapq.heapify(heap)
        self.heap, self.seq, self.stream_time = heap, seq, stream_time
        self.sizes, self.bytes = sizes, sum(sizes.values())


class SuppressNode(Node):
    """Kafka Streams' KTable.suppress(untilTimeLimit(limit, maxRecords(n).withMaxBytes(b)
    .emitEarlyWhenFull() or .shutDownWhenFull())): an update of a key waits in table
    `buffer` until stream time (the largest timestamp this operator has seen) reaches its
    buffer time + limit_ms, and then goes on as the key's latest value, with the timestamp
    of its latest record and, as the replaced value, the one before the first buffered
    update. An update of a key already waiting replaces its value and keeps its buffer
    time. Past max_records waiting keys, or max_bytes of waiting entries (key and entry
    encoded as the table holds them), the oldest go on at once, or, with
    shut_down_when_full, SuppressBufferFull is raised. Stream time is kept in table
    `clock`."""

    __slots__ = ("buffer", "clock", "limit_ms", "max_records", "max_bytes", "shut_down")
    gives_old = True

    def __init__(self, buffer: str, clock: str, limit_ms: int, max_records: int | None,
                 max_bytes: int | None = None, shut_down_when_full: bool = False) -> None:
        super().__init__(f"suppress:{buffer}")
        self.buffer, self.clock = buffer, clock
        self.limit_ms, self.max_records = limit_ms, max_records
        self.max_bytes, self.shut_down = max_bytes, shut_down_when_full

    def _state(self, task: Any) -> _Buffer:
        state = task.operator_state.get(self.buffer)
        if state is None:
            # Rebuilt from the stores whenever the task is created (after a restart, from
            # what the changelogs restored).
            store = task.stores[self.buffer]
            heap, sizes = [], {}
            for kb, vb in store.raw_items():
                key = store.keys.decode(kb)
                _new, _old, (bt, seq, _ts) = store.values.decode(vb)
                heap.append((bt, seq, key))
                if self.max_bytes is not None:
                    sizes[key] = len(kb) + len(vb)
            time = task.stores[self.clock].get("t")
            state = _Buffer(heap, max((s for _b, s, _k in heap), default=0) + 1,
                            -(2 ** 63) if time is None else time, sizes)
            task.operator_state[self.buffer] = state
        return state

    def process(self, key, value, ts):
        self.process_change(key, value, None, ts)

    def process_change(self, key, new, old, ts):
        task = self.ctx.task
        state = self._state(task)
        store = task.stores[self.buffer]
        waiting = store.get(key)
        if waiting is None:
            entry = (new, old, (ts, state.seq, ts))
            heapq.heappush(state.heap, (ts, state.seq, key))
            state.seq += 1
        else:
            _new, first_old, (bt, seq, _ts) = waiting
            entry = (new, first_old, (bt, seq, ts))
        store.put(key, entry)
        if self.max_bytes is not None:
            size = len(store.keys.encode(key)) + len(store.values.encode(entry))
            state.bytes += size - state.sizes.get(key, 0)
            state.sizes[key] = size
        if ts > state.stream_time:
            state.stream_time = ts
            task.stores[self.clock].put("t", ts)
        heap = state.heap
        while heap and heap[0][0] <= state.stream_time - self.limit_ms:
            self._emit(state, store, heapq.heappop(heap)[2])
        if self._full(state):
            if self.shut_down:
                raise SuppressBufferFull(
                    f"suppress {self.buffer!r}: {len(heap)} keys waiting"
                    + ("" if self.max_bytes is None else f" ({state.bytes} bytes)")
                    + f", more than max_records={self.max_records}, max_bytes="
                    f"{self.max_bytes} allow (shut_down_when_full)")
            while self._full(state):
                self._emit(state, store, heapq.heappop(heap)[2])

    def _full(self, state: _Buffer) -> bool:
        return ((self.max_records is not None and len(state.heap) > self.max_records)
                or (self.max_bytes is not None and state.bytes > self.max_bytes))

    def _emit(self, state: _Buffer, store: Any, key: Any) -> None:
        new, old, (_bt, _seq, ts) = store.get(key)
        store.delete(key)
        state.bytes -= state.sizes.pop(key, 0)
        self.forward_change(key, new, old, ts)
