"""A lane: one worker's queue, consumed on its own channel, run on a pool.

Only the service's thread touches a lane; the pool's threads only run
tasks and hand the result back through the service's completion queue.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kombu.connection import Connection
from kombu.entity import Queue
from kombu.message import Message
from kombu.messaging import Consumer

from .message import CONTENT_TYPE
from .store import ClaimState

__all__ = ["Delivery", "Lane", "Run"]

logger = logging.getLogger(__name__)


@dataclass
class Delivery:
    """A message, and the connection generation whose channel it came on."""

    message: Message
    generation: int


@dataclass
class Run:
    """One task in this process: waiting for a slot, or running."""

    task_id: str
    deliveries: list[Delivery]
    state: ClaimState | None = None
    #: Set when the outcome could not be stored; the message is requeued.
    error: bool = False


@dataclass
class Lane:
    """The consumer, the waiting runs and the pool of one worker."""

    name: str
    queue: Queue
    concurrency: int = 0
    running: int = 0
    pending: deque[Run] = field(default_factory=deque)
    consumer: Consumer | None = None
    _channel: Any = None
    _executor: ThreadPoolExecutor | None = None
    _threads: int = 0

    @property
    def consuming(self) -> bool:
        return self.consumer is not None

    @property
    def idle(self) -> bool:
        return self.running == 0 and not self.pending

    def consume(
        self,
        connection: Connection,
        prefetch: int,
        on_message: Callable[[Lane, Message], None],
    ) -> None:
        """Start consuming on a new channel of ``connection``."""
        self._channel = connection.channel()
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

        if concurrency > self._threads:
            # A pool cannot grow; the old one finishes its tasks and exits.
            if self._executor is not None:
                self._executor.shutdown(wait=False)
            self._executor = ThreadPoolExecutor(
                concurrency, thread_name_prefix=f"carrot-{self.name}"
            )
            self._threads = concurrency

        if self.concurrency:
            logger.info(
                "worker %s resized from %d to %d",
                self.name,
                self.concurrency,
                concurrency,
            )
        self.concurrency = concurrency
        if self.consumer is not None:
            self.consumer.qos(prefetch_count=prefetch)

    def submit(self, function: Callable[..., Any], *args: Any) -> None:
        assert self._executor is not None
        self.running += 1
        self._executor.submit(function, *args)

    def stop_consuming(self) -> list[Run]:
        """Cancel the consumer and return the runs that never started.

        Their messages go back to the queue unrun. The channel stays open
        until the running tasks are acknowledged on it.
        """
        if self.consumer is not None:
            self.consumer.cancel()
            self.consumer = None
        returned = list(self.pending)
        self.pending.clear()
        for run in returned:
            for delivery in run.deliveries:
                delivery.message.requeue()
        return returned

    def drop_channel(self) -> list[Run]:
        """Forget the channel after the connection is lost.

        Unacknowledged messages are redelivered by the broker, so the
        waiting runs are dropped without touching the dead channel.
        """
        self.consumer = None
        self._channel = None
        dropped = list(self.pending)
        self.pending.clear()
        return dropped

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
