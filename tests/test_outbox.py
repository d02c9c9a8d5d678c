"""The task row is the outbox: what never reached the broker is not lost."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from carrot.conf import get_broker
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


def test_a_waiting_task_whose_message_was_lost_is_published_again(
    settings, run_service
):
    settings.CARROT_REPUBLISH_SECONDS = 60
    task = Task.objects.create(kallable="tests.examples.tasks.add", args=[3, 4])
    assert flush(10)
    # As if the broker had lost the message it confirmed an hour ago.
    Task.objects.filter(pk=task.pk).update(
        published_at=timezone.now() - timedelta(hours=1)
    )
    _purge_default_queue()

    run_service()

    wait_for(lambda: Task.objects.get(pk=task.pk).status == "succeeded")
    task.refresh_from_db()
    assert task.result == 7
    assert task.attempts == 1


def test_no_task_is_published_again_when_republishing_is_off(settings, run_service):
    settings.CARROT_REPUBLISH_SECONDS = None
    settings.CARROT_OUTBOX_GRACE_SECONDS = 0
    lost = Task.objects.create(kallable="tests.examples.tasks.add", args=[3, 4])
    # Never published: the same sweep publishes it, so once it has run the
    # sweep has seen the lost task too.
    canary = Task.objects.create(kallable="tests.examples.tasks.add", args=[1, 1])
    assert flush(10)
    Task.objects.filter(pk=lost.pk).update(
        published_at=timezone.now() - timedelta(days=1)
    )
    Task.objects.filter(pk=canary.pk).update(published_at=None)
    _purge_default_queue(count=2)

    run_service()

    wait_for(lambda: Task.objects.get(pk=canary.pk).status == "succeeded")
    lost.refresh_from_db()
    assert lost.status == "waiting"
    assert lost.published_at < timezone.now() - timedelta(hours=23)


def _purge_default_queue(count=1):
    broker = get_broker()
    with broker.connection() as connection:
        assert broker.queue("default")(connection.channel()).purge() == count
