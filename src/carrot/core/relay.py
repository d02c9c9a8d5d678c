"""Publish from a background thread, so creating a task never waits on it.

The task row is committed before its message is handed to the relay. If
the process dies before the relay publishes, the row stays unpublished and
a service's outbox sweep publishes it; nothing is lost by publishing late.

Once the broker confirms a batch, the relay records it as published, but
not at once: a service that keeps up claims the task within milliseconds,
and its claim records the publish itself. Marking a moment later skips the
rows already claimed, so a task costs one row write less, and the mark no
longer competes with the claim for the row.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from .broker import Broker
from .errors import PublishError
from .message import TaskMessage
from .publisher import Publisher

__all__ = ["Relay"]

logger = logging.getLogger(__name__)

#: Messages published and confirmed together.
_MAX_BATCH = 1000
#: How long confirmed tasks wait before they are marked published; far
#: below the outbox grace, so that a marked task is never published again.
_MARK_DELAY_SECONDS = 0.5
#: How long the relay stays idle before it calls ``on_idle``.
_IDLE_SECONDS = 5.0


class Relay:
    """A queue of ``(task id, worker name)`` pairs and the thread draining it.

    ``on_published`` is called in the relay's thread with ids the broker
    confirmed, shortly after; ``on_idle`` once nothing was put for a
    while. The thread starts on first use, and again in a forked child,
    which does not inherit it.
    """

    def __init__(
        self,
        broker: Broker,
        on_published: Callable[[list[str]], None],
        on_idle: Callable[[], None] = lambda: None,
    ) -> None:
        self._broker = broker
        self._on_published = on_published
        self._on_idle = on_idle
        # Guards every attribute below; the relay's thread waits on it.
        self._lock = threading.Condition()
        self._pid = 0
        self._queue: deque[tuple[str, str]] = deque()
        self._confirmed: list[str] = []
        self._confirmed_at = 0.0
        #: Pairs put and not yet marked or given up on.
        self._unfinished = 0
        self._flushing = 0
        self._thread: threading.Thread | None = None

    def put(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Publish ``pairs`` soon; returns at once."""
        with self._lock:
            self._ensure_thread()
            self._unfinished += len(pairs)
            self._queue.extend(pairs)
            self._lock.notify_all()

    def flush(self, timeout_seconds: float | None = None) -> bool:
        """Wait until every pair put so far is published or given up on.

        Confirmed tasks are marked at once rather than after the usual
        delay. Returns False if ``timeout_seconds`` passed first.
        """
        with self._lock:
            self._flushing += 1
            self._lock.notify_all()
            try:
                return self._lock.wait_for(
                    lambda: self._unfinished == 0, timeout_seconds
                )
            finally:
                self._flushing -= 1

    def close(self, timeout_seconds: float | None = None) -> None:
        """Publish and mark what is queued, then stop the thread."""
        with self._lock:
            thread = self._thread if self._pid == os.getpid() else None
            # Without a thread of its own, the old one ends once done.
            self._thread = None
            self._lock.notify_all()
        if thread is not None and thread.is_alive():
            thread.join(timeout_seconds)

    def _ensure_thread(self) -> None:
        # Called with the lock held.
        if self._pid != os.getpid():
            # A forked child has the parent's queue but not its thread.
            self._pid = os.getpid()
            self._queue.clear()
            self._confirmed = []
            self._unfinished = 0
            self._thread = None
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="carrot-relay", daemon=True
            )
            self._thread.start()
            atexit.register(self.flush, self._broker.config.publish_timeout_seconds)

    def _run(self) -> None:
        publisher = Publisher(self._broker)
        try:
            while (work := self._next_work()) is not None:
                batch, marks = work
                if batch:
                    self._publish(publisher, batch)
                if marks:
                    self._mark(marks)
        finally:
            publisher.close()
            self._on_idle()

    def _next_work(self) -> tuple[list[tuple[str, str]], list[str]] | None:
        """Wait for pairs to publish or marks that are due; None to stop."""
        idle_since: float | None = time.monotonic()
        with self._lock:
            while True:
                now = time.monotonic()
                batch = [
                    self._queue.popleft()
                    for _ in range(min(len(self._queue), _MAX_BATCH))
                ]
                stopping = self._thread is not threading.current_thread()
                marks = self._due_marks(now, stopping=stopping)
                if batch or marks:
                    return batch, marks
                if stopping:
                    return None

                if idle_since is not None and now - idle_since >= _IDLE_SECONDS:
                    self._lock.release()
                    try:
                        self._on_idle()
                    finally:
                        self._lock.acquire()
                    idle_since = None
                self._lock.wait(self._wait_seconds(now, idle_since))

    def _due_marks(self, now: float, *, stopping: bool) -> list[str]:
        # Called with the lock held. Someone waiting in `flush` or `close`
        # wants the marks now, once nothing is left to publish.
        due = now - self._confirmed_at >= _MARK_DELAY_SECONDS
        wanted = not self._queue and (self._flushing > 0 or stopping)
        if self._confirmed and (due or wanted or len(self._confirmed) >= _MAX_BATCH):
            marks, self._confirmed = self._confirmed, []
            return marks
        return []

    def _wait_seconds(self, now: float, idle_since: float | None) -> float | None:
        # Called with the lock held.
        if self._confirmed:
            return max(0.0, self._confirmed_at + _MARK_DELAY_SECONDS - now)
        if idle_since is not None:
            return max(0.0, idle_since + _IDLE_SECONDS - now)
        return None

    def _publish(self, publisher: Publisher, batch: list[tuple[str, str]]) -> None:
        try:
            publisher.publish(
                (TaskMessage(task_id), worker) for task_id, worker in batch
            )
        except PublishError as exc:
            logger.warning(
                "%d task(s) stored but not published (%s); a running service "
                "publishes them from the database",
                len(batch),
                exc,
                extra={"action": "publish_failed"},
            )
            self._finish(len(batch))
            return
        with self._lock:
            if not self._confirmed:
                self._confirmed_at = time.monotonic()
            self._confirmed.extend(task_id for task_id, _ in batch)

    def _mark(self, task_ids: list[str]) -> None:
        try:
            self._on_published(task_ids)
        except Exception:
            # The rows stay unpublished; the outbox sweep publishes them
            # again, and the copies are dropped as duplicates.
            logger.exception("could not record %d published task(s)", len(task_ids))
        finally:
            self._finish(len(task_ids))

    def _finish(self, count: int) -> None:
        with self._lock:
            self._unfinished -= count
            self._lock.notify_all()
