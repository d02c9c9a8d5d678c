"""Publish task rows after the transaction that created them commits.

Publishing happens on the process's relay thread, so ``create()`` never
waits on the broker; `flush` waits for it where that matters, such as at
the end of a script.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.db import connections, router, transaction
from django.utils import timezone

from .conf import get_broker
from .core.relay import Relay

if TYPE_CHECKING:
    from .models import Task

__all__ = ["flush", "publish_on_commit"]

#: Rows marked published per UPDATE; keeps the statement under every
#: database's limit on parameters.
_MARK_BATCH = 1000


def publish_on_commit(tasks: Sequence[Task], using: str) -> None:
    """Publish ``tasks`` once the current transaction commits.

    In autocommit that is now. A rolled-back transaction publishes nothing.
    """
    if not tasks:
        return
    pairs = [(str(task.pk), str(task.worker_id)) for task in tasks]
    transaction.on_commit(lambda: get_relay().put(pairs), using=using)


def flush(timeout_seconds: float | None = None) -> bool:
    """Wait until every task created so far in this process is published.

    A task whose publish failed counts as done: its row stays unpublished
    and a running service publishes it. Returns False on timeout.
    """
    return get_relay().flush(timeout_seconds)


@functools.cache
def get_relay() -> Relay:
    """Return this process's relay for the configured broker."""
    return Relay(get_broker(), on_published=_mark_published, on_idle=_close_connections)


def _mark_published(task_ids: list[str]) -> None:
    from . import sql
    from .models import Task

    now = timezone.now()
    alias = router.db_for_write(Task)
    for start in range(0, len(task_ids), _MARK_BATCH):
        batch = task_ids[start : start + _MARK_BATCH]
        if connections[alias].vendor == "postgresql":
            sql.mark_published(alias, batch, now)
        else:
            Task.objects.filter(pk__in=batch, published_at__isnull=True).update(
                published_at=now
            )


def _close_connections() -> None:
    # The relay's thread lives as long as the process; it holds no database
    # connection once it has had nothing to publish for a while.
    connections.close_all()
