"""The service's housekeeping between messages.

Every refresh the service proves it is alive, hands back the tasks of
services that died, and publishes rows that never reached the broker.
This is what makes the task row the outbox: a message lost before it was
published, or with a process that died running it, is published again
from the row.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from .broker import Broker
from .config import Config
from .errors import CarrotError
from .message import TaskMessage
from .publisher import Publisher
from .store import Runner, TaskStore

__all__ = ["Maintenance"]

logger = logging.getLogger(__name__)

#: Rows published per batch by the outbox sweep.
_PUBLISH_BATCH = 500
#: Batches per sweep, so one sweep never keeps the service from its queues
#: for long; the next sweep goes on where this one stopped.
_MAX_BATCHES = 20


class Maintenance:
    """Recovery and outbox sweep of one service process."""

    def __init__(self, store: TaskStore, broker: Broker, runner: Runner) -> None:
        self._store = store
        self._broker = broker
        self._runner = runner
        self._config: Config = broker.config
        self._publisher: Publisher | None = None

    def run(self) -> None:
        """Do every step; a step that fails is logged and tried next time."""
        for step in (self._recover, self._publish_due):
            try:
                step()
            except CarrotError as exc:
                logger.warning(
                    "housekeeping step %s failed (%s); trying again "
                    "at the next refresh",
                    step.__name__,
                    exc,
                )
            except Exception:
                logger.exception(
                    "housekeeping step %s failed; trying again at the next refresh",
                    step.__name__,
                )

    def _recover(self) -> None:
        count = self._store.recover(
            self._config.runner_timeout_seconds, self._config.max_attempts
        )
        if count:
            logger.warning(
                "%d task(s) of stopped services handed back to run again or failed",
                count,
                extra={"action": "recover"},
            )

    def _publish_due(self) -> None:
        for _ in range(_MAX_BATCHES):
            count = self._store.publish_due(
                self._config.outbox_grace_seconds,
                self._config.republish_seconds,
                _PUBLISH_BATCH,
                self._publish,
            )
            if count:
                logger.info(
                    "published %d task(s) from the outbox",
                    count,
                    extra={"action": "outbox"},
                )
            if count < _PUBLISH_BATCH:
                return

    def close(self) -> None:
        """Release the outbox sweep's broker connection."""
        if self._publisher is not None:
            self._publisher.close()
            self._publisher = None

    def _publish(self, pairs: Sequence[tuple[str, str]]) -> None:
        if self._publisher is None:
            self._publisher = Publisher(self._broker)
        self._publisher.publish(
            (TaskMessage(task_id), worker) for task_id, worker in pairs
        )
