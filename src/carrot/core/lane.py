"""A lane: one worker's queue, consumed on its own channel, run on a pool.

The service's thread receives messages and appends runs to the lane; the
pool's threads take runs one at a time and report each outcome back to the
service's thread, which alone touches the channel to acknowledge it. At
most ``concurrency`` pool threads take runs at once, so at most that many
of the worker's tasks run at once.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kombu.connection import Connection
from kombu.entity import Queue
from kombu.message import Message
from kombu.messaging import Consumer

from .acks import Acknowledgements
from .broker import speaks_amqp
from .message import CONTENT_TYPE
from .store import ClaimState

__all__ = ["Delivery", "Lane", "Run"]

logger = logging.getLogger(__name__)


@dataclass
class Delivery:
    """A message, and the connection generation whose channel it came on."""

    message: Message
    generation: int
    #: Those of the message's channel.
    acks: Acknowledgements


@dataclass
class Run:
    """One task in this process: waiting for a pool thread, or running."""

    task_id: str
    deliveries: list[Delivery]
    state: ClaimState | None = None
    #: Set when the outcome could not be stored; the message is requeued.
    error: bool = False


@dataclass
class Lane:
    """The consumer, the waiting runs and the pool of one worker.

    ``work`` runs in a pool thread for each run taken from the lane.
    """

    name: str
    queue: Queue
    work: Callable[[Run], None]
    concurrency: int = 0
    #: Messages the broker sends before any is acknowledged.
    prefetch: int = 0
    consumer: Consumer | None = None
    #: The messages of the current channel waiting for their outcome.
    acks: Acknowledgements = field(
        default_factory=lambda: Acknowledgements(multiple=False)
    )
    _pending: deque[Run] = field(default_factory=deque)
    #: Pool threads taking runs, and those of them running one; guarded by
    #: ``_lock``.
    _active: int = 0
    _busy: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _channel: Any = None
    _executor: ThreadPoolExecutor | None = None
    _threads: int = 0

    @property
    def consuming(self) -> bool:
        return self.consumer is not None

    @property
    def active(self) -> int:
        """How many pool threads are running this worker's tasks."""
        return self._active

    @property
    def idle(self) -> bool:
        return self._active == 0 and not self._pending

    def consume(
        self,
        connection: Connection,
        prefetch: int,
        on_message: Callable[[Lane, Message], None],
    ) -> None:
        """Start consuming on a new channel of ``connection``."""
        self._channel = connection.channel()
        self.acks = Acknowledgements(multiple=speaks_amqp(connection))
        self.consumer = Consumer(
            self._channel,
            queues=[self.queue],
            accept=[CONTENT_TYPE],
            on_message=lambda message: on_message(self, message),
            prefetch_count=prefetch,
        )
        self.consumer.consume()
        logger.info(
            "worker %s consuming %s with concurrency %d",
            self.name,
            self.queue.name,
            self.concurrency,
        )

    def resize(self, concurrency: int, prefetch: int) -> None:
        """Run at most ``concurrency`` tasks at once from now on."""
        if concurrency == self.concurrency:
            return
        if self.concurrency:
            logger.info(
                "worker %s resized from %d to %d",
                self.name,
                self.concurrency,
                concurrency,
            )

        with self._lock:
            if concurrency > self._threads:
                # A pool cannot grow; the old one finishes its runs and ends.
                if self._executor is not None:
                    self._executor.shutdown(wait=False)
                self._executor = ThreadPoolExecutor(
                    concurrency, thread_name_prefix=f"carrot-{self.name}"
                )
                self._threads = concurrency
            self.concurrency = concurrency
            self._start_threads()

        self.prefetch = prefetch
        if self.consumer is not None:
            self.consumer.qos(prefetch_count=prefetch)

    def hold(self, message: Message, generation: int) -> Delivery:
        """Keep ``message`` unacknowledged until its run ends."""
        self.acks.hold(message)
        return Delivery(message, generation, self.acks)

    def add(self, run: Run) -> None:
        """Queue ``run`` for the next free pool thread."""
        with self._lock:
            self._pending.append(run)
            self._start_threads()

    def stop_consuming(self) -> list[Run]:
        """Cancel the consumer and return the runs that never started.

        Their messages go back to the queue unrun. The channel stays open
        until the running tasks are acknowledged on it.
        """
        if self.consumer is not None:
            self.consumer.cancel()
            self.consumer = None
        returned = self._take_pending()
        for run in returned:
            for delivery in run.deliveries:
                delivery.acks.requeue(delivery.message)
        return returned

    def drop_channel(self) -> list[Run]:
        """Forget the channel after the connection is lost.

        Unacknowledged messages are redelivered by the broker, so the
        waiting runs are dropped without touching the dead channel.
        """
        self.consumer = None
        self._channel = None
        return self._take_pending()

    def release_channel(self) -> None:
        """Close the channel of a lane that stopped consuming and is idle."""
        if self._channel is not None and not self.consuming and self.idle:
            self._channel.close()
            self._channel = None

    def close(self) -> None:
        """Release the pool once nothing runs."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
            self._threads = 0

    def _take_pending(self) -> list[Run]:
        with self._lock:
            taken = list(self._pending)
            self._pending.clear()
        return taken

    def _start_threads(self) -> None:
        # Called with the lock held. A busy thread takes no run until its
        # own ends, so only the threads not busy count as free.
        while self._active < self.concurrency and (
            self._active - self._busy < len(self._pending)
        ):
            assert self._executor is not None
            self._active += 1
            self._executor.submit(self._take_runs)

    def _take_runs(self) -> None:
        """Pool thread: run waiting runs until there are none left."""
        while True:
            with self._lock:
                if not self._pending or self._active > self.concurrency:
                    self._active -= 1
                    return
                run = self._pending.popleft()
                self._busy += 1
            try:
                self.work(run)
            finally:
                with self._lock:
                    self._busy -= 1
