"""Operators on tables: filter, map_values, and re-grouping with an adder and a subtractor.

They follow Kafka Streams' KTable operators. Each result is a table of its own (a store,
changelogged and restored like every other), which is also where the value an update
replaces comes from. A re-grouped table's update travels through the repartition topic
as a change pair (new, old): the aggregate of the old group takes the subtraction and
that of the new group the addition, so that counts stay right under updates and deletes.
"""
from __future__ import annotations

import struct
from typing import Any, Callable

from ..errors import DecodeError
from ..serde import Serde
from .nodes import Node

_HEAD = struct.Struct(">BI")  # flags (1: new present, 2: old present), length of new
_NEW, _OLD = 1, 2


class ChangeSerde:
    """A change pair (new, old) of values of `inner`, either of them None, in one record:
    a flag byte, the length of new, new's bytes, old's bytes."""

    def __init__(self, inner: Serde) -> None:
        self.inner = inner
        self.name = f"change({inner.name})"

    def encode(self, obj: Any) -> bytes:
        new, old = obj
        nb = b"" if new is None else self.inner.encode(new)
        ob = b"" if old is None else self.inner.encode(old)
        flags = (_NEW if new is not None else 0) | (_OLD if old is not None else 0)
        return _HEAD.pack(flags, len(nb)) + nb + ob

    def decode(self, data: bytes) -> tuple[Any, Any]:
        if len(data) < _HEAD.size:
            raise DecodeError("a change pair shorter than its header")
        flags, n = _HEAD.unpack_from(data)
        start = _HEAD.size
        if start + n > len(data):
            raise DecodeError("a change pair shorter than its new value")
        new = self.inner.decode(data[start:start + n]) if flags & _NEW else None
        old = self.inner.decode(data[start + n:]) if flags & _OLD else None
        return new, old


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

    __slots__ = ("selector",)

    def __init__(self, name: str, selector: Callable[[Any, Any], Any]) -> None:
        super().__init__(name)
        self.selector = selector

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
            self.forward(new_pair[0], (new_pair[1], old_pair[1]), ts)
            return
        if old_pair is not None:
            self.forward(old_pair[0], (None, old_pair[1]), ts)
        if new_pair is not None:
            self.forward(new_pair[0], (new_pair[1], None), ts)


class TableAggregateNode(Node):
    """Kafka Streams' KTableAggregate and KTableReduce: per change pair (new, old) of a
    group, subtract(aggregate, old) when both exist, then add(aggregate or initial(),
    new) when new exists. reduce=True: a group with no aggregate takes new as it is.
    An aggregate that becomes None (a subtractor returning None) is deleted."""

    __slots__ = ("table", "initial", "add", "subtract", "reduce")
    gives_old = True

    def __init__(self, table: str, initial: Any, add: Callable[[Any, Any], Any],
                 subtract: Callable[[Any, Any], Any], reduce: bool = False) -> None:
        super().__init__(f"table-aggregate:{table}")
        self.table, self.add, self.subtract, self.reduce = table, add, subtract, reduce
        self.initial = initial if callable(initial) else (lambda: initial)

    def process(self, key, value, ts):
        if key is None:
            raise ValueError(f"{self.table}: a record without a key cannot be aggregated")
        new, old = value
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
