"""Workers and tasks as rows: defaults, constraints, and refused input."""

from __future__ import annotations

import datetime
import math
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, transaction

from carrot.core import InvalidTask
from carrot.models import DEFAULT_WORKER, Task, Worker
from tests.conftest import queue_size

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

ADD = "tests.examples.tasks.add"
NOON = datetime.datetime(2024, 1, 1, 12, tzinfo=datetime.timezone.utc)


# -- workers --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_migrating_creates_the_default_worker():
    call_command("migrate", "carrot", "zero", verbosity=0)
    call_command("migrate", "carrot", verbosity=0)

    worker = Worker.objects.get(name=DEFAULT_WORKER)
    assert worker.enabled
    assert worker.description == "Runs the tasks that name no worker."


def test_a_new_worker_runs_four_tasks_at_once_and_is_enabled():
    worker = Worker.objects.create(name="emails")

    worker.refresh_from_db()
    assert worker.concurrency == 4
    assert worker.enabled
    assert worker.description == ""


def test_a_worker_with_concurrency_zero_is_refused():
    with pytest.raises(ValueError, match="needs a concurrency of at least 1, not 0"):
        Worker.objects.create(name="idle", concurrency=0)
    assert not Worker.objects.filter(name="idle").exists()

    with pytest.raises(ValidationError) as caught:
        Worker(name="idle", concurrency=0).full_clean()
    assert "concurrency" in caught.value.message_dict


def test_the_database_refuses_concurrency_zero_written_around_the_model():
    Worker.objects.create(name="emails")

    with pytest.raises(IntegrityError), transaction.atomic():
        Worker.objects.filter(name="emails").update(concurrency=0)


@pytest.mark.parametrize("name", ["has space", "", "-leading-dash", "slash/ed"])
def test_a_worker_name_that_cannot_name_a_queue_is_refused(name):
    with pytest.raises(ValueError, match="is not valid: use up to 100 letters"):
        Worker.objects.create(name=name)
    assert not Worker.objects.filter(name=name).exists()

    with pytest.raises(ValidationError) as caught:
        Worker(name=name).full_clean()
    assert "name" in caught.value.message_dict


def test_a_task_that_names_no_worker_goes_to_the_default_worker():
    task = Task.objects.create(kallable=ADD, args=[1, 2])

    task.refresh_from_db()
    assert task.worker_id == DEFAULT_WORKER
    assert task.status == Task.Status.WAITING
    assert task.attempts == 0
    assert task.kwargs == {}
    assert task.result is None
    assert task.started_at is None
    assert task.finished_at is None


def test_the_migrations_match_the_models():
    output = StringIO()

    call_command("makemigrations", "carrot", check=True, dry_run=True, stdout=output)

    assert "No changes detected" in output.getvalue()


# -- validation -----------------------------------------------------------------


@pytest.fixture
def refused(django_capture_on_commit_callbacks):
    """Assert that creating a task fails, storing and publishing nothing."""

    def check(complaint: str, **fields: object) -> None:
        with (
            django_capture_on_commit_callbacks(execute=True) as publishing,
            pytest.raises(InvalidTask, match=complaint),
        ):
            Task.objects.create(**fields)
        assert publishing == []
        assert not Task.objects.exists()
        assert queue_size() == 0

    return check


@pytest.mark.parametrize(
    ("kallable", "complaint"),
    [
        ("tests.examples.nowhere.run", "does not exist"),
        ("carrot_no_such_package.run", "does not name an importable module"),
        ("tests.examples.tasks.Dog.not_callable", "cannot be called"),
        ("print", "is not a dotted path"),
    ],
)
def test_a_task_whose_kallable_cannot_run_is_refused(refused, kallable, complaint):
    refused(complaint, kallable=kallable)


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"args": "1, 2"}, "args must be a list, not str"),
        ({"args": {"a": 1}}, "args must be a list, not dict"),
        ({"kwargs": [1, 2]}, "kwargs must be an object"),
        ({"kwargs": {1: 2}}, "kwargs key 1 is not a valid keyword argument name"),
        ({"args": [{1, 2}]}, r"args\[0\] is a set, which is not JSON"),
        (
            {"kwargs": {"when": NOON}},
            r"kwargs\['when'\] is a datetime, which is not JSON",
        ),
        ({"args": [math.nan]}, r"args\[0\] is nan, which JSON cannot hold"),
        (
            {"args": [1, {"items": [2, {"at": {3}}]}]},
            r"args\[1\]\['items'\]\[1\]\['at'\] is a set",
        ),
    ],
)
def test_a_task_whose_arguments_are_not_json_is_refused(refused, fields, complaint):
    refused(complaint, kallable=ADD, **fields)


def test_a_task_over_the_payload_limit_is_refused(refused, settings):
    settings.CARROT_MAX_PAYLOAD_BYTES = 100

    refused(
        "bytes of JSON, over the limit of 100",
        kallable="tests.examples.tasks.record",
        args=["x" * 100],
    )


def test_a_task_outside_the_allowed_modules_is_refused(refused, settings):
    settings.CARROT_ALLOWED_MODULES = ["shop.tasks"]

    refused("add its module to CARROT_ALLOWED_MODULES", kallable=ADD)


def test_bulk_create_inserts_nothing_when_one_task_is_invalid(
    django_capture_on_commit_callbacks,
):
    batch = [
        Task(kallable=ADD, args=[1, 2]),
        Task(kallable=ADD, args=[{1}]),
        Task(kallable=ADD, args=[3, 4]),
    ]

    with (
        django_capture_on_commit_callbacks(execute=True) as publishing,
        pytest.raises(InvalidTask, match=r"args\[0\] is a set"),
    ):
        Task.objects.bulk_create(batch)

    assert publishing == []
    assert not Task.objects.exists()
    assert queue_size() == 0


def test_full_clean_reports_an_invalid_task_as_a_validation_error():
    with pytest.raises(ValidationError, match="cannot be called"):
        Task(kallable="tests.examples.tasks.Dog.not_callable").full_clean()
