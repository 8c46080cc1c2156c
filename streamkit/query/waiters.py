"""Requests waiting for a table entry to reach a state (the event-driven gateway variant).

A waiter is registered on the worker that owns the key and answered from committed
state: after each commit, the keys that changed are checked against their waiters. While
any request waits, the worker makes its state durable (changelog, outputs, RocksDB) after
every fetch it processes that holds records to send (what is awaited may follow from
them, on this worker or another) or an update that answers a waiter, not once a commit
interval, and at once when a waiter arrives while processed state is not durable yet, so
an answer follows the state within milliseconds of processing, and a state that was
answered is in the changelog: it survives a crash. (Input offsets are still committed at
the interval.)
"""
from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import StoreMigrated
from ..processing.assignor import TaskId


@dataclass
class _Waiter:
    predicate: Callable[[Any], bool]
    future: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Waiters:
    def __init__(self, decode_value: Callable[[str, bytes], Any], group_of: Callable[[str], int],
                 on_wait: Callable[[], None] = lambda: None):
        self._decode = decode_value
        self._group_of = group_of
        self._on_wait = on_wait  # a new waiter: the worker makes its processed state durable
        self._by_key: dict[tuple[str, int, bytes], list[_Waiter]] = defaultdict(list)

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_key.values())

    def pending(self) -> bool:
        """Whether any request waits."""
        return bool(self._by_key)

    async def wait(self, table: str, partition: int, key_bytes: bytes,
                   predicate: Callable[[Any], bool], timeout_s: float) -> Any:
        """The value once predicate(value) holds; TimeoutError, or StoreMigrated when the
        partition moves meanwhile."""
        waiter = _Waiter(predicate)
        slot = (table, partition, key_bytes)
        self._by_key[slot].append(waiter)
        self._on_wait()
        try:
            return await asyncio.wait_for(asyncio.shield(waiter.future), timeout_s)
        finally:
            waiters = self._by_key.get(slot)
            if waiters is not None:
                if waiter in waiters:
                    waiters.remove(waiter)
                if not waiters:
                    del self._by_key[slot]

    def met_uncommitted(self, uncommitted: Callable[[str, int, bytes], bytes | None]) -> bool:
        """Whether an update that is not durable yet would answer a waiter:
        uncommitted(table, partition, key bytes) is the encoded value the key awaits the
        next commit with (None when it awaits none, or its deletion, which answers
        nobody), judged decoded as on_commit will judge it."""
        for (table, partition, kb), waiters in self._by_key.items():
            vb = uncommitted(table, partition, kb)
            if vb is not None:
                value = self._decode(table, vb)
                if any(w.predicate(value) for w in waiters):
                    return True
        return False

    def on_commit(self, table: str, partition: int, items: list[tuple[bytes, bytes | None]]) -> None:
        if not self._by_key or not any(t == table for t, _, _ in self._by_key):
            return
        for kb, vb in items:
            waiters = self._by_key.get((table, partition, kb))
            if not waiters or vb is None:
                continue
            value = self._decode(table, vb)
            for w in waiters:
                if not w.future.done() and w.predicate(value):
                    w.future.set_result(value)

    def on_revoke(self, tasks: set[TaskId]) -> None:
        for (table, partition, _), waiters in list(self._by_key.items()):
            if (self._group_of(table), partition) in tasks:
                for w in waiters:
                    if not w.future.done():
                        w.future.set_exception(StoreMigrated(f"{table}[{partition}] moved to another worker"))
