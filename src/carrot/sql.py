"""The service's two hottest statements, written by hand.

Claiming a row and recording its outcome run once per task. The ORM
cannot return columns from an UPDATE, so a claim would take two round
trips, and compiling an ORM query costs more than a no-op task. These
statements are built once per connection vendor from the model's own
table and column names, and values go through the fields' own
conversions, so they store exactly what the ORM would.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field

from .models import Task

__all__ = ["claim_returning", "finish", "supports_returning"]

_RUNNING = Task.Status.RUNNING
_WAITING = Task.Status.WAITING


def supports_returning(connection: BaseDatabaseWrapper) -> bool:
    """Whether ``UPDATE ... RETURNING`` works on ``connection``."""
    return connection.vendor in {"postgresql", "sqlite"} and bool(
        connection.features.can_return_columns_from_insert
    )


def claim_returning(
    alias: str, task_id: str, runner_id: str, host: str, pid: int, now: Any
) -> tuple[str, Any, Any, int] | None:
    """Claim a row in one statement; return its call, or None if unclaimable."""
    connection = connections[alias]
    runner = _prep("runner", runner_id, connection)
    params = [
        _RUNNING,
        host,
        pid,
        runner,
        _prep("started_at", now, connection),
        _prep("id", task_id, connection),
        _WAITING,
        _RUNNING,
        runner,
    ]
    with connection.cursor() as cursor:
        cursor.execute(_claim_sql(), params)
        row = cursor.fetchone()
    if row is None:
        return None

    kallable, args, kwargs, attempts = row
    return (
        kallable,
        _load("args", args, connection),
        _load("kwargs", kwargs, connection),
        attempts,
    )


def finish(alias: str, task_id: str, now: Any, **fields: Any) -> None:
    """Record an outcome: ``status`` and any of result, error, traceback."""
    connection = connections[alias]
    names = sorted(fields)
    params = [_prep(name, fields[name], connection) for name in names]
    params += [_prep("finished_at", now, connection), _prep("id", task_id, connection)]
    with connection.cursor() as cursor:
        cursor.execute(_finish_sql(tuple(names)), params)


@functools.cache
def _claim_sql() -> str:
    q = _quoted
    return (
        f"UPDATE {_table()} SET {q('status')} = %s, "
        f"{q('attempts')} = {q('attempts')} + 1, {q('host')} = %s, "
        f"{q('pid')} = %s, {q('runner')} = %s, {q('started_at')} = %s "
        f"WHERE {q('id')} = %s AND ({q('status')} = %s "
        f"OR ({q('status')} = %s AND {q('runner')} = %s)) "
        f"RETURNING {q('kallable')}, {q('args')}, {q('kwargs')}, {q('attempts')}"
    )


@functools.cache
def _finish_sql(names: tuple[str, ...]) -> str:
    assignments = ", ".join(f"{_quoted(name)} = %s" for name in names)
    return (
        f"UPDATE {_table()} SET {assignments}, "
        f"{_quoted('finished_at')} = %s WHERE {_quoted('id')} = %s"
    )


def _table() -> str:
    # PostgreSQL and SQLite, the only vendors used here, both quote
    # identifiers with double quotes.
    return f'"{Task._meta.db_table}"'


def _quoted(name: str) -> str:
    return f'"{_column(name)}"'


def _column(name: str) -> str:
    return str(_field(name).column)


def _prep(name: str, value: Any, connection: BaseDatabaseWrapper) -> Any:
    return _field(name).get_db_prep_save(value, connection)


def _load(name: str, value: Any, connection: BaseDatabaseWrapper) -> Any:
    return _field(name).from_db_value(value, None, connection)  # type: ignore[attr-defined]


def _field(name: str) -> Field[Any, Any]:
    field = Task._meta.get_field(name)
    assert isinstance(field, Field)
    return field
