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
    prefetch_multiplier: int = 4
    #: How often the service reads the workers' settings.
    refresh_seconds: float = 2.0
    #: AMQP heartbeat; the service's own thread answers it.
    heartbeat_seconds: int = 30
    #: Largest JSON of a task's args and kwargs.
    max_payload_bytes: int = 1_000_000
    #: Modules kallables may come from; ``None`` allows every module.
    allowed_modules: tuple[str, ...] | None = None
    #: A service silent this long is taken for dead, and the tasks it was
    #: running are run again.
    runner_timeout_seconds: float = 30.0
    #: A waiting row still unpublished this long after it was created is
    #: published by the service's outbox sweep.
    outbox_grace_seconds: float = 10.0
    #: A waiting row published this long ago is published again, in case
    #: the broker lost its message; ``None`` never publishes a row twice.
    republish_seconds: float | None = 3600.0
    #: How many times a task may be started; a task whose process dies more
    #: often is marked failed instead of being run again.
    max_attempts: int = 3
    #: How long a stopping service waits for running tasks before it stops
    #: at once; ``None`` waits for as long as they run.
    shutdown_grace_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.publish_timeout_seconds <= 0:
            raise ValueError("publish_timeout_seconds must be positive")
        if self.prefetch_multiplier < 1:
            raise ValueError("prefetch_multiplier must be at least 1")
        for name in ("refresh_seconds", "runner_timeout_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.runner_timeout_seconds < 3 * self.refresh_seconds:
            raise ValueError(
                "runner_timeout_seconds must be at least three times "
                "refresh_seconds, or live services are taken for dead"
            )
        if self.republish_seconds is not None and self.republish_seconds <= 0:
            raise ValueError("republish_seconds must be positive or None")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not _WORKER_NAME.match(self.queue_prefix):
            raise ValueError(f"queue_prefix {self.queue_prefix!r} is not a valid name")


def check_worker_name(name: str) -> None:
    """Raise `ValueError` unless ``name`` can name a queue."""
    if not _WORKER_NAME.match(name):
        raise ValueError(
            f"worker name {name!r} is not valid: use up to 100 letters, digits, "
            "'.', '_' or '-', starting with a letter or digit"
        )
