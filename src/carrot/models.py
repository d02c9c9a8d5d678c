"""The rows carrot keeps: workers and their tasks.

A task row is the source of truth: a worker runs what the row says, and
the message on the broker only names the row.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from .conf import get_config
from .core import InvalidTask
from .core.config import check_worker_name
from .core.kallable import resolve
from .core.payload import check_args, check_kwargs, check_size

__all__ = ["DEFAULT_WORKER", "Runner", "Task", "Worker"]

#: The worker a task goes to when it names none; created by the migrations.
DEFAULT_WORKER = "default"


def validate_worker_name(name: str) -> None:
    """Django validator for `Worker.name`."""
    try:
        check_worker_name(name)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


class Worker(models.Model):
    """A named lane of work: one queue and how many of its tasks run at once."""

    name = models.CharField(
        max_length=100, unique=True, validators=[validate_worker_name]
    )
    description = models.TextField(blank=True)
    #: How many of this worker's tasks one service process runs at once.
    concurrency = models.PositiveIntegerField(
        default=4, validators=[MinValueValidator(1)]
    )
    #: A disabled worker's tasks wait in its queue until it is enabled.
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(concurrency__gte=1),
                name="carrot_worker_concurrency_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        check_worker_name(self.name)
        if self.concurrency < 1:
            raise ValueError(
                f"worker {self.name!r} needs a concurrency of at "
                f"least 1, not {self.concurrency}"
            )
        super().save(*args, **kwargs)


class TaskQuerySet(models.QuerySet["Task"]):
    def bulk_create(
        self, objs: Iterable[Task], *args: Any, **kwargs: Any
    ) -> list[Task]:
        """Validate and insert the tasks, then publish them on commit.

        On PostgreSQL, plain inserts go as one COPY; options such as
        ``ignore_conflicts`` leave them to Django.
        """
        from .publishing import publish_on_commit
        from .sql import copy_tasks

        tasks = list(objs)
        for task in tasks:
            task.validate()
        # ``batch_size`` bounds the parameters of one INSERT; a COPY has none.
        options = {key: value for key, value in kwargs.items() if key != "batch_size"}
        if args or any(options.values()) or not copy_tasks(tasks, self.db):
            tasks = super().bulk_create(tasks, *args, **kwargs)
        publish_on_commit(tasks, self.db)
        return tasks


class Task(models.Model):
    """A call to run on a worker, with its lifecycle and outcome."""

    class Status(models.TextChoices):
        WAITING = "waiting"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    #: Dotted path of the callable, such as ``"animals.Dog.bark"``.
    kallable = models.CharField(max_length=255)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    # Unindexed, like ``status``: every index costs each of the two writes
    # of every task; the partial indexes below serve the queries instead.
    worker = models.ForeignKey(
        Worker,
        on_delete=models.PROTECT,
        to_field="name",
        db_column="worker",
        db_index=False,
        default=DEFAULT_WORKER,
        related_name="tasks",
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.WAITING
    )
    #: The JSON return value of a succeeded task.
    result = models.JSONField(null=True, blank=True)
    #: The exception of a failed task, as ``Type: message``.
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    #: How many times a worker has started the task.
    attempts = models.PositiveIntegerField(default=0)
    #: The host and process that ran the task last.
    host = models.CharField(max_length=255, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)
    #: The `Runner` that ran the task last; a running task whose runner
    #: stopped answering is run again.
    runner = models.UUIDField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    #: When the broker confirmed the message; empty while still to publish.
    published_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects: ClassVar[models.Manager[Task]] = TaskQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        # Partial indexes hold only the unfinished rows, so a task finishing
        # leaves them alone. Their condition is not the status: the planner
        # could take an index on waiting rows to claim a few of them, and
        # scan it whole when its statistics are older than the backlog.
        indexes = [
            # The admin's counts per worker, and recovery's running rows.
            models.Index(
                fields=["status", "worker"],
                name="carrot_task_unfinished",
                condition=models.Q(finished_at__isnull=True),
            ),
            # The republish sweep: waiting rows by when they were published.
            models.Index(
                fields=["status", "published_at"],
                name="carrot_task_republish",
                condition=models.Q(finished_at__isnull=True),
            ),
            # The outbox: waiting rows the broker has not confirmed.
            models.Index(
                fields=["created_at"],
                name="carrot_task_unpublished",
                condition=models.Q(published_at__isnull=True, status="waiting"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kallable} ({self.status})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self._state.adding:
            self.validate()
        super().save(*args, **kwargs)

    def _do_insert(
        self,
        manager: models.Manager[Task],
        using: str,
        fields: Sequence[models.Field[Any, Any]],
        returning_fields: Sequence[models.Field[Any, Any]],
        raw: bool,
    ) -> list[Any]:
        # Compiling the INSERT costs more than sending it; a task's statement
        # is the same every time, so it is compiled once. A raw save, such as
        # loaddata's, or one that must read columns back, goes Django's way.
        from .sql import insert_task

        if not raw and not returning_fields and insert_task(self, fields, using):
            return []
        # django-stubs leave this hook of Model.save_base out.
        rows: list[Any] = super()._do_insert(  # type: ignore[misc]
            manager, using, fields, returning_fields, raw
        )
        return rows

    def validate(self) -> None:
        """Raise `InvalidTask` unless the row can be stored and run."""
        config = get_config()
        _check_kallable(self.kallable, config.allowed_modules)
        self.args = check_args(self.args)
        self.kwargs = check_kwargs(self.kwargs)
        check_size(self.args, self.kwargs, config.max_payload_bytes)

    def clean(self) -> None:
        try:
            resolve(self.kallable, get_config().allowed_modules)
        except InvalidTask as exc:
            raise ValidationError({"kallable": str(exc)}) from None
        try:
            self.validate()
        except InvalidTask as exc:
            raise ValidationError(str(exc)) from None


#: The kallables that resolved, with the allowed modules of the check. A
#: module once imported stays imported, so they would resolve again; one
#: that failed is tried again every time.
_RESOLVED: set[tuple[str, tuple[str, ...] | None]] = set()


def _check_kallable(path: str, allowed_modules: tuple[str, ...] | None) -> None:
    # Resolving a method looks for a module of the class's name first, which
    # costs more than a row's other checks together. Only a string can be
    # remembered; `resolve` refuses anything else.
    key = (path, allowed_modules)
    if isinstance(path, str) and key in _RESOLVED:
        return
    resolve(path, allowed_modules)
    _RESOLVED.add(key)


class Runner(models.Model):
    """A running service process, as long as it keeps answering.

    The service records itself here at every refresh. The rows of a runner
    that has been silent longer than ``CARROT_RUNNER_TIMEOUT_SECONDS`` are
    handed back to other services.
    """

    id = models.UUIDField(primary_key=True, editable=False)
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    seen_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["host", "pid"]

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}"
