"""The task row is the outbox: what never reached the broker is not lost."""

import uuid

import pytest
from django.utils import timezone

from carrot.models import Task
from carrot.publishing import flush
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

#: A broker address where nothing listens: every publish fails at once.
DEAD_BROKER = "amqp://guest:guest@127.0.0.1:1//"


def test_a_task_created_while_the_broker_is_down_is_stored_unpublished(settings):
    settings.CARROT_BROKER_URL = DEAD_BROKER
    settings.CARROT_PUBLISH_TIMEOUT_SECONDS = 0.3

    task = Task.objects.create(kallable="tests.examples.tasks.add", args=[1, 1])

    assert flush(10), "the relay did not give up within its timeout"
    task.refresh_from_db()
    assert task.status == Task.Status.WAITING
    assert task.published_at is None


def test_the_service_publishes_and_runs_what_never_reached_the_broker(
    settings, run_service
):
    settings.CARROT_BROKER_URL = DEAD_BROKER
    settings.CARROT_PUBLISH_TIMEOUT_SECONDS = 0.3
    tasks = [
        Task.objects.create(kallable="tests.examples.tasks.add", args=[n, n])
        for n in range(5)
    ]
    assert flush(10)
    settings.CARROT_BROKER_URL = "memory://localhost//"
    settings.CARROT_OUTBOX_GRACE_SECONDS = 0

    run_service()

    wait_for(lambda: Task.objects.filter(status="succeeded").count() == 5)
    results = {t.pk: t.result for t in Task.objects.all()}
    assert results == {t.pk: 2 * n for n, t in enumerate(tasks)}
    assert not Task.objects.filter(published_at__isnull=True).exists()


def test_a_task_of_a_service_that_died_runs_again(settings, run_service):
    settings.CARROT_OUTBOX_GRACE_SECONDS = 0
    task = Task.objects.create(kallable="tests.examples.tasks.add", args=[2, 2])
    # As a service that was killed leaves it: running, on a runner that no
    # longer answers, its message acknowledged by nobody and lost with it.
    Task.objects.filter(pk=task.pk).update(
        status="running", attempts=1, runner=uuid.uuid4(), started_at=timezone.now()
    )

    run_service()

    wait_for(lambda: Task.objects.get(pk=task.pk).status == "succeeded")
    task.refresh_from_db()
    assert task.attempts == 2
    assert task.result == 4


def test_a_task_whose_service_died_at_every_attempt_is_failed(settings, run_service):
    settings.CARROT_MAX_ATTEMPTS = 3
    task = Task.objects.create(kallable="tests.examples.tasks.add", args=[2, 2])
    Task.objects.filter(pk=task.pk).update(
        status="running", attempts=3, runner=uuid.uuid4()
    )

    run_service()

    wait_for(lambda: Task.objects.get(pk=task.pk).status == "failed")
    task.refresh_from_db()
    assert task.error.startswith("WorkerLost")
    assert task.attempts == 3
