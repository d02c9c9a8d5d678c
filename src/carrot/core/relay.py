"""Publish from a background thread, so creating a task never waits on it.

The task row is committed before its message is handed to the relay. If
the process dies before the relay publishes, the row stays unpublished and
a service's outbox sweep publishes it; nothing is lost by publishing late.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
from collections.abc import Callable, Sequence

from .batching import next_batch
from .broker import Broker
from .errors import PublishError
from .message import TaskMessage
from .publisher import Publisher

__all__ = ["Relay"]

logger = logging.getLogger(__name__)

#: Messages published and confirmed together.
_MAX_BATCH = 1000


class Relay:
    """A queue of ``(task id, worker name)`` pairs and the thread draining it.

    ``on_published`` is called in the relay's thread with the ids the broker
    confirmed; ``on_idle`` when the queue is empty again. The thread starts
    on first use, and again in a forked child, which does not inherit it.
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
        self._lock = threading.Condition()
        self._pid = 0
        self._queue: queue.SimpleQueue[tuple[str, str] | None] = queue.SimpleQueue()
        self._unfinished = 0
        self._thread: threading.Thread | None = None

    def put(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Publish ``pairs`` soon; returns at once."""
        with self._lock:
            self._ensure_thread()
            self._unfinished += len(pairs)
        for pair in pairs:
            self._queue.put(pair)

    def flush(self, timeout_seconds: float | None = None) -> bool:
        """Wait until every pair put so far is published or given up on.

        Returns False if ``timeout_seconds`` passed first.
        """
        with self._lock:
            return self._lock.wait_for(lambda: self._unfinished == 0, timeout_seconds)

    def close(self, timeout_seconds: float | None = None) -> None:
        """Publish what is queued, then stop the thread."""
        with self._lock:
            thread = self._thread if self._pid == os.getpid() else None
            self._thread = None
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout_seconds)

    def _ensure_thread(self) -> None:
        if self._pid != os.getpid():
            # A forked child has the parent's queue but not its thread.
            self._pid = os.getpid()
            self._queue = queue.SimpleQueue()
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
            while batch := next_batch(self._queue, _MAX_BATCH):
                self._publish(publisher, batch)
        finally:
            publisher.close()
            self._on_idle()

    def _publish(self, publisher: Publisher, batch: list[tuple[str, str]]) -> None:
        try:
            publisher.publish(
                (TaskMessage(task_id), worker) for task_id, worker in batch
            )
            self._on_published([task_id for task_id, _ in batch])
        except PublishError as exc:
            logger.warning(
                "%d task(s) stored but not published (%s); a running service "
                "publishes them from the database",
                len(batch),
                exc,
                extra={"action": "publish_failed"},
            )
        except Exception:
            logger.exception("could not record %d published task(s)", len(batch))
        finally:
            with self._lock:
                self._unfinished -= len(batch)
                self._lock.notify_all()
            if self._queue.empty():
                self._on_idle()
