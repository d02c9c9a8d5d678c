"""Long tasks: a task outliving RabbitMQ's acknowledgement timeout runs
once, and the service goes on.

RabbitMQ closes a channel whose delivery stays unacknowledged longer than
``consumer_timeout`` and requeues the message. The service reconnects and
is handed the message again while the task still runs; that copy joins
the running task and is acknowledged when it ends.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from carrot.models import Task
from tests.faults.conftest import RabbitMQNode, poll, statuses

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

WORK = "tests.examples.faults.work"
HOLD = "tests.examples.faults.hold"
#: RabbitMQ's default acknowledgement timeout: 30 minutes.
DEFAULT_CONSUMER_TIMEOUT_MILLISECONDS = 1_800_000


@pytest.fixture
def short_consumer_timeout(rabbitmq_settings: RabbitMQNode) -> Iterator[int]:
    """A two-second acknowledgement timeout for channels opened in the test."""
    rabbitmq_settings.set_consumer_timeout(2000)
    yield 2000
    rabbitmq_settings.set_consumer_timeout(DEFAULT_CONSUMER_TIMEOUT_MILLISECONDS)


def test_a_task_longer_than_the_consumer_timeout_runs_once(
    rabbitmq_settings, short_consumer_timeout, services, ledger, settings, tmp_path
):
    release = tmp_path / "release"
    service = services.start(rabbitmq_settings.url)
    task = Task.objects.create(kallable=HOLD, args=[str(ledger), "long", str(release)])
    poll(lambda: ledger.count("start") == {"long": 1}, 30, "the task to start")

    poll(
        lambda: "PRECONDITION_FAILED" in service.log(),
        30,
        "RabbitMQ to time the delivery out",
    )
    poll(
        lambda: service.log().count(f"received task {task.pk} ") == 2,
        30,
        "the message to be redelivered",
    )
    release.touch()

    poll(lambda: statuses() == {"succeeded": 1}, 30, "the task to finish")
    assert ledger.count("start") == {"long": 1}
    task.refresh_from_db()
    assert task.attempts == 1
    queue = f"{settings.CARROT_QUEUE_PREFIX}.default"
    poll(
        lambda: rabbitmq_settings.queue_depths()[queue] == (0, 0),
        30,
        "the redelivered message to be acknowledged",
    )

    Task.objects.create(kallable=WORK, args=[str(ledger), "after"])
    poll(lambda: statuses() == {"succeeded": 2}, 30, "a later task to run")
    assert service.alive
    assert "unknown delivery tag" not in service.log()
