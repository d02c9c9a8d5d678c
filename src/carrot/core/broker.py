"""Where messages go: the exchange, the queues, the connections.

Every worker owns one durable queue, ``<prefix>.<worker name>``, bound to
the direct exchange ``<prefix>`` with the worker name as routing key.
"""

from __future__ import annotations

from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from kombu.utils.url import maybe_sanitize_url

from .config import Config

__all__ = ["Broker", "speaks_amqp"]

#: Transports that speak AMQP through py-amqp: they confirm what is
#: published and acknowledge every message up to a tag in one frame, which
#: kombu's virtual transports (Redis, memory) do not.
_AMQP_TRANSPORTS = frozenset({"amqp", "pyamqp", "amqps"})


def speaks_amqp(connection: Connection) -> bool:
    """Whether ``connection`` goes to an AMQP broker through py-amqp."""
    return connection.transport_cls in _AMQP_TRANSPORTS


class Broker:
    """The broker named by a `Config`: its exchange, queues and connections."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.exchange = Exchange(config.queue_prefix, type="direct", durable=True)

    def connection(self) -> Connection:
        """Return a new, not yet connected, kombu connection."""
        return Connection(
            self.config.broker_url,
            heartbeat=self.config.heartbeat_seconds,
            connect_timeout=self.config.publish_timeout_seconds,
            transport_options=dict(self.config.transport_options),
        )

    @property
    def safe_url(self) -> str:
        """The broker URL with its password masked, fit for logs."""
        return str(maybe_sanitize_url(self.config.broker_url))

    def queue(self, worker_name: str) -> Queue:
        """Return the durable queue of the worker ``worker_name``."""
        return Queue(
            f"{self.config.queue_prefix}.{worker_name}",
            exchange=self.exchange,
            routing_key=worker_name,
            durable=True,
        )
