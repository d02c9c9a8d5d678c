"""The settings the core needs, independent of where they come from."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_BROKER_URL", "Config", "check_worker_name"]

#: The broker used when nothing else is configured: RabbitMQ on localhost.
DEFAULT_BROKER_URL = "amqp://guest:guest@localhost:5672//"

#: A worker name is part of a queue name and a routing key.
_WORKER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True)
class Config:
    """How carrot reaches its broker and paces its work."""

    broker_url: str = DEFAULT_BROKER_URL
    #: Passed to kombu's ``Connection`` as they are.
    transport_options: Mapping[str, Any] = field(default_factory=dict)
    #: Names the exchange and prefixes every queue, so that several projects
    #: can share one broker.
    queue_prefix: str = "carrot"
    #: How long publishing may block a caller before the task is left for
    #: the service's outbox sweep.
    publish_timeout_seconds: float = 2.0
    #: Messages a worker holds per unit of concurrency; more hides the
    #: acknowledgement round trip, fewer leaves more for other hosts.
    prefetch_multiplier: int = 2
    #: How often the service reads the workers' settings.
    refresh_seconds: float = 2.0
    #: AMQP heartbeat; the service's own thread answers it.
    heartbeat_seconds: int = 30
    #: Largest JSON of a task's args and kwargs.
    max_payload_bytes: int = 1_000_000
    #: Modules kallables may come from; ``None`` allows every module.
    allowed_modules: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.publish_timeout_seconds <= 0:
            raise ValueError("publish_timeout_seconds must be positive")
        if self.prefetch_multiplier < 1:
            raise ValueError("prefetch_multiplier must be at least 1")
        if self.refresh_seconds <= 0:
            raise ValueError("refresh_seconds must be positive")
        if not _WORKER_NAME.match(self.queue_prefix):
            raise ValueError(f"queue_prefix {self.queue_prefix!r} is not a valid name")


def check_worker_name(name: str) -> None:
    """Raise `ValueError` unless ``name`` can name a queue."""
    if not _WORKER_NAME.match(name):
        raise ValueError(
            f"worker name {name!r} is not valid: use up to 100 letters, digits, "
            "'.', '_' or '-', starting with a letter or digit"
        )
