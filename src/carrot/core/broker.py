"""Where messages go: the exchange, the queues and publishing.

Every worker owns one durable queue, ``<prefix>.<worker name>``, bound to
the direct exchange ``<prefix>`` with the worker name as routing key.
Messages are JSON and persistent; on RabbitMQ they are published with
publisher confirms, so a publish returns only once the broker has the
message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from kombu.pools import producers

from .config import Config
from .errors import PublishError
from .message import TaskMessage

__all__ = ["Broker"]

logger = logging.getLogger(__name__)

#: Transports that speak AMQP through py-amqp and support confirms.
_AMQP_TRANSPORTS = {"amqp", "pyamqp", "amqps"}


class Broker:
    """The broker named by a `Config`, and publishing to it.

    Publishing is safe from any thread: each publish takes a producer,
    with its own connection, from kombu's pool for as long as it runs.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.exchange = Exchange(config.queue_prefix, type="direct", durable=True)
        self._connection = self.connection()

    def connection(self) -> Connection:
        """Return a new, not yet connected, kombu connection."""
        options = dict(self.config.transport_options)
        connection = Connection(
            self.config.broker_url,
            heartbeat=self.config.heartbeat_seconds,
            connect_timeout=self.config.publish_timeout_seconds,
            transport_options=options,
        )
        if connection.transport_cls in _AMQP_TRANSPORTS:
            # kombu keeps this very dict and reads it when it connects.
            options.setdefault("confirm_publish", True)
        return connection

    @property
    def safe_url(self) -> str:
        """The broker URL with its password masked, fit for logs."""
        return str(self._connection.as_uri(include_password=False))

    def queue(self, worker_name: str) -> Queue:
        """Return the durable queue of the worker ``worker_name``."""
        return Queue(
            f"{self.config.queue_prefix}.{worker_name}",
            exchange=self.exchange,
            routing_key=worker_name,
            durable=True,
        )

    def publish(self, messages: Iterable[tuple[TaskMessage, str]]) -> None:
        """Publish each ``(message, worker name)`` pair.

        Returns once the broker has confirmed every message. Raises
        `PublishError` when it has not within the publish timeout.
        """
        timeout = self.config.publish_timeout_seconds
        try:
            with producers[self._connection].acquire(
                block=True, timeout=timeout
            ) as producer:
                for message, worker_name in messages:
                    self._publish_one(producer, message, worker_name)
        except PublishError:
            raise
        except Exception as exc:
            raise PublishError(
                f"could not publish to {self.safe_url}: {exc.__class__.__name__}"
            ) from exc

    def _publish_one(
        self, producer: object, message: TaskMessage, worker_name: str
    ) -> None:
        queue = self.queue(worker_name)
        producer.publish(  # type: ignore[attr-defined]
            message.to_body(),
            exchange=self.exchange,
            routing_key=worker_name,
            declare=[queue],
            serializer="json",
            delivery_mode=2,
            retry=True,
            retry_policy=self._retry_policy(),
        )
        logger.debug(
            "published task %s to %s",
            message.task_id,
            queue.name,
            extra={"action": "publish", "task_id": message.task_id},
        )

    def _retry_policy(self) -> dict[str, float]:
        # Three tries spread over about half the timeout; connect_timeout
        # bounds each try, so a caller waits about the publish timeout.
        step = self.config.publish_timeout_seconds / 6
        return {
            "max_retries": 2,
            "interval_start": step,
            "interval_step": step,
            "interval_max": 2 * step,
        }
