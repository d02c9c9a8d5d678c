"""What only PostgreSQL can show: connections, query plans and COPY.

Run with ``CARROT_TEST_DATABASE=postgres``; ``nox -s tests`` does.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection, transaction
from django.db.models import Value
from django.db.models.functions import Lower
from django.utils import timezone

from carrot import sql
from carrot.core import Runner
from carrot.models import DEFAULT_WORKER, Task, Worker
from carrot.publishing import flush
from tests.conftest import queue_size, serve, wait_for
from tests.test_creating import (
    ADD,
    NOON,
    Rollback,
    every_column,
    full_task,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

#: Enough tasks that a connection left open per task would show.
TASKS = 10_000
CONCURRENCY = 4


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with CARROT_TEST_DATABASE=postgres")


def other_connections() -> int:
    """Connections to the test database, not counting this thread's own."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        (count,) = cursor.fetchone()
    return int(count)


def test_running_many_tasks_opens_no_connection_per_task():
    Worker.objects.filter(name=DEFAULT_WORKER).update(concurrency=CONCURRENCY)
    Task.objects.bulk_create(
        Task(kallable="tests.examples.tasks.noop") for _ in range(TASKS)
    )
    assert flush(60)
    peak = 0

    def all_succeeded() -> bool:
        nonlocal peak
        peak = max(peak, other_connections())
        return not Task.objects.exclude(status=Task.Status.SUCCEEDED).exists()

    with serve():
        # Polled gently: the test's own queries slow the service down.
        wait_for(
            all_succeeded,
            timeout=300,
            what=f"{TASKS} tasks to succeed",
            interval_seconds=0.25,
        )
        after_the_run = other_connections()

    # A connection for each pool thread, and one for the service's own
    # thread, which reads the workers and does the housekeeping.
    assert peak <= CONCURRENCY + 1
    assert after_the_run <= CONCURRENCY + 1
    # The server ends a backend shortly after its client has closed it.
    wait_for(
        lambda: other_connections() == 0, what="the service's connections to close"
    )


def test_a_claim_finds_its_rows_by_primary_key_however_many_wait():
    # Statistics taken while no row waited, as when a queue fills between
    # two runs of autovacuum: an index whose condition a claim implies
    # then looks tiny to the planner, which would scan it whole per claim.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE carrot_task")
    Task.objects.bulk_create(
        Task(kallable="tests.examples.tasks.noop") for _ in range(2_000)
    )
    ids = [str(pk) for pk in Task.objects.values_list("pk", flat=True)[:4]]

    for relaxed in (False, True):
        statement, params = sql.claim_statement(
            ids, Runner("host", 1), timezone.now(), relaxed=relaxed
        )
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN {statement}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())

        used = set(re.findall(r"Index (?:Only )?Scan on (\w+)", plan))
        assert used == {"carrot_task_pkey"}, plan


def test_a_relaxed_claim_skips_the_flush_of_its_own_transaction_only():
    tasks = Task.objects.bulk_create(
        Task(kallable="tests.examples.tasks.noop") for _ in range(3)
    )
    ids = [str(task.pk) for task in tasks]

    with transaction.atomic():
        now = timezone.now()
        calls = sql.claim_many("default", ids, Runner("host", 1), now, relaxed=True)
        inside = synchronous_commit()

    assert sorted(calls) == sorted(ids)
    assert inside == "off"
    assert synchronous_commit() == "on"
    running = Task.objects.filter(pk__in=ids, status=Task.Status.RUNNING)
    assert running.count() == 3


def synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        (value,) = cursor.fetchone()
    return str(value)


def test_bulk_create_copies_the_rows_the_orm_would_insert(
    orm_inserts: list[object], monkeypatch: pytest.MonkeyPatch
):
    def tasks() -> list[Task]:
        return [Task(**full_task()), Task(kallable=ADD, created_at=NOON)]

    copied = Task.objects.bulk_create(tasks())
    assert orm_inserts == []

    monkeypatch.setattr(sql, "copy_tasks", lambda *args: False)
    inserted = Task.objects.bulk_create(tasks())
    assert orm_inserts == inserted

    for fast, slow in zip(copied, inserted, strict=True):
        fast_row, slow_row = every_column(fast.pk), every_column(slow.pk)
        assert fast_row.pop("id") != slow_row.pop("id")
        assert fast_row == slow_row
    assert all(not task._state.adding for task in copied)
    assert {task._state.db for task in copied} == {"default"}
    assert flush(10)
    assert queue_size() == 4


def test_bulk_create_with_an_option_of_djangos_is_left_to_django(
    orm_inserts: list[object],
):
    tasks = Task.objects.bulk_create([Task(kallable=ADD)], ignore_conflicts=True)

    assert orm_inserts == tasks
    assert Task.objects.count() == 1


def test_bulk_create_of_a_task_without_a_key_or_with_an_expression_is_djangos(
    orm_inserts: list[object],
):
    keyless = Task(kallable=ADD, id=None)
    lowered = Task(kallable=ADD, host=Lower(Value("HOST-1")))

    Task.objects.bulk_create([keyless])
    Task.objects.bulk_create([lowered])

    assert orm_inserts == [keyless, lowered]
    assert keyless.pk is not None
    assert every_column(lowered.pk)["host"] == "host-1"


def test_a_rolled_back_bulk_create_stores_and_publishes_nothing(
    orm_inserts: list[object],
):
    with pytest.raises(Rollback), transaction.atomic():
        Task.objects.bulk_create(Task(kallable=ADD) for _ in range(3))
        raise Rollback

    assert orm_inserts == []
    assert flush(10)
    assert queue_size() == 0
    assert not Task.objects.exists()


def test_bulk_create_refuses_a_worker_that_was_never_saved_as_django_does():
    worker = Worker(name="unsaved")
    task = Task(kallable=ADD)
    task.worker = worker

    with pytest.raises(ValueError, match="unsaved related object 'worker'"):
        Task.objects.bulk_create([task])

    assert not Task.objects.exists()
