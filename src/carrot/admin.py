"""The Django admin for workers and their tasks.

A task row is history: the admin shows it but never edits it. New tasks
are added through the same validation as ``Task.objects.create``, and an
old one is run again as a new row, so the first run stays on record.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.utils.translation import ngettext

from .core import InvalidTask
from .models import Task, Worker

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldsetSpec

__all__ = ["TaskAdmin", "WorkerAdmin"]

#: The fields a person fills in to add a task; the rest is the service's.
_TASK_INPUT_FIELDS = ("kallable", "args", "kwargs", "worker")

#: Characters of a worker's description shown in the list of workers.
_DESCRIPTION_CHARS = 80


# ModelAdmin is generic only in django-stubs; subscripting it at run time
# fails, hence the bare base classes and their ignores.
@admin.register(Worker)
class WorkerAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """List workers with their load; edit concurrency and enabled in place."""

    list_display = [
        "name",
        "concurrency",
        "enabled",
        "short_description",
        "waiting_tasks",
        "running_tasks",
    ]
    list_editable = ["concurrency", "enabled"]
    list_filter = ["enabled"]
    search_fields = ["name"]

    def get_readonly_fields(
        self, request: HttpRequest, obj: Worker | None = None
    ) -> list[str]:
        # The name is the queue's name and tasks refer to it by name, so a
        # rename would strand the queue and every task already in it.
        return ["name"] if obj is not None else []

    def get_queryset(self, request: HttpRequest) -> QuerySet[Worker]:
        workers = super().get_queryset(request)
        counted: QuerySet[Worker] = workers.annotate(
            _waiting=_count_tasks(Task.Status.WAITING),
            _running=_count_tasks(Task.Status.RUNNING),
        )
        return counted

    @admin.display(description="description")
    def short_description(self, obj: Worker) -> str:
        return Truncator(obj.description).chars(_DESCRIPTION_CHARS)

    @admin.display(description="waiting", ordering="_waiting")
    def waiting_tasks(self, obj: Worker) -> SafeString:
        count: int = obj._waiting  # type: ignore[attr-defined]
        return self._tasks_link(obj, Task.Status.WAITING, count)

    @admin.display(description="running", ordering="_running")
    def running_tasks(self, obj: Worker) -> SafeString:
        count: int = obj._running  # type: ignore[attr-defined]
        return self._tasks_link(obj, Task.Status.RUNNING, count)

    def _tasks_link(self, worker: Worker, status: str, count: int) -> SafeString:
        url = reverse(f"{self.admin_site.name}:carrot_task_changelist")
        query = urlencode({"worker__name__exact": worker.name, "status__exact": status})
        return format_html('<a href="{}?{}">{}</a>', url, query, count)


def _count_tasks(status: str) -> Coalesce:
    # One subquery per worker row, which the index of unfinished rows keeps
    # small: waiting and running rows are few next to the finished ones.
    tasks = (
        Task.objects.filter(
            worker=OuterRef("name"), status=status, finished_at__isnull=True
        )
        .order_by()
        .values("worker")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return Coalesce(Subquery(tasks, output_field=IntegerField()), 0)


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Show tasks read-only; add them, or run them again, as new rows."""

    list_display = [
        "short_id",
        "kallable",
        "worker_name",
        "status",
        "attempts",
        "created_at",
        "finished_at",
        "duration",
    ]
    list_filter = ["status", "worker", "created_at"]
    search_fields = ["kallable", "id"]
    # Counting every row of a long history on each filtered page is slow.
    show_full_result_count = False
    actions = ["run_again"]
    readonly_fields = [
        "args_json",
        "kwargs_json",
        "result_json",
        "error_text",
        "traceback_text",
        "duration",
    ]

    def get_fieldsets(
        self, request: HttpRequest, obj: Task | None = None
    ) -> _FieldsetSpec:
        if obj is None:
            return [(None, {"fields": _TASK_INPUT_FIELDS})]
        return [
            (None, {"fields": ["id", "kallable", "worker", "status"]}),
            ("Call", {"fields": ["args_json", "kwargs_json"]}),
            ("Outcome", {"fields": ["result_json", "error_text", "traceback_text"]}),
            (
                "Runs",
                {
                    "fields": [
                        "attempts",
                        "host",
                        "pid",
                        "runner",
                        "created_at",
                        "published_at",
                        "started_at",
                        "finished_at",
                        "duration",
                    ]
                },
            ),
        ]

    def has_change_permission(
        self, request: HttpRequest, obj: Task | None = None
    ) -> bool:
        # A task's row is what ran and how it ended; editing it would
        # rewrite history and race the service that owns running rows.
        return False

    @admin.display(description="ID", ordering="id")
    def short_id(self, obj: Task) -> str:
        return str(obj.pk)[:8]

    @admin.display(description="worker", ordering="worker")
    def worker_name(self, obj: Task) -> str | None:
        # The foreign key holds the worker's name: no query for the row.
        return obj.worker_id

    @admin.display(description="duration")
    def duration(self, obj: Task) -> str:
        if obj.started_at is None or obj.finished_at is None:
            return self.get_empty_value_display()
        return _format_duration(obj.finished_at - obj.started_at)

    @admin.display(description="args")
    def args_json(self, obj: Task) -> SafeString:
        return _pre(_pretty_json(obj.args))

    @admin.display(description="kwargs")
    def kwargs_json(self, obj: Task) -> SafeString:
        return _pre(_pretty_json(obj.kwargs))

    @admin.display(description="result")
    def result_json(self, obj: Task) -> SafeString | str:
        if obj.status != Task.Status.SUCCEEDED:
            return self.get_empty_value_display()
        return _pre(_pretty_json(obj.result))

    @admin.display(description="error")
    def error_text(self, obj: Task) -> SafeString | str:
        return _pre(obj.error) if obj.error else self.get_empty_value_display()

    @admin.display(description="traceback")
    def traceback_text(self, obj: Task) -> SafeString | str:
        if not obj.traceback:
            return self.get_empty_value_display()
        return _pre(obj.traceback)

    @admin.action(description="Run again", permissions=["add"])
    def run_again(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        """Add a new task for each selected one, with the same call."""
        originals = queryset.only(*_TASK_INPUT_FIELDS)
        copies, refused = _copy_tasks(originals)

        if copies:
            Task.objects.bulk_create(copies)
            count = len(copies)
            message = ngettext(
                "Added %d new task with the same call; the selected one is "
                "kept as it was.",
                "Added %d new tasks with the same calls; the selected ones "
                "are kept as they were.",
                count,
            )
            self.message_user(request, message % count, messages.SUCCESS)

        for original, error in refused:
            self.message_user(
                request,
                f"Task {original.pk} was not run again: {error}",
                messages.ERROR,
            )


def _copy_tasks(
    originals: QuerySet[Task],
) -> tuple[list[Task], list[tuple[Task, InvalidTask]]]:
    # A task that was valid once can be refused now: its module may have
    # gone, or CARROT_ALLOWED_MODULES may have changed since.
    copies: list[Task] = []
    refused: list[tuple[Task, InvalidTask]] = []
    for original in originals:
        copy = Task(
            kallable=original.kallable,
            args=original.args,
            kwargs=original.kwargs,
            worker_id=original.worker_id,
        )
        try:
            copy.validate()
        except InvalidTask as exc:
            refused.append((original, exc))
        else:
            copies.append(copy)
    return copies, refused


def _pretty_json(value: object) -> str:
    # Sorted, because jsonb on PostgreSQL does not keep the keys in order.
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def _pre(text: str) -> SafeString:
    # pre-wrap keeps a traceback's indentation but wraps its long lines
    # inside the admin's column instead of widening the page.
    return format_html('<pre style="white-space: pre-wrap">{}</pre>', text)


def _format_duration(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 60:
        return f"{seconds:.2f} s"
    return str(timedelta(seconds=round(seconds)))
