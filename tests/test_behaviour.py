"""The behaviour suite: the same promises on memory, RabbitMQ and Redis.

Each test takes the ``broker`` fixture, which runs it once per broker and,
under CI, fails when RabbitMQ or Redis does not answer.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import socket
import subprocess
import threading
import uuid

import pytest
from amqp.exceptions import PreconditionFailed
from django.db import transaction
from kombu import Exchange, Queue

from carrot.conf import get_broker
from carrot.models import Task, Worker
from carrot.publishing import flush
from carrot.store import DjangoTaskStore
from carrot.utils import WorkerService
from tests.conftest import (
    BROKERS,
    get_message,
    publish_raw,
    queue_size,
    require_server,
    serve,
    wait_for,
)
from tests.examples import tasks
from tests.test_service import WAIT_AT_GATE, finished, set_worker

pytestmark = pytest.mark.django_db(transaction=True)

ADD = "tests.examples.tasks.add"


@pytest.fixture(autouse=True)
def _reset_examples() -> None:
    tasks.reset()


def test_a_task_runs_and_its_outcome_is_stored(broker, run_service):
    set_worker(concurrency=1)
    failing = Task.objects.create(kallable="tests.examples.tasks.fail", args=["no"])
    task = Task.objects.create(kallable="tests.examples.tasks.Dog.bark", args=[2])

    run_service()

    failed, succeeded = finished(failing, task)
    assert failed.status == Task.Status.FAILED
    assert failed.error == "ValueError: no"
    assert succeeded.status == Task.Status.SUCCEEDED
    assert succeeded.result == "woof woof"
    assert succeeded.attempts == 1


def test_a_task_is_published_only_when_its_transaction_commits(broker):
    with transaction.atomic():
        Task.objects.create(kallable=ADD, args=[1, 2])
        assert flush(10)
        assert queue_size() == 0

    assert flush(10)
    assert queue_size() == 1

    with pytest.raises(ZeroDivisionError), transaction.atomic():
        Task.objects.create(kallable=ADD, args=[1, 2])
        1 / 0  # noqa: B018

    assert flush(10)
    assert queue_size() == 1


def test_a_worker_with_concurrency_one_runs_one_task_at_a_time(broker, run_service):
    set_worker(concurrency=1)
    created = Task.objects.bulk_create(
        Task(kallable="tests.examples.tasks.slow", args=[0.05]) for _ in range(4)
    )

    run_service()

    finished(*created)
    assert tasks.peak_running == 1


def test_a_disabled_workers_tasks_wait_until_it_is_enabled(
    broker, run_service, refreshes
):
    Worker.objects.create(name="paused", enabled=False)
    task = Task.objects.create(kallable=ADD, args=[1, 2], worker_id="paused")

    run_service()
    refreshes.wait()

    assert Task.objects.get(pk=task.pk).status == Task.Status.WAITING
    assert queue_size("paused") == 1
    set_worker("paused", enabled=True)
    assert finished(task)[0].result == 3


def test_a_stopping_service_finishes_its_task_and_leaves_no_message(broker, acks):
    gate = uuid.uuid4().hex
    task = Task.objects.create(kallable=WAIT_AT_GATE, args=[gate])

    with serve() as (service, thread):
        wait_for(lambda: tasks.gate_reached(gate), what="the task to start")
        service.stop()
        tasks.open_gate(gate)
        thread.join(30)

    # The service's channel is closed: a message it had not acknowledged
    # would be back in the queue.
    assert queue_size() == 0
    assert finished(task)[0].status == Task.Status.SUCCEEDED
    assert acks == [(str(task.pk), Task.Status.SUCCEEDED)]


def test_a_task_whose_outcome_cannot_be_stored_is_delivered_again(
    broker, run_service, acks, monkeypatch
):
    monkeypatch.setattr("carrot.core.service._STORE_ERROR_PAUSE_SECONDS", 0)
    original = DjangoTaskStore.record
    failures = []

    def record_after_one_failure(self, outcomes, claims, runner):
        if outcomes and not failures:
            failures.append(outcomes[0].task_id)
            raise ConnectionError("the database went away")
        return original(self, outcomes, claims, runner)

    monkeypatch.setattr(DjangoTaskStore, "record", record_after_one_failure)
    task = Task.objects.create(kallable=ADD, args=[2, 3])

    run_service()

    row = finished(task)[0]
    assert failures == [str(task.pk)]
    wait_for(lambda: acks, what="the acknowledgement")
    assert row.attempts == 2
    assert acks == [(str(task.pk), Task.Status.SUCCEEDED)]


class _Trap:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (tasks.record, ("unpickled",))


def test_messages_that_are_not_carrot_tasks_are_dropped(broker, run_service):
    publish_raw(b"{not json", "application/json")
    publish_raw(b'{"hello": "world"}', "application/json")
    publish_raw(pickle.dumps(_Trap()), "application/x-python-serialize")
    task = Task.objects.create(kallable=ADD, args=[2, 3])

    run_service()

    assert finished(task)[0].result == 5
    wait_for(lambda: queue_size() == 0, what="the queue to be empty")
    assert tasks.calls == []


def test_a_duplicate_message_for_a_finished_task_is_dropped(broker, run_service, acks):
    task = Task.objects.create(kallable="tests.examples.tasks.record", args=["once"])
    run_service()
    finished(task)

    body = {"carrot": 1, "task_id": str(task.pk)}
    publish_raw(json.dumps(body).encode(), "application/json")

    wait_for(lambda: len(acks) == 2, what="the duplicate to be acked")
    assert tasks.calls == [(("once",), {})]
    assert Task.objects.get(pk=task.pk).attempts == 1


# -- RabbitMQ -------------------------------------------------------------------


@pytest.fixture
def rabbitmq(request, settings) -> None:
    url, address = BROKERS["rabbitmq"]
    require_server("rabbitmq", address)
    request.getfixturevalue("_delete_queues")
    settings.CARROT_BROKER_URL = url


def test_on_rabbitmq_messages_are_persistent_json_in_durable_queues(rabbitmq):
    task = Task.objects.create(kallable=ADD, args=[1, 2])
    assert flush(10)

    message = get_message()
    assert message is not None
    assert message.content_type == "application/json"
    assert message.properties["delivery_mode"] == 2
    assert message.decode() == {"carrot": 1, "task_id": str(task.pk)}

    broker = get_broker()
    transient_queue = Queue(broker.queue("default").name, durable=False)
    transient_exchange = Exchange(broker.exchange.name, "direct", durable=False)
    for transient in (transient_queue, transient_exchange):
        with (
            broker.connection() as connection,
            pytest.raises(PreconditionFailed, match="inequivalent arg 'durable'"),
        ):
            transient.bind(connection.default_channel).declare()


def _unacknowledged(worker_name: str = "default") -> int:
    """Messages of the worker's queue delivered and not yet acknowledged.

    AMQP does not tell a client this; the node's own tool does.
    """
    name = get_broker().queue(worker_name).name
    command = ["rabbitmqctl", "list_queues", "--quiet", "--no-table-headers"]
    try:
        done = subprocess.run(
            [*command, "name", "messages_unacknowledged"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        message = f"rabbitmqctl cannot list the queues ({exc})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    counts = dict(line.split("\t") for line in done.stdout.splitlines())
    return int(counts[name])


def test_on_rabbitmq_a_running_task_holds_back_only_its_own_acknowledgement(
    rabbitmq,
):
    gate = uuid.uuid4().hex
    running = Task.objects.create(kallable=WAIT_AT_GATE, args=[gate])
    after = [Task.objects.create(kallable=ADD, args=[n, 1]) for n in range(12)]

    with serve():
        wait_for(lambda: tasks.gate_reached(gate), what="the first task to start")
        finished(*after)
        # The later tasks' messages are acknowledged, even though one
        # frame cannot cover them without covering the running task's.
        wait_for(
            lambda: _unacknowledged() == 1,
            what="only the running task's message to stay unacknowledged",
        )
        tasks.open_gate(gate)
        finished(running)
        wait_for(lambda: _unacknowledged() == 0, what="its acknowledgement")

    assert queue_size() == 0


def test_on_rabbitmq_an_outcome_and_a_stop_wake_the_service_at_once(
    rabbitmq, acks, monkeypatch
):
    # The service now waits a minute on the broker each time: only being
    # woken lets it acknowledge, and stop, within this test's waits.
    for wait in ("_BUSY_POLL_SECONDS", "_IDLE_POLL_SECONDS"):
        monkeypatch.setattr(f"carrot.core.service.{wait}", 60)

    with serve():
        task = Task.objects.create(kallable=ADD, args=[2, 3])
        finished(task)
        wait_for(lambda: acks, what="the acknowledgement")

    assert acks == [(str(task.pk), Task.Status.SUCCEEDED)]


# -- the password ---------------------------------------------------------------

#: A password that would be noticed in any log line.
PASSWORD = "Carrot-Secret-7f3a9c"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


#: Where no broker answers, by scheme; ``{port}`` is a closed port.
DEAD_URLS = {
    "amqp": f"amqp://carrot:{PASSWORD}@127.0.0.1:{{port}}//",
    "redis": f"redis://:{PASSWORD}@127.0.0.1:{{port}}/0",
}


class _Background:
    """A `WorkerService` in a thread that keeps what it raised."""

    def __init__(self) -> None:
        self.service = WorkerService()
        self.raised: list[BaseException] = []
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        try:
            self.service.start()
        except BaseException as exc:  # handed to the test
            self.raised.append(exc)

    def __enter__(self) -> _Background:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.service.stop()
        self.thread.join(30)
        assert not self.thread.is_alive()


@pytest.mark.parametrize("scheme", list(DEAD_URLS))
def test_the_broker_password_never_reaches_the_logs(settings, caplog, scheme):
    port = _closed_port()
    settings.CARROT_BROKER_URL = DEAD_URLS[scheme].format(port=port)
    settings.CARROT_PUBLISH_TIMEOUT_SECONDS = 0.3
    caplog.set_level(logging.DEBUG)

    task = Task.objects.create(kallable=ADD, args=[1, 2])
    assert flush(10)
    with _Background() as background:
        wait_for(
            lambda: "cannot reach the broker" in caplog.text,
            what="the service to report the broker",
        )

    assert Task.objects.get(pk=task.pk).published_at is None
    assert f"127.0.0.1:{port}" in caplog.text
    assert PASSWORD not in caplog.text
    for record in caplog.records:
        assert PASSWORD not in record.getMessage()
        assert PASSWORD not in (record.exc_text or "")
    assert all(PASSWORD not in str(exc) for exc in background.raised)


@pytest.mark.parametrize("scheme", list(DEAD_URLS))
def test_a_service_stopped_while_the_broker_is_down_returns_quietly(
    settings, caplog, scheme
):
    settings.CARROT_BROKER_URL = DEAD_URLS[scheme].format(port=_closed_port())

    with _Background() as background:
        wait_for(
            lambda: "cannot reach the broker" in caplog.text,
            what="the service to report the broker",
        )

    assert background.raised == []
