"""Run this project's workers from Python: ``WorkerService().start()``."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from .conf import get_config
from .core import Service
from .store import DjangoTaskStore

__all__ = ["WorkerService"]


class WorkerService:
    """Consume the queue of every enabled worker and run its tasks.

    ``workers`` limits the service to the workers of those names;
    ``broker_url`` overrides the ``CARROT_BROKER_URL`` setting.
    ``start`` blocks until SIGTERM or SIGINT, or until ``stop`` is called
    from another thread.
    """

    def __init__(
        self, workers: Iterable[str] | None = None, *, broker_url: str | None = None
    ) -> None:
        config = get_config()
        if broker_url:
            config = dataclasses.replace(config, broker_url=broker_url)
        self.service = Service(
            DjangoTaskStore(), config, worker_names=list(workers) if workers else None
        )

    def start(self) -> None:
        """Run the workers until stopped."""
        self.service.start()

    @property
    def interrupted(self) -> bool:
        """Whether the service was stopped at once, leaving tasks unfinished."""
        return self.service.interrupted

    def stop(self, *, immediate: bool = False) -> None:
        """Stop from another thread; see `carrot.core.Service.stop`."""
        self.service.stop(immediate=immediate)
