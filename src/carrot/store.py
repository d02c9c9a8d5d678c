"""The core's `TaskStore`, kept in the ``Task`` and ``Worker`` tables."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.db import close_old_connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from .core import Claim, ClaimState, Runner, TaskCall
from .core.store import Publish
from .models import Runner as RunnerRow
from .models import Task, Worker

__all__ = ["DjangoTaskStore"]

_FINISHED = {Task.Status.SUCCEEDED, Task.Status.FAILED}


class DjangoTaskStore:
    """Claims and settles task rows through the Django ORM.

    Each call starts and ends by closing the calling thread's database
    connection when Django would close it at the end of a request, so a
    task always runs with a usable connection and none are leaked.
    """

    def enabled_workers(self) -> Mapping[str, int]:
        close_old_connections()
        workers = Worker.objects.filter(enabled=True).values_list("name", "concurrency")
        return dict(workers)

    def claim(self, task_id: str, runner: Runner) -> Claim:
        close_old_connections()
        if not _is_uuid(task_id):
            return Claim(ClaimState.MISSING)

        claimable = Q(status=Task.Status.WAITING) | Q(
            status=Task.Status.RUNNING, runner=runner.id
        )
        claimed = Task.objects.filter(claimable, pk=task_id).update(
            status=Task.Status.RUNNING,
            attempts=F("attempts") + 1,
            host=runner.host,
            pid=runner.pid,
            runner=runner.id,
            started_at=timezone.now(),
        )
        if not claimed:
            return Claim(self._unclaimable(task_id))

        kallable, args, kwargs, attempts = Task.objects.values_list(
            "kallable", "args", "kwargs", "attempts"
        ).get(pk=task_id)
        return Claim(
            ClaimState.CLAIMED, TaskCall(task_id, kallable, args, kwargs, attempts)
        )

    def succeed(self, task_id: str, result: Any) -> None:
        self._finish(task_id, status=Task.Status.SUCCEEDED, result=result)

    def fail(self, task_id: str, error: str, traceback: str) -> None:
        self._finish(
            task_id, status=Task.Status.FAILED, error=error, traceback=traceback
        )

    def register(self, runner: Runner) -> None:
        close_old_connections()
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
        orphans = Task.objects.filter(status=Task.Status.RUNNING).exclude(
            runner__in=live
        )

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

    def publish_due(self, grace_seconds: float, limit: int, publish: Publish) -> int:
        now = timezone.now()
        due = Task.objects.filter(
            status=Task.Status.WAITING,
            published_at__isnull=True,
            created_at__lt=now - timedelta(seconds=grace_seconds),
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

    def _finish(self, task_id: str, **fields: Any) -> None:
        try:
            Task.objects.filter(pk=task_id).update(finished_at=timezone.now(), **fields)
        finally:
            close_old_connections()

    def _unclaimable(self, task_id: str) -> ClaimState:
        status = (
            Task.objects.filter(pk=task_id).values_list("status", flat=True).first()
        )
        close_old_connections()
        if status is None:
            return ClaimState.MISSING
        if status in _FINISHED:
            return ClaimState.FINISHED
        return ClaimState.BUSY


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
