"""Poison and bad input never stop a worker, and never loop forever.

A copy of a finished task is in `test_no_second_run`.
"""

from __future__ import annotations

import json
import uuid

import pytest

from carrot.core import InvalidTask
from carrot.models import Task
from tests.conftest import publish_raw
from tests.faults.conftest import poll, statuses

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

WORK = "tests.examples.faults.work"
KILL = "tests.examples.faults.kill_own_process"

#: Messages no worker can read, as (body, content type).
UNREADABLE = [
    (b"{this is not json", "application/json"),
    (
        json.dumps({"carrot": 99, "task_id": str(uuid.uuid4())}).encode(),
        "application/json",
    ),
    (json.dumps({"hello": "world"}).encode(), "application/json"),
    (json.dumps({"carrot": 1, "task_id": 12}).encode(), "application/json"),
    (b"run something for me", "text/plain"),
    (b"\x80\x04\x95", "application/x-python-serialize"),
]


def queue_is_empty(rabbitmq, settings) -> bool:
    depths = rabbitmq.queue_depths()
    return depths.get(f"{settings.CARROT_QUEUE_PREFIX}.default") == (0, 0)


def test_unreadable_messages_are_rejected_and_the_worker_goes_on(
    rabbitmq_settings, services, ledger, settings
):
    service = services.start(rabbitmq_settings.url)

    for body, content_type in UNREADABLE:
        publish_raw(body, content_type)
    Task.objects.create(kallable=WORK, args=[str(ledger), "after"])

    poll(lambda: statuses() == {"succeeded": 1}, 30, "the good task to run")
    poll(
        lambda: service.log().count("rejected a message") == len(UNREADABLE),
        30,
        "every unreadable message to be rejected",
    )
    poll(lambda: queue_is_empty(rabbitmq_settings, settings), 30, "no message left")
    assert service.alive


def test_a_message_for_a_missing_row_is_dropped_after_a_short_retry(
    rabbitmq_settings, services, settings
):
    service = services.start(rabbitmq_settings.url)
    task_id = str(uuid.uuid4())

    publish_raw(
        json.dumps({"carrot": 1, "task_id": task_id}).encode(), "application/json"
    )

    poll(
        lambda: f"task {task_id} has no row; message dropped" in service.log(),
        30,
        "the message to be dropped",
    )
    poll(lambda: queue_is_empty(rabbitmq_settings, settings), 30, "no message left")
    assert service.alive


def test_a_message_that_arrives_before_its_row_is_committed_runs_the_task(
    rabbitmq_settings, services, ledger
):
    service = services.start(rabbitmq_settings.url)
    task_id = uuid.uuid4()

    publish_raw(
        json.dumps({"carrot": 1, "task_id": str(task_id)}).encode(), "application/json"
    )
    poll(
        lambda: f"received task {task_id} " in service.log(),
        30,
        "the message to arrive",
    )
    Task.objects.create(id=task_id, kallable=WORK, args=[str(ledger), "late"])

    poll(lambda: statuses() == {"succeeded": 1}, 30, "the task to run")
    assert ledger.count("start") == {"late": 1}
    assert f"task {task_id} has no row" not in service.log()


def test_a_kallable_that_no_longer_imports_fails_its_task(
    rabbitmq_settings, services, settings
):
    task = Task.objects.create(kallable=WORK, args=["unused", "gone"])
    # As after a deploy that removed the module.
    Task.objects.filter(pk=task.pk).update(kallable="tests.examples.removed.work")

    service = services.start(rabbitmq_settings.url)

    poll(lambda: statuses() == {"failed": 1}, 30, "the task to fail")
    task.refresh_from_db()
    assert "tests.examples.removed.work" in task.error
    assert task.attempts == 1
    poll(lambda: queue_is_empty(rabbitmq_settings, settings), 30, "no message left")
    assert service.alive


def test_a_task_that_kills_its_process_every_time_is_failed_after_max_attempts(
    rabbitmq_settings, services, ledger
):
    killer = Task.objects.create(kallable=KILL, args=[str(ledger), "killer"])
    service = services.start(rabbitmq_settings.url, CARROT_MAX_ATTEMPTS=2)

    def failed_or_restarted() -> bool:
        # A supervisor's work: start the service again whenever it dies.
        nonlocal service
        if not service.alive:
            service = services.start(rabbitmq_settings.url, CARROT_MAX_ATTEMPTS=2)
        return Task.objects.filter(pk=killer.pk, status="failed").exists()

    poll(failed_or_restarted, 90, "the task to be failed")
    killer.refresh_from_db()
    assert killer.error.startswith("WorkerLost")
    assert killer.attempts == 2
    assert ledger.count("start") == {"killer": 2}

    Task.objects.create(kallable=WORK, args=[str(ledger), "after"])
    poll(lambda: ledger.count("end") == {"after": 1}, 30, "a later task to run")


def test_an_oversized_payload_is_refused_when_the_task_is_created(settings):
    settings.CARROT_MAX_PAYLOAD_BYTES = 1000

    with pytest.raises(InvalidTask, match="over the limit of 1000"):
        Task.objects.create(kallable=WORK, args=["unused", "x" * 2000])

    assert not Task.objects.exists()
