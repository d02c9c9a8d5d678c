"""Security: only JSON is decoded, rows and not messages decide what runs,
kallables can be limited to some modules, and the broker password shows
nowhere.

Every service these tests start has its log searched for the password
when it is cleaned up (see `Services.close`); the test at the end makes
every kind of broker error happen on purpose and searches for it too.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import traceback

import pytest
from django.core import checks

from carrot.conf import get_broker
from carrot.core import InvalidTask, PublishError, TaskMessage
from carrot.core.publisher import Publisher
from carrot.models import Task
from tests.conftest import publish_raw
from tests.faults.conftest import BROKER_PASSWORD, poll, statuses

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

WORK = "tests.examples.faults.work"
ONLY_FAULTS = ["tests.examples.faults"]


class MakeDirectory:
    """Unpickling this creates a directory: proof that pickle was decoded."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (self.path,)


def forged(task_id: str, **extra: object) -> bytes:
    return json.dumps({"carrot": 1, "task_id": task_id, **extra}).encode()


def test_a_pickle_body_is_refused_even_with_insecure_serializers_enabled(
    rabbitmq_settings, services, ledger, tmp_path
):
    marker = tmp_path / "unpickled"
    service = services.start(rabbitmq_settings.url, env={"CARROT_FAULTS_INSECURE": "1"})
    assert "enabled kombu's insecure serializers" in service.log()
    body = pickle.dumps(MakeDirectory(str(marker)))

    publish_raw(body, "application/x-python-serialize")
    publish_raw(body, "application/json")
    Task.objects.create(kallable=WORK, args=[str(ledger), "after"])

    poll(lambda: statuses() == {"succeeded": 1}, 30, "a later task to run")
    poll(
        lambda: service.log().count("rejected a message") == 2,
        30,
        "both pickles to be rejected",
    )
    assert not marker.exists()


def test_a_forged_message_runs_only_what_the_row_says(
    rabbitmq_settings, services, ledger, tmp_path
):
    marker = tmp_path / "forged"
    task = Task.objects.create(kallable=WORK, args=[str(ledger), "row"])
    poll(
        lambda: Task.objects.filter(published_at__isnull=False).exists(),
        30,
        "a publish",
    )
    attack = {"kallable": "os.mkdir", "args": [str(marker)], "kwargs": {}}
    service = services.start(rabbitmq_settings.url)

    publish_raw(forged(str(task.pk), **attack), "application/json")
    missing = "00000000-0000-4000-8000-000000000000"
    publish_raw(forged(missing, **attack), "application/json")

    poll(
        lambda: f"task {missing} has no row" in service.log(),
        30,
        "the forged message for no row to be dropped",
    )
    poll(lambda: statuses() == {"succeeded": 1}, 30, "the row's task to run")
    poll(
        lambda: service.log().count(f"received task {task.pk} ") == 2,
        30,
        "the forged copy to be handled",
    )
    assert ledger.count("start") == {"row": 1}
    assert not marker.exists()


def test_allowed_modules_are_enforced_when_a_task_is_created(settings, tmp_path):
    settings.CARROT_ALLOWED_MODULES = ONLY_FAULTS

    with pytest.raises(InvalidTask, match="outside the allowed modules"):
        Task.objects.create(kallable="os.mkdir", args=[str(tmp_path / "created")])

    assert not Task.objects.exists()
    assert not (tmp_path / "created").exists()


def test_allowed_modules_are_enforced_when_a_task_runs(
    rabbitmq_settings, services, tmp_path
):
    marker = tmp_path / "edited"
    task = Task.objects.create(kallable=WORK, args=["unused", "edited"])
    # As an attacker who can write to the table, but not to the settings.
    Task.objects.filter(pk=task.pk).update(kallable="os.mkdir", args=[str(marker)])

    services.start(rabbitmq_settings.url, CARROT_ALLOWED_MODULES=ONLY_FAULTS)

    poll(lambda: statuses() == {"failed": 1}, 30, "the task to fail")
    task.refresh_from_db()
    assert "outside the allowed modules" in task.error
    assert not marker.exists()


def test_the_broker_password_shows_in_no_log_error_or_page(
    rabbitmq_settings, services, ledger, settings, caplog, admin_client
):
    caplog.set_level(logging.DEBUG)
    settings.CARROT_PUBLISH_TIMEOUT_SECONDS = 0.5
    service = services.start(rabbitmq_settings.url)
    rabbitmq_settings.stop_app()
    try:
        task = Task.objects.create(kallable=WORK, args=[str(ledger), "down"])
        with pytest.raises(PublishError) as raised:
            Publisher(get_broker()).publish([(TaskMessage(str(task.pk)), "default")])
        poll(lambda: "cannot reach the broker" in service.log(), 30, "an error")
    finally:
        rabbitmq_settings.start_app()
    poll(lambda: statuses() == {"succeeded": 1}, 60, "the task to run")

    settings.CARROT_BROKER_URL = f"nosuch://user:{BROKER_PASSWORD}@localhost//"
    messages = [str(message) for message in checks.run_checks()]
    responses = [
        admin_client.get(url)
        for url in (
            "/admin/",
            "/admin/carrot/task/",
            f"/admin/carrot/task/{task.pk}/change/",
            "/admin/carrot/worker/",
        )
    ]
    pages = [response.content.decode() for response in responses]

    error = "".join(traceback.format_exception(raised.value))
    # Each place was reached, and names the broker with the password masked.
    assert [response.status_code for response in responses] == [200] * 4
    assert "carrot.E" in "".join(messages)
    assert "carrot-faults:**@127.0.0.1" in service.log()
    assert "stored but not published" in caplog.text
    for text in [service.log(), caplog.text, error, *messages, *pages]:
        assert BROKER_PASSWORD not in text
