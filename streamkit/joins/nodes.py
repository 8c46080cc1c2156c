"""Join operators. Each reads the other side from a store of the same task (co-partitioned
tables) or from the worker's full copy of a global table."""
from __future__ import annotations

from typing import Any, Callable, Literal, cast

from ..processing.nodes import Node

How = Literal["inner", "left", "outer"]
Joiner = Callable[[Any, Any], Any]


def check_how(how: str, allowed: tuple[str, ...]) -> How:
    """how, if it is one of allowed (ValueError otherwise)."""
    if how not in allowed:
        raise ValueError(f"how must be one of {allowed}, not {how!r}")
    return cast(How, how)


class StreamTableJoinNode(Node):
    """Each record joined with the table's current value for its key."""

    __slots__ = ("table", "joiner", "left")

    def __init__(self, table: str, joiner: Joiner, how: How) -> None:
        super().__init__(f"join:{table}:{how}")
        self.table, self.joiner, self.left = table, joiner, how == "left"

    def process(self, key, value, ts):
        other = self.ctx.task.stores[self.table].get(key)
        if other is not None or self.left:
            self.forward(key, self.joiner(value, other), ts)


class GlobalJoinNode(Node):
    """Each record joined with the global table's value for key_fn(value)."""

    __slots__ = ("lookup", "key_fn", "joiner", "left")

    def __init__(self, name: str, lookup: Callable[[Any], Any], key_fn: Callable[[Any], Any],
                 joiner: Joiner, how: How) -> None:
        super().__init__(f"join-global:{name}:{how}")
        self.lookup, self.key_fn, self.joiner, self.left = lookup, key_fn, joiner, how == "left"

    def process(self, key, value, ts):
        fk = self.key_fn(value)
        other = None if fk is None else self.lookup(fk)
        if other is not None or self.left:
            self.forward(key, self.joiner(value, other), ts)


class TableTableJoinNode(Node):
    """One side's change joined with the other side's current value into the result table.
    A key whose join no longer holds (a side deleted, for inner or left) is deleted; a
    change that leaves a key without a row, as it was, forwards nothing."""

    __slots__ = ("result", "other", "joiner", "how", "this_is_left")
    gives_old = True

    def __init__(self, result: str, other: str, joiner: Joiner, how: How, this_is_left: bool):
        super().__init__(f"join-table:{result}:{'left' if this_is_left else 'right'}")
        self.result, self.other, self.joiner, self.how = result, other, joiner, how
        self.this_is_left = this_is_left

    def process(self, key, value, ts):
        stores = self.ctx.task.stores
        other = stores[self.other].get(key)
        left, right = (value, other) if self.this_is_left else (other, value)
        keep = {"inner": left is not None and right is not None,
                "left": left is not None,
                "outer": left is not None or right is not None}[self.how]
        joined = self.joiner(left, right) if keep else None
        result = stores[self.result]
        before = result.get(key)
        if joined is None and before is None:
            # No row before and none now: nothing to delete. Kafka Streams forwards no
            # tombstone here either, so the result topic holds no deletes of absent keys.
            return
        result.put(key, joined)
        self.forward_change(key, joined, before, ts)
