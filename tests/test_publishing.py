"""A task is published once the transaction that stored it commits."""

from __future__ import annotations

import pytest
from django.db import transaction

from carrot.models import Task, Worker
from carrot.publishing import flush
from tests.conftest import get_message, queue_size

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

ADD = "tests.examples.tasks.add"


class Rollback(Exception):
    pass


def published(task: Task) -> bool:
    task.refresh_from_db()
    return task.published_at is not None


def test_a_task_created_in_a_transaction_is_published_only_after_commit():
    with transaction.atomic():
        task = Task.objects.create(kallable=ADD, args=[1, 2])
        assert flush(10)

        assert queue_size() == 0
        assert not published(task)

    assert flush(10)
    assert queue_size() == 1
    assert published(task)


def test_a_rolled_back_transaction_publishes_nothing():
    with pytest.raises(Rollback), transaction.atomic():
        Task.objects.create(kallable=ADD, args=[1, 2])
        raise Rollback

    assert flush(10)
    assert queue_size() == 0
    assert not Task.objects.exists()


def test_a_task_in_a_rolled_back_savepoint_is_not_published():
    with transaction.atomic():
        kept = Task.objects.create(kallable=ADD, args=[1, 2])
        with pytest.raises(Rollback), transaction.atomic():
            Task.objects.create(kallable=ADD, args=[3, 4])
            raise Rollback

    assert flush(10)
    message = get_message()
    assert message is not None
    assert message.decode() == {"carrot": 1, "task_id": str(kept.pk)}
    assert queue_size() == 0


def test_a_task_created_in_autocommit_is_published_at_once():
    task = Task.objects.create(kallable=ADD, args=[1, 2])

    assert flush(10)
    assert published(task)
    message = get_message()
    assert message is not None
    assert message.content_type == "application/json"
    assert message.properties["delivery_mode"] == 2
    assert message.decode() == {"carrot": 1, "task_id": str(task.pk)}


def test_bulk_create_publishes_every_created_task_to_its_workers_queue():
    Worker.objects.create(name="emails")
    tasks = [Task(kallable=ADD, args=[n, n]) for n in range(20)]
    tasks += [Task(kallable=ADD, args=[n, n], worker_id="emails") for n in range(5)]

    created = Task.objects.bulk_create(tasks)

    assert flush(10)
    assert queue_size("default") == 20
    assert queue_size("emails") == 5
    assert not Task.objects.filter(published_at__isnull=True).exists()
    received = [get_message("emails") for _ in range(5)]
    assert {message.decode()["task_id"] for message in received if message} == {
        str(task.pk) for task in created[20:]
    }


def test_saving_a_task_again_does_not_publish_it_again():
    task = Task.objects.create(kallable=ADD, args=[1, 2])
    assert flush(10)

    task.kwargs = {}
    task.save()

    assert flush(10)
    assert queue_size() == 1
