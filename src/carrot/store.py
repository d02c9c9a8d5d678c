"""The core's `TaskStore`, kept in the ``Task`` and ``Worker`` tables."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from django.db import connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from . import sql
from .core import Claim, ClaimState, Runner, TaskCall
from .core.store import Outcome, Publish
from .models import Runner as RunnerRow
from .models import Task, Worker

__all__ = ["DjangoTaskStore"]

_FINISHED = {Task.Status.SUCCEEDED, Task.Status.FAILED}


class DjangoTaskStore:
    """Claims and settles task rows in the database.

    It uses the ORM, and on PostgreSQL and SQLite the hand-written
    statements of `carrot.sql` for the writes made once per task.

    Each call first makes the calling thread's database connections fit
    for use: a broken one, or one left outside autocommit, is closed and
    made again. A healthy one is kept whatever ``CONN_MAX_AGE`` says: the
    service's threads live long and run many tasks, and a new connection
    per task would cost more than most tasks. Each thread holds at most one
    connection per database, so none leak.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._used: set[BaseDatabaseWrapper] = set()

    def enabled_workers(self) -> Mapping[str, int]:
        self._ready_connections()
        workers = Worker.objects.filter(enabled=True).values_list("name", "concurrency")
        return dict(workers)

    def record(
        self, outcomes: Sequence[Outcome], claims: Sequence[str], runner: Runner
    ) -> Mapping[str, Claim]:
        self._ready_connections()
        alias = router.db_for_write(Task)
        fast = sql.supports_returning(connections[alias])
        ids = {
            task_id: str(uuid.UUID(task_id)) for task_id in claims if _is_uuid(task_id)
        }
        now = timezone.now()

        if connections[alias].vendor == "postgresql" and fast:
            calls = sql.record_in_one_statement(
                alias, outcomes, sorted(set(ids.values())), runner, now
            )
        else:
            with transaction.atomic(using=alias):
                if outcomes:
                    (sql.finish_many if fast else _finish_many)(alias, outcomes, now)
                claim_many = sql.claim_many if fast else _claim_many
                calls = claim_many(alias, sorted(set(ids.values())), runner, now)

        return {
            task_id: Claim(ClaimState.CLAIMED, calls[ids[task_id]])
            if ids.get(task_id) in calls
            else Claim(self._unclaimable(task_id))
            for task_id in claims
        }

    def register(self, runner: Runner) -> None:
        self._ready_connections()
        RunnerRow.objects.update_or_create(
            id=runner.id,
            defaults={
                "host": runner.host,
                "pid": runner.pid,
                "seen_at": timezone.now(),
            },
        )

    def unregister(self, runner: Runner) -> None:
        RunnerRow.objects.filter(id=runner.id).delete()

    def recover(self, timeout_seconds: float, max_attempts: int) -> int:
        now = timezone.now()
        cutoff = now - timedelta(seconds=timeout_seconds)
        live = RunnerRow.objects.filter(seen_at__gte=cutoff).values("id")
        orphans = Task.objects.filter(
            status=Task.Status.RUNNING, finished_at__isnull=True
        ).exclude(runner__in=live)

        failed: int = orphans.filter(attempts__gte=max_attempts).update(
            status=Task.Status.FAILED,
            finished_at=now,
            error=(
                f"WorkerLost: the service running this task stopped during "
                f"each of its {max_attempts} attempts; it is not run again"
            ),
        )
        handed_back: int = orphans.update(status=Task.Status.WAITING, published_at=None)

        RunnerRow.objects.filter(seen_at__lt=cutoff).delete()
        return failed + handed_back

    def publish_due(
        self,
        grace_seconds: float,
        republish_seconds: float | None,
        limit: int,
        publish: Publish,
    ) -> int:
        now = timezone.now()
        missing = Q(
            published_at__isnull=True,
            created_at__lt=now - timedelta(seconds=grace_seconds),
        )
        if republish_seconds is not None:
            missing |= Q(published_at__lt=now - timedelta(seconds=republish_seconds))
        due = Task.objects.filter(
            missing, status=Task.Status.WAITING, finished_at__isnull=True
        )
        with transaction.atomic():
            # Locked rows are being published by another service right now.
            rows = list(
                due.select_for_update(skip_locked=True)
                .order_by("created_at")
                .values_list("id", "worker_id")[:limit]
            )
            if rows:
                publish([(str(task_id), worker) for task_id, worker in rows])
                ids = [task_id for task_id, _ in rows]
                Task.objects.filter(pk__in=ids).update(published_at=now)
        return len(rows)

    def close(self) -> None:
        """Close the connections of every thread that used this store.

        Called once the service has stopped and its pool threads are idle.
        """
        with self._lock:
            used, self._used = self._used, set()
        for connection in used:
            connection.inc_thread_sharing()
            try:
                connection.close()
            finally:
                connection.dec_thread_sharing()

    def _ready_connections(self) -> None:
        # Every alias, not only those connected yet: a thread's first call
        # connects after this runs, and its connection must be known to
        # `close` even if the thread never calls again.
        for connection in connections.all():
            if connection not in self._used:
                with self._lock:
                    self._used.add(connection)
            if connection.connection is None:
                continue
            # Forget the age limit, then let Django close what is unusable.
            connection.close_at = None
            connection.close_if_unusable_or_obsolete()

    def _unclaimable(self, task_id: str) -> ClaimState:
        if not _is_uuid(task_id):
            return ClaimState.MISSING
        status = (
            Task.objects.filter(pk=task_id).values_list("status", flat=True).first()
        )
        if status is None:
            return ClaimState.MISSING
        if status in _FINISHED:
            return ClaimState.FINISHED
        return ClaimState.BUSY


def _claim_many(
    alias: str, ids: Sequence[str], runner: Runner, now: datetime
) -> dict[str, TaskCall]:
    """Claim rows with the ORM, for databases without UPDATE ... RETURNING."""
    calls = {}
    claimable = Q(status=Task.Status.WAITING) | Q(
        status=Task.Status.RUNNING, runner=runner.id
    )
    for task_id in ids:
        claimed = (
            Task.objects.using(alias)
            .filter(claimable, pk=task_id)
            .update(
                status=Task.Status.RUNNING,
                attempts=F("attempts") + 1,
                host=runner.host,
                pid=runner.pid,
                runner=runner.id,
                started_at=now,
                published_at=Coalesce("published_at", Value(now)),
            )
        )
        if claimed:
            row = Task.objects.using(alias).values_list(
                "kallable", "args", "kwargs", "attempts"
            )
            calls[task_id] = TaskCall(task_id, *row.get(pk=task_id))
    return calls


def _finish_many(alias: str, outcomes: Sequence[Outcome], now: datetime) -> None:
    """Store outcomes with the ORM, for databases without the fast path."""
    for outcome in outcomes:
        started = {"started_at": outcome.started_at} if outcome.started_at else {}
        Task.objects.using(alias).filter(pk=outcome.task_id).update(
            finished_at=outcome.finished_at or now,
            **started,
            **sql.outcome_fields(outcome),
        )


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
