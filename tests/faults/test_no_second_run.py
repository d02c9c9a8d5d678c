"""No accidental second run: copies of a task's message run it once.

Every test publishes the same task's message three more times, as a
broker redelivering or a publisher retrying would.
"""

from __future__ import annotations

import json

import pytest

from carrot.core import TaskMessage
from carrot.models import Task
from tests.conftest import publish_raw
from tests.faults.conftest import poll, set_concurrency, statuses

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

WORK = "tests.examples.faults.work"
HOLD = "tests.examples.faults.hold"
COPIES = 5


def publish_copies(task: Task, copies: int = COPIES) -> None:
    """Publish ``copies`` more messages for ``task``."""
    body = json.dumps(TaskMessage(str(task.pk)).to_body()).encode()
    for _ in range(copies):
        publish_raw(body, "application/json")


def received(task: Task, *services) -> int:
    """How many messages for ``task`` the services have taken."""
    return sum(s.log().count(f"received task {task.pk} ") for s in services)


def queue_is_empty(rabbitmq, settings) -> bool:
    depths = rabbitmq.queue_depths()
    return depths.get(f"{settings.CARROT_QUEUE_PREFIX}.default") == (0, 0)


def test_copies_of_a_finished_task_are_acknowledged_without_running_it(
    rabbitmq_settings, services, ledger, settings
):
    service = services.start(rabbitmq_settings.url)
    task = Task.objects.create(kallable=WORK, args=[str(ledger), "once"])
    poll(lambda: statuses() == {"succeeded": 1}, 30, "the task to run")

    publish_copies(task)

    poll(lambda: received(task, service) == 1 + COPIES, 30, "the copies to arrive")
    poll(lambda: queue_is_empty(rabbitmq_settings, settings), 30, "no message left")
    # A copy that arrives while another is being checked joins that check.
    assert f"task {task.pk} already finished" in service.log()
    assert ledger.count("start") == {"once": 1}
    task.refresh_from_db()
    assert task.attempts == 1


def test_copies_of_a_task_running_in_the_service_join_that_run(
    rabbitmq_settings, services, ledger, settings, tmp_path
):
    release = tmp_path / "release"
    service = services.start(rabbitmq_settings.url)
    task = Task.objects.create(kallable=HOLD, args=[str(ledger), "once", str(release)])
    poll(lambda: ledger.count("start") == {"once": 1}, 30, "the task to start")

    publish_copies(task)
    poll(lambda: received(task, service) == 1 + COPIES, 30, "the copies to arrive")
    release.touch()

    poll(lambda: statuses() == {"succeeded": 1}, 30, "the task to finish")
    poll(lambda: queue_is_empty(rabbitmq_settings, settings), 30, "no message left")
    assert ledger.count("start") == {"once": 1}
    task.refresh_from_db()
    assert task.attempts == 1


def test_copies_of_a_task_running_in_another_live_service_do_not_start_it(
    rabbitmq_settings, services, ledger, settings, tmp_path
):
    set_concurrency(1)
    release = tmp_path / "release"
    both = [services.start(rabbitmq_settings.url) for _ in range(2)]
    task = Task.objects.create(kallable=HOLD, args=[str(ledger), "once", str(release)])
    poll(lambda: ledger.count("start") == {"once": 1}, 30, "the task to start")
    (running,) = ledger.pids("start", "once")
    (other,) = [service for service in both if service.pid != running]

    # The running service holds the task's message and at most one copy
    # within its prefetch of two, so the broker hands the others to the
    # other service.
    for copy in range(1, COPIES + 1):
        publish_copies(task, 1)
        poll(lambda c=copy: received(task, *both) == 1 + c, 30, "the copy to arrive")
    assert f"task {task.pk} is running in another process" in other.log()
    release.touch()

    poll(lambda: statuses() == {"succeeded": 1}, 30, "the task to finish")
    poll(lambda: queue_is_empty(rabbitmq_settings, settings), 30, "no message left")
    assert ledger.count("start") == {"once": 1}
    task.refresh_from_db()
    assert task.attempts == 1
