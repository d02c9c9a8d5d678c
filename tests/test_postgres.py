"""What only PostgreSQL can show: connections and query plans.

Run with ``CARROT_TEST_DATABASE=postgres``; ``nox -s tests`` does.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection, transaction
from django.utils import timezone

from carrot import sql
from carrot.core import Runner
from carrot.models import DEFAULT_WORKER, Task, Worker
from carrot.publishing import flush
from tests.conftest import serve, wait_for

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
