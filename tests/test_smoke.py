import pytest

from carrot.models import Task
from carrot.publishing import flush
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_created_task_runs_on_every_broker(broker, run_service):
    task = Task.objects.create(kallable="tests.examples.tasks.add", args=[2, 3])

    run_service()

    wait_for(lambda: Task.objects.get(pk=task.pk).status == Task.Status.SUCCEEDED)
    assert flush(10)
    task.refresh_from_db()
    assert task.result == 5
    assert task.published_at is not None
