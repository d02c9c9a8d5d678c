"""Publish task rows after the transaction that created them commits."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from .conf import get_broker
from .core import PublishError, TaskMessage

if TYPE_CHECKING:
    from .models import Task

__all__ = ["publish_on_commit"]

logger = logging.getLogger(__name__)

#: Rows marked published per UPDATE; keeps the statement under every
#: database's limit on parameters.
_MARK_BATCH = 1000


def publish_on_commit(tasks: Sequence[Task], using: str) -> None:
    """Publish ``tasks`` once the current transaction commits.

    In autocommit that is now. A rolled-back transaction publishes nothing.
    """
    if not tasks:
        return
    pending = [(str(task.pk), str(task.worker_id)) for task in tasks]
    transaction.on_commit(functools.partial(_publish, pending, using), using=using)


def _publish(pending: list[tuple[str, str]], using: str) -> None:
    from .models import Task

    try:
        get_broker().publish(
            (TaskMessage(task_id), worker) for task_id, worker in pending
        )
    except PublishError as exc:
        # The rows are the outbox: a running service publishes them later.
        logger.warning(
            "%d task(s) stored but not published (%s); the service "
            "publishes them once the broker answers",
            len(pending),
            exc,
            extra={"action": "publish_failed"},
        )
        return

    now = timezone.now()
    ids = [task_id for task_id, _ in pending]
    for start in range(0, len(ids), _MARK_BATCH):
        batch = ids[start : start + _MARK_BATCH]
        Task.objects.using(using).filter(pk__in=batch).update(published_at=now)
