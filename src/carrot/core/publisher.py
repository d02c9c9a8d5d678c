"""Publish task messages on one connection, confirming them in bulk.

A `Publisher` belongs to one thread, which alone touches its connection.
On RabbitMQ its channel is in confirm mode: a batch of messages is sent
back to back and then the broker's confirmations are awaited together, so
a batch costs one round trip instead of one per message.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable
from typing import Any

from kombu.connection import Connection
from kombu.messaging import Producer

from .broker import Broker, speaks_amqp
from .errors import PublishError
from .message import TaskMessage

__all__ = ["Publisher"]

logger = logging.getLogger(__name__)


class Publisher:
    """A connection and a producer, owned by the thread that uses it."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._timeout = broker.config.publish_timeout_seconds
        self._connection = broker.connection()
        self._producer: Producer | None = None
        self._confirms: _Confirms | None = None
        self._declared: set[str] = set()

    def publish(self, messages: Iterable[tuple[TaskMessage, str]]) -> None:
        """Publish ``(message, worker name)`` pairs; return once confirmed.

        Each worker's queue is declared before its first message. A
        connection that fails is made again once: one left idle may have been
        closed by the broker for its missed heartbeats. Raises `PublishError`
        when the broker fails again or does not confirm within the publish
        timeout; a message sent twice is harmless.
        """
        batch = list(messages)
        for attempt in (1, 2):
            try:
                self._publish(batch)
                return
            except PublishError:
                self._reset()
                raise
            except Exception as exc:
                self._reset()
                if attempt == 2:
                    raise PublishError(
                        f"could not publish ({type(exc).__name__}: {exc}); the "
                        "tasks stay in the database and are published once the "
                        "broker answers"
                    ) from exc
                logger.info("publishing on a new connection after %r", exc)

    def close(self) -> None:
        """Release the connection."""
        self._reset()

    def _publish(self, messages: Iterable[tuple[TaskMessage, str]]) -> None:
        producer = self._ensure_producer()
        for message, worker_name in messages:
            self._declare(producer, worker_name)
            producer.publish(
                message.to_body(),
                exchange=producer.exchange,
                routing_key=worker_name,
                serializer="json",
                delivery_mode=2,
            )
            if self._confirms is not None:
                self._confirms.sent()
        if self._confirms is not None:
            self._confirms.wait(self._connection, self._timeout)

    def _ensure_producer(self) -> Producer:
        if self._producer is None:
            self._connection.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0, timeout=self._timeout
            )
            channel = self._connection.channel()
            if speaks_amqp(self._connection):
                self._confirms = _Confirms(channel)
            self._producer = Producer(channel, exchange=self._broker.exchange)
        return self._producer

    def _declare(self, producer: Producer, worker_name: str) -> None:
        if worker_name not in self._declared:
            self._broker.queue(worker_name)(producer.channel).declare()
            self._declared.add(worker_name)

    def _reset(self) -> None:
        self._producer = None
        self._confirms = None
        self._declared.clear()
        with contextlib.suppress(Exception):
            self._connection.collect()
        self._connection = self._broker.connection()


class _Confirms:
    """Tracks RabbitMQ's confirmations of the messages sent on a channel.

    A message is recorded as unconfirmed the moment it is sent: its
    confirmation may arrive during any later read on the connection, such
    as a queue declaration, not only while `wait` reads.
    """

    def __init__(self, channel: Any) -> None:
        channel.confirm_select()
        self._last_tag = 0
        self._unconfirmed: set[int] = set()
        self._nacked = 0
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)

    def sent(self) -> None:
        """Record one more message sent on the channel."""
        self._last_tag += 1
        self._unconfirmed.add(self._last_tag)

    def wait(self, connection: Connection, timeout_seconds: float) -> None:
        """Return once every message sent is confirmed; raise if refused."""
        deadline = time.monotonic() + timeout_seconds
        while self._unconfirmed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PublishError(
                    f"the broker left {len(self._unconfirmed)} message(s) "
                    f"unconfirmed for {timeout_seconds} s"
                )
            with contextlib.suppress(TimeoutError):
                connection.drain_events(timeout=remaining)

        if self._nacked:
            nacked, self._nacked = self._nacked, 0
            raise PublishError(f"the broker refused {nacked} message(s)")

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self._settle(delivery_tag, multiple)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._nacked += self._settle(delivery_tag, multiple)

    def _settle(self, delivery_tag: int, multiple: bool) -> int:
        if not multiple:
            settled = 1 if delivery_tag in self._unconfirmed else 0
            self._unconfirmed.discard(delivery_tag)
            return settled
        done = {tag for tag in self._unconfirmed if tag <= delivery_tag}
        self._unconfirmed -= done
        return len(done)
