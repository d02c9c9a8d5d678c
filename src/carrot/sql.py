"""The hottest statements: creating, claiming and settling a task.

Every task is created, claimed and settled once, and many are created in
bulk. The ORM cannot return columns from an UPDATE, so a claim would take
a second query, and compiling ORM queries costs more than a no-op task.
These statements are built from the model's own table and column names,
and values go through the fields' own conversions, so they store exactly
what the ORM would. They serve PostgreSQL and SQLite (the bulk COPY,
PostgreSQL alone); other databases take the ORM path in `carrot.store`,
`Task.save` and ``bulk_create``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field
from django.db.models.sql import InsertQuery

from .core.store import Outcome, Runner, TaskCall
from .models import Task

__all__ = [
    "claim_many",
    "claim_statement",
    "copy_tasks",
    "finish_many",
    "insert_task",
    "mark_published",
    "outcome_fields",
    "record_in_one_statement",
    "supports_returning",
]

#: The columns an outcome sets, besides ``finished_at`` and ``started_at``.
_OUTCOME_COLUMNS = ("status", "result", "error", "traceback")

#: INSERT statements Django compiled, by database and the fields they set.
_INSERTS: dict[tuple[str, str, tuple[int, ...]], str] = {}


def supports_returning(connection: BaseDatabaseWrapper) -> bool:
    """Whether the statements here work on ``connection``."""
    return connection.vendor in {"postgresql", "sqlite"} and bool(
        connection.features.can_return_columns_from_insert
    )


def outcome_fields(outcome: Outcome) -> dict[str, Any]:
    """The values an outcome stores, by field name."""
    status = Task.Status.SUCCEEDED if outcome.succeeded else Task.Status.FAILED
    return {
        "status": status,
        "result": outcome.result,
        "error": outcome.error,
        "traceback": outcome.traceback,
    }


def insert_task(task: Task, fields: Sequence[Field[Any, Any]], alias: str) -> bool:
    """Insert ``task`` as `Task.save` would, with a statement compiled once.

    Each field's ``pre_save()`` and ``get_db_prep_save()`` give the values,
    as in Django's own INSERT. Returns False, having sent nothing, where
    Django must compile the statement itself: on other databases, or when
    a value is an expression.
    """
    connection = connections[alias]
    if not supports_returning(connection):
        return False
    values = [field.pre_save(task, True) for field in fields]
    if any(hasattr(value, "resolve_expression") for value in values):
        # Django runs pre_save() again; on Task's fields it only reads the
        # attribute.
        return False

    params = [
        field.get_db_prep_save(value, connection)
        for field, value in zip(fields, values, strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(connection, fields, task), params)
    return True


def copy_tasks(tasks: Sequence[Task], alias: str) -> bool:
    """Insert ``tasks`` as `bulk_create` would, with one COPY on PostgreSQL.

    Each value goes through its field's ``pre_save()`` and
    ``get_db_prep_save()``, as in Django's own bulk INSERT, whose compiling
    costs more per row than the row costs PostgreSQL. Returns False, having
    sent nothing, where Django must insert them itself: on other databases
    or drivers, for a task without a primary key, or when a value is an
    expression.
    """
    connection = connections[alias]
    if connection.vendor != "postgresql" or not _is_psycopg3():
        return False
    fields = Task._meta.concrete_fields
    rows = [_copy_row(task, fields, connection) for task in tasks]
    if any(row is None for row in rows):
        return False

    columns = ", ".join(_quoted(field.name) for field in fields)
    statement = f"COPY {_table()} ({columns}) FROM STDIN"
    with (
        transaction.atomic(using=alias, savepoint=False),
        connection.cursor() as cursor,
        cursor.cursor.copy(statement) as copy,
    ):
        for row in rows:
            copy.write_row(row)

    for task in tasks:
        task._state.adding = False
        task._state.db = alias
    return True


def _copy_row(
    task: Task, fields: Sequence[Field[Any, Any]], connection: BaseDatabaseWrapper
) -> list[Any] | None:
    """The values of ``task`` ready to copy, or None if Django must insert it."""
    # As Django's bulk_create does: refuse a worker never saved, and take
    # the name of one saved since it was given. django-stubs leave this
    # method of Model out.
    task._prepare_related_fields_for_save(  # type: ignore[attr-defined]
        operation_name="bulk_create"
    )
    values = [field.pre_save(task, True) for field in fields]
    if task.pk is None or any(hasattr(v, "resolve_expression") for v in values):
        return None
    return [
        field.get_db_prep_save(value, connection)
        for field, value in zip(fields, values, strict=True)
    ]


def claim_many(
    alias: str,
    task_ids: Sequence[str],
    runner: Runner,
    now: datetime,
    *,
    relaxed: bool = False,
) -> dict[str, TaskCall]:
    """Claim the claimable rows among ``task_ids`` in one statement.

    On PostgreSQL, ``relaxed`` commits the claim without waiting for the
    WAL flush. Other transactions see it at once, so no second service
    claims the rows; only a crash of PostgreSQL itself can lose it, and
    then the task had not ended: its message is unacknowledged, the broker
    delivers it again and the row, back to waiting, is claimed again. An
    outcome is always committed durably, and its flush takes every earlier
    claim along. It saves a disk flush on the way to a task's start.
    """
    if not task_ids:
        return {}
    connection = connections[alias]
    sql, params = claim_statement(task_ids, runner, now, alias, relaxed=relaxed)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return _calls(rows, connection)


def finish_many(alias: str, outcomes: Sequence[Outcome], now: datetime) -> None:
    """Store ``outcomes`` with one statement run for each."""
    connection = connections[alias]
    prep = _preparer(connection)
    rows = [
        [
            *(prep(name, value) for name, value in outcome_fields(outcome).items()),
            *_times(prep, outcome, now),
            prep("id", outcome.task_id),
        ]
        for outcome in outcomes
    ]
    with connection.cursor() as cursor:
        cursor.executemany(_finish_sql(), rows)


def record_in_one_statement(
    alias: str,
    outcomes: Sequence[Outcome],
    task_ids: Sequence[str],
    runner: Runner,
    now: datetime,
) -> dict[str, TaskCall]:
    """Store outcomes and claim rows in one PostgreSQL statement.

    One statement is one round trip and one commit, where a transaction
    of two statements takes four round trips. The two parts touch
    different rows (outcomes of running rows, claims of waiting ones), as
    PostgreSQL requires of a statement that updates a table twice.
    """
    if not outcomes:
        return claim_many(alias, task_ids, runner, now, relaxed=True)
    connection = connections[alias]
    prep = _preparer(connection)
    finish_sql, finish_params = _finish_values(prep, outcomes, now)
    if not task_ids:
        with connection.cursor() as cursor:
            cursor.execute(finish_sql, finish_params)
        return {}

    claim_sql, claim_params = claim_statement(task_ids, runner, now, alias)
    claim_sql = f"WITH finished AS ({finish_sql}) {claim_sql}"
    claim_params = finish_params + claim_params
    with connection.cursor() as cursor:
        cursor.execute(claim_sql, claim_params)
        rows = cursor.fetchall()
    return _calls(rows, connection)


def mark_published(alias: str, task_ids: Sequence[str], now: datetime) -> None:
    """Set ``published_at`` on the rows no other transaction holds.

    A row held is being claimed, and the claim sets ``published_at``
    itself; skipping it, rather than waiting for it, keeps this statement
    from deadlocking with the service's, which lock rows in another order.
    """
    connection = connections[alias]
    prep = _preparer(connection)
    q = _quoted
    placeholders = ", ".join(["%s"] * len(task_ids))
    sql = (
        f"UPDATE {_table()} SET {q('published_at')} = %s WHERE {q('id')} IN ("
        f"SELECT {q('id')} FROM {_table()} WHERE {q('id')} IN ({placeholders}) "
        f"AND {q('published_at')} IS NULL FOR UPDATE SKIP LOCKED)"
    )
    params = [prep("published_at", now), *(prep("id", i) for i in task_ids)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _finish_values(
    prep: Any, outcomes: Sequence[Outcome], now: datetime
) -> tuple[str, list[Any]]:
    q = _quoted
    row = "(%s::uuid, %s, %s::jsonb, %s, %s, %s::timestamptz, %s::timestamptz)"
    sql = (
        f"UPDATE {_table()} AS t SET {q('status')} = v.status, "
        f"{q('result')} = v.result, {q('error')} = v.error, "
        f"{q('traceback')} = v.traceback, {q('finished_at')} = v.finished_at, "
        f"{q('started_at')} = COALESCE(v.started_at, t.{q('started_at')}) "
        f"FROM (VALUES {', '.join([row] * len(outcomes))}) "
        "AS v(id, status, result, error, traceback, finished_at, started_at) "
        f"WHERE t.{q('id')} = v.id"
    )
    params: list[Any] = []
    for outcome in outcomes:
        fields = outcome_fields(outcome)
        params += [
            prep("id", outcome.task_id),
            fields["status"],
            prep("result", fields["result"]),
            fields["error"],
            fields["traceback"],
            *_times(prep, outcome, now),
        ]
    return sql, params


def _times(prep: Any, outcome: Outcome, now: datetime) -> list[Any]:
    """``finished_at`` and ``started_at`` of an outcome, ready to store.

    The write comes a little after the call ends, so ``now`` stands in
    only for an outcome that does not say when it ended.
    """
    return [
        prep("finished_at", outcome.finished_at or now),
        prep("started_at", outcome.started_at),
    ]


def claim_statement(
    task_ids: Sequence[str],
    runner: Runner,
    now: datetime,
    alias: str = "default",
    *,
    relaxed: bool = False,
) -> tuple[str, list[Any]]:
    """The statement that claims ``task_ids`` for ``runner``, and its values.

    ``relaxed``, for PostgreSQL only, is described in `claim_many`.
    """
    prep = _preparer(connections[alias])
    runner_id = prep("runner", runner.id)
    params = [
        Task.Status.RUNNING,
        runner.host,
        runner.pid,
        runner_id,
        prep("started_at", now),
        prep("published_at", now),
        *(prep("id", task_id) for task_id in task_ids),
        Task.Status.WAITING,
        Task.Status.RUNNING,
        runner_id,
    ]
    return _claim_sql(len(task_ids), relaxed), params


def _calls(rows: Sequence[Any], connection: BaseDatabaseWrapper) -> dict[str, TaskCall]:
    load = _loader(connection)
    return {
        _canonical(task_id): TaskCall(
            _canonical(task_id), kallable, load("args", args), load("kwargs", kwargs), n
        )
        for task_id, kallable, args, kwargs, n in rows
    }


def _claim_sql(count: int, relaxed: bool = False) -> str:
    q = _quoted
    placeholders = ", ".join(["%s"] * count)
    # set_config(..., true) lasts for this statement's own transaction; the
    # EXISTS makes PostgreSQL evaluate it.
    relax = "SELECT set_config('synchronous_commit', 'off', true)"
    return (
        (f"WITH relaxed AS ({relax}) " if relaxed else "")
        + f"UPDATE {_table()} SET {q('status')} = %s, "
        f"{q('attempts')} = {q('attempts')} + 1, {q('host')} = %s, "
        f"{q('pid')} = %s, {q('runner')} = %s, {q('started_at')} = %s, "
        # A row claimed was published, whether or not its publisher has
        # recorded it yet; the outbox sweep must not take it for lost.
        f"{q('published_at')} = COALESCE({q('published_at')}, %s) "
        f"WHERE {q('id')} IN ({placeholders}) AND ({q('status')} = %s "
        f"OR ({q('status')} = %s AND {q('runner')} = %s)) "
        + ("AND EXISTS (SELECT FROM relaxed) " if relaxed else "")
        + f"RETURNING {q('id')}, {q('kallable')}, {q('args')}, {q('kwargs')}, "
        f"{q('attempts')}"
    )


def _insert_sql(
    connection: BaseDatabaseWrapper, fields: Sequence[Field[Any, Any]], task: Task
) -> str:
    # A model's fields live as long as the process, so their ids name them
    # for less than hashing the fields themselves costs.
    key = (connection.alias, connection.vendor, tuple(map(id, fields)))
    statement = _INSERTS.get(key)
    if statement is None:
        statement = _INSERTS[key] = _compile_insert(connection, fields, task)
    return statement


def _compile_insert(
    connection: BaseDatabaseWrapper, fields: Sequence[Field[Any, Any]], task: Task
) -> str:
    # Django's compiler writes the statement from one row. Compiled raw, it
    # reads the values as they are rather than running pre_save() again;
    # only the text is kept. Every field of Task takes a plain placeholder,
    # so the text does not depend on the values.
    query = InsertQuery(Task)
    query.insert_values(fields, [task], raw=True)
    ((statement, _values),) = query.get_compiler(connection=connection).as_sql()
    return str(statement)


def _finish_sql() -> str:
    q = _quoted
    assignments = ", ".join(f"{q(name)} = %s" for name in _OUTCOME_COLUMNS)
    return (
        f"UPDATE {_table()} SET {assignments}, {q('finished_at')} = %s, "
        f"{q('started_at')} = COALESCE(%s, {q('started_at')}) "
        f"WHERE {q('id')} = %s"
    )


def _table() -> str:
    # PostgreSQL and SQLite, the only vendors used here, both quote
    # identifiers with double quotes.
    return f'"{Task._meta.db_table}"'


def _quoted(name: str) -> str:
    return f'"{_field(name).column}"'


def _preparer(connection: BaseDatabaseWrapper) -> Any:
    def prep(name: str, value: Any) -> Any:
        return _field(name).get_db_prep_save(value, connection)

    return prep


def _loader(connection: BaseDatabaseWrapper) -> Any:
    def load(name: str, value: Any) -> Any:
        field: Any = _field(name)  # only some fields convert what they read
        return field.from_db_value(value, None, connection)

    return load


def _is_psycopg3() -> bool:
    # Imported here: the module needs a PostgreSQL driver installed.
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    return bool(is_psycopg3)


def _canonical(task_id: Any) -> str:
    # PostgreSQL returns a UUID, SQLite 32 hex digits; messages carry the
    # hyphenated form.
    return str(uuid.UUID(str(task_id)))


def _field(name: str) -> Field[Any, Any]:
    field = Task._meta.get_field(name)
    assert isinstance(field, Field)
    return field
