"""What a worker does with an error that escapes the processing of records (a commit,
a store, an assignment, or a record under on_error="stop"): Kafka Streams' uncaught
exception handler, chosen by STREAMKIT_ON_UNCAUGHT_ERROR.

- `shutdown_worker` (the default, Kafka Streams' SHUTDOWN_CLIENT when no handler is set):
  this worker stops (a non-zero exit status); nothing after the last commit is committed.
- `replace` (REPLACE_THREAD): the worker keeps running; its tasks are given up with what
  they did since their last commit (state, outputs), then opened again, restored from
  RocksDB and their changelogs, and their inputs rewound to the committed offsets.
- `shutdown_app` (SHUTDOWN_APPLICATION): every worker of the app stops. The request goes
  through the processors' consumer group, as Kafka Streams' does: the failing worker joins
  the group again with the request in its member metadata, and the leader's TaskAssignor
  answers every member with it instead of tasks (assignor.py). Each worker commits what
  it processed (as at any rebalance) and stops (a non-zero exit status), with a log line
  naming the failing worker and its error; the failing worker commits nothing.

The policy applies on one worker; give every worker of an app the same.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable

from ..clients import MIN_REBALANCE_TIMEOUT_MS
from ..config import Settings
from ..errors import ApplicationShutdown
from .assignor import TaskAssignor, TaskId
from .deadletters import ERROR_BYTES
from .outbox import Outbox
from .production import describe
from .task import Task

log = logging.getLogger(__name__)


class UncaughtErrors:
    """The runner's reactions to an error that escapes processing (a mixin of Runner,
    which has the attributes declared here)."""

    settings: Settings
    app_id: str
    tasks: dict[TaskId, Task]
    counters: dict[str, int]
    outbox: Outbox
    txn: Any
    standbys: Any
    consumer: Any
    topology: Any
    assignor: TaskAssignor
    failed: BaseException | None
    ready: bool
    _lock: asyncio.Lock
    _listener: Any
    _task_of_tp: dict
    _uncommitted: int
    _unflushed: int
    _shutdown_deadline: float | None
    _reassign: Callable[..., Awaitable[None]]
    _pending: tuple[set[TaskId], set[TaskId]]
    _notify_revoked: Callable[[set[TaskId]], None]
    _forget_positions: Callable[[set[TaskId]], None]
    crash: Any  # mode.Service.crash

    async def _uncaught(self, exc: Exception, reopen: set[TaskId] | None,
                        replaceable: bool = True) -> bool:
        """An error escaped the processing of records (or a commit, or an assignment):
        act as the policy says, with the lock held. Returns whether the loop goes on.

        replace: the tasks are given up (their uncommitted state and outputs dropped) and
        those in `reopen` opened again, restored and rewound to their committed offsets;
        shutdown_app: every worker of the app is asked to stop, through the group;
        shutdown_worker: this worker stops."""
        policy = self.settings.on_uncaught_error
        if policy == "replace" and replaceable:
            log.error("processing failed; its tasks start again from their last commit "
                      "(STREAMKIT_ON_UNCAUGHT_ERROR=replace)", exc_info=exc)
            try:
                await self._replace(reopen)
                return True
            except Exception as again:
                log.error("the tasks could not start again", exc_info=again)
                policy, exc = "shutdown_worker", again
        self.failed, self.ready = exc, False
        if policy == "shutdown_app":
            log.error("processing failed; every worker of %s is asked to stop "
                      "(STREAMKIT_ON_UNCAUGHT_ERROR=shutdown_app)", self.app_id, exc_info=exc)
            self._request_app_shutdown(exc)
            return True
        log.error("processing stopped (STREAMKIT_ON_UNCAUGHT_ERROR=%s): this worker stops",
                  policy, exc_info=exc)
        await self.crash(exc)
        return False

    async def _replace(self, reopen: set[TaskId] | None) -> None:
        """Give up every task, dropping what it did since its last commit, and open those
        in reopen again from their changelog, their inputs at their committed offsets,
        with the standbys of the last assignment."""
        self.ready = False
        self.counters["replacements"] += 1
        if reopen is None:
            await self._drop_tasks()
        else:
            await self._reopen(reopen)
            self.ready = True

    async def _reopen(self, tasks: set[TaskId]) -> None:
        """Give up every task, dropping what it did since its last commit, and open `tasks`
        again from their changelogs, their inputs at their committed offsets, with the
        standbys of the last assignment."""
        await self._drop_tasks()
        await self._reassign(tasks, self._pending[1] - tasks, rewind=True)

    async def _drop_tasks(self) -> None:
        """Close every task, dropping what it did since its last commit (state, outputs,
        where its inputs stood)."""
        held = set(self.tasks)
        for task in self.tasks.values():
            self.counters["late_records_retired"] += task.late_records
            task.close()  # drops the updates not yet committed
        self.tasks.clear()
        self._task_of_tp = {}
        # Where their inputs stood belongs to the state just dropped.
        self._forget_positions(held)
        self._notify_revoked(held)
        self.outbox.discard()
        if self.txn is not None:
            await self.txn.close(held)
        self._uncommitted = self._unflushed = 0

    def _request_app_shutdown(self, exc: Exception) -> None:
        """Ask every worker of the app to stop, as Kafka Streams' SHUTDOWN_APPLICATION
        does: this member joins the group again with the request in its metadata, and the
        leader answers every member with it (TaskAssignor). The fetch loop keeps polling
        meanwhile (a member that stops polling is dropped from the group); if no answer
        comes within the rebalance timeout, this worker stops alone."""
        self.assignor.shutdown = {"by": self.settings.web_url,
                                  "error": describe(exc)[:ERROR_BYTES]}
        # A new subscription (to the same topics) makes the member join again.
        self.consumer.subscribe(sorted(self.topology.sources), listener=self._listener)
        timeout_ms = max(self.settings.session_timeout_ms, MIN_REBALANCE_TIMEOUT_MS)
        self._shutdown_deadline = time.monotonic() + 2 * timeout_ms / 1000

    async def _await_shutdown(self) -> bool:
        """While the group passes this worker's shutdown request on: poll (nothing is
        processed or committed), until the answer or the deadline."""
        await self.consumer.getmany(timeout_ms=100)
        if self._shutdown_deadline is not None and time.monotonic() > self._shutdown_deadline:
            log.error("the group did not pass the shutdown request on: this worker stops alone")
            assert self.failed is not None
            await self.crash(self.failed)
            return False
        return True

    async def _shut_down_app(self, request: dict) -> None:
        """The group says a worker asked every worker of the app to stop."""
        exc = ApplicationShutdown(f"worker {request.get('by')} met an error it could not "
                                  f"handle and asked every worker of {self.app_id} to stop: "
                                  f"{request.get('error')}")
        log.error("%s", exc)
        self.failed, self.ready = self.failed or exc, False
        await self.crash(exc)

    async def _guard(self, loop: Callable[[], Awaitable[None]]) -> None:
        """Run a loop beside processing (standbys, global tables); an error there is
        uncaught too, but replacing tasks would not mend it (as Kafka Streams' global
        thread, which cannot be replaced): the worker stops, or the app does."""
        try:
            await loop()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            async with self._lock:
                await self._uncaught(exc, reopen=None, replaceable=False)
