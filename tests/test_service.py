"""Running tasks: what the service runs, how many at once, and when it acks.

All on the in-memory transport; test_behaviour.py runs a selection of the
same on RabbitMQ and Redis.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import socket
import uuid

import pytest

from carrot.models import DEFAULT_WORKER, Task, Worker
from carrot.publishing import flush
from tests.conftest import publish_raw, queue_size, serve, wait_for
from tests.examples import tasks

pytestmark = pytest.mark.django_db(transaction=True)

#: The execution tests run on PostgreSQL too.
execution = pytest.mark.postgres

FINISHED = {Task.Status.SUCCEEDED, Task.Status.FAILED}
WAIT_AT_GATE = "tests.examples.tasks.wait_at_gate"
MEET = "tests.examples.tasks.meet"


@pytest.fixture(autouse=True)
def _reset_examples() -> None:
    tasks.reset()


def finished(*created: Task) -> list[Task]:
    """Wait until every task in ``created`` has an outcome; return the rows."""
    ids = [task.pk for task in created]

    def done() -> bool:
        return Task.objects.filter(pk__in=ids, status__in=FINISHED).count() == len(ids)

    wait_for(done, what=f"{len(ids)} task(s) to finish")
    rows = Task.objects.in_bulk(ids)
    return [rows[pk] for pk in ids]


def started(task: Task) -> bool:
    return Task.objects.get(pk=task.pk).status != Task.Status.WAITING


def set_worker(name: str = DEFAULT_WORKER, **fields: object) -> None:
    Worker.objects.filter(name=name).update(**fields)


# -- execution ------------------------------------------------------------------


@execution
def test_a_method_of_a_class_runs_with_the_rows_arguments(run_service):
    task = Task.objects.create(
        kallable="tests.examples.tasks.Dog.bark", kwargs={"times": 2, "loud": True}
    )

    run_service()

    [row] = finished(task)
    assert row.status == Task.Status.SUCCEEDED
    assert row.result == "WOOF WOOF"
    assert row.error == ""


@execution
def test_the_return_value_is_stored_as_json(run_service):
    task = Task.objects.create(kallable="tests.examples.tasks.add", args=[2, 3])

    run_service()

    [row] = finished(task)
    assert row.status == Task.Status.SUCCEEDED
    assert row.result == 5


@execution
def test_an_exception_fails_the_task_and_the_service_goes_on(run_service):
    set_worker(concurrency=1)
    failing = Task.objects.create(kallable="tests.examples.tasks.fail", args=["no"])
    after = Task.objects.create(kallable="tests.examples.tasks.add", args=[1, 1])

    run_service()

    failed, succeeded = finished(failing, after)
    assert failed.status == Task.Status.FAILED
    assert failed.error == "ValueError: no"
    assert "raise ValueError(message)" in failed.traceback
    assert failed.traceback.rstrip().endswith("ValueError: no")
    assert failed.result is None
    assert succeeded.status == Task.Status.SUCCEEDED


@execution
def test_a_return_value_that_is_not_json_fails_the_task(run_service):
    task = Task.objects.create(kallable="tests.examples.tasks.unserializable")

    run_service()

    [row] = finished(task)
    assert row.status == Task.Status.FAILED
    assert "the return value is a set, which is not JSON" in row.error
    assert row.result is None


@execution
def test_the_row_records_the_attempt_the_process_and_the_times(run_service):
    task = Task.objects.create(kallable="tests.examples.tasks.add", args=[2, 3])

    run_service()

    [row] = finished(task)
    assert row.attempts == 1
    assert row.host == socket.gethostname()
    assert row.pid == os.getpid()
    assert row.started_at is not None
    assert row.finished_at is not None
    assert row.created_at <= row.started_at <= row.finished_at


@execution
def test_the_service_runs_what_the_row_says_not_what_was_first_stored(run_service):
    task = Task.objects.create(kallable="tests.examples.tasks.add", args=[2, 3])
    assert flush(10)
    Task.objects.filter(pk=task.pk).update(
        kallable="tests.examples.tasks.Dog.bark", args=[], kwargs={"times": 3}
    )

    run_service()

    [row] = finished(task)
    assert row.result == "woof woof woof"


# -- concurrency ----------------------------------------------------------------


def test_a_worker_with_concurrency_one_runs_its_tasks_one_at_a_time(run_service):
    set_worker(concurrency=1)
    created = Task.objects.bulk_create(
        Task(kallable="tests.examples.tasks.slow", args=[0.05]) for _ in range(4)
    )

    run_service()

    finished(*created)
    assert tasks.peak_running == 1


def test_a_worker_with_concurrency_three_runs_three_tasks_at_once(run_service):
    set_worker(concurrency=3)
    group = uuid.uuid4().hex
    created = Task.objects.bulk_create(
        Task(kallable=MEET, args=[group, 3]) for _ in range(6)
    )

    run_service()

    rows = finished(*created)
    assert [row.result for row in rows] == [3] * 6
    assert tasks.met(group) == 3


def all_running_at_once(*gates: str) -> None:
    """Create a task per gate, one after another, each while the ones
    before it still run; fail unless they all start."""
    try:
        for gate in gates:
            Task.objects.create(kallable=WAIT_AT_GATE, args=[gate], worker_id="late")
            wait_for(lambda: tasks.gate_reached(gate), what=f"the task at {gate}")  # noqa: B023
    finally:
        for gate in gates:
            tasks.open_gate(gate)


def test_a_task_that_arrives_while_others_run_starts_if_a_slot_is_free(run_service):
    Worker.objects.create(name="late", concurrency=3)
    run_service()

    all_running_at_once(*(uuid.uuid4().hex for _ in range(3)))


def test_a_worker_added_disabled_and_enabled_while_the_service_runs_follows_each(
    run_service, refreshes
):
    run_service()

    # Added: its queue is consumed.
    Worker.objects.create(name="late", concurrency=1)
    late = Task.objects.create(
        kallable="tests.examples.tasks.add", args=[1, 2], worker_id="late"
    )
    assert finished(late)[0].result == 3

    # Disabled: its tasks wait in the queue.
    set_worker("late", enabled=False)
    refreshes.wait()
    waiting = Task.objects.create(
        kallable="tests.examples.tasks.add", args=[2, 2], worker_id="late"
    )
    assert flush(10)
    refreshes.wait()
    assert Task.objects.get(pk=waiting.pk).status == Task.Status.WAITING
    assert queue_size("late") == 1

    # Enabled again: the waiting task runs.
    set_worker("late", enabled=True)
    assert finished(waiting)[0].result == 4


def test_a_worker_resized_while_the_service_runs_runs_more_at_once(
    run_service, refreshes
):
    Worker.objects.create(name="late", concurrency=1)
    run_service()
    first = Task.objects.create(
        kallable="tests.examples.tasks.add", args=[1, 2], worker_id="late"
    )
    finished(first)

    set_worker("late", concurrency=3)
    refreshes.wait()

    all_running_at_once(*(uuid.uuid4().hex for _ in range(3)))


def test_a_disabled_workers_tasks_wait_until_it_is_enabled(run_service, refreshes):
    Worker.objects.create(name="paused", enabled=False)
    task = Task.objects.create(
        kallable="tests.examples.tasks.add", args=[1, 2], worker_id="paused"
    )

    run_service()
    refreshes.wait()

    assert Task.objects.get(pk=task.pk).status == Task.Status.WAITING
    assert queue_size("paused") == 1
    set_worker("paused", enabled=True)
    [row] = finished(task)
    assert row.result == 3


def test_a_service_given_worker_names_consumes_only_those(run_service, refreshes):
    Worker.objects.create(name="mine")
    Worker.objects.create(name="theirs")
    mine = Task.objects.create(
        kallable="tests.examples.tasks.add", args=[1, 2], worker_id="mine"
    )
    theirs = Task.objects.create(
        kallable="tests.examples.tasks.add", args=[3, 4], worker_id="theirs"
    )

    run_service("mine")

    finished(mine)
    refreshes.wait()
    assert Task.objects.get(pk=theirs.pk).status == Task.Status.WAITING
    assert queue_size("theirs") == 1
    assert queue_size(DEFAULT_WORKER) == 0


# -- acknowledgements -----------------------------------------------------------


def test_a_stopping_service_finishes_the_running_task_before_it_acks(acks):
    gate = uuid.uuid4().hex
    task = Task.objects.create(
        kallable="tests.examples.tasks.wait_at_gate", args=[gate]
    )

    with serve() as (service, thread):
        wait_for(lambda: tasks.gate_reached(gate), what="the task to start")
        service.stop()
        assert thread.is_alive(), "the service left its running task"
        tasks.open_gate(gate)
        thread.join(30)

    [row] = finished(task)
    assert row.status == Task.Status.SUCCEEDED
    assert row.result == gate
    assert acks == [(str(task.pk), Task.Status.SUCCEEDED)]
    assert queue_size() == 0


class _Trap:
    """Records a call if a service ever unpickles it."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (tasks.record, ("unpickled",))


def test_messages_that_are_not_carrot_tasks_do_not_stop_the_service(
    run_service, acks, caplog
):
    caplog.set_level(logging.INFO, logger="carrot")
    missing = str(uuid.uuid4())
    publish_raw(b"{not json", "application/json")
    publish_raw(b'{"hello": "world"}', "application/json")
    publish_raw(pickle.dumps(_Trap()), "application/x-python-serialize")
    publish_raw(
        json.dumps({"carrot": 1, "task_id": missing}).encode(), "application/json"
    )
    publish_raw(b'{"carrot": 1, "task_id": "not-a-uuid"}', "application/json")
    task = Task.objects.create(kallable="tests.examples.tasks.add", args=[2, 3])

    run_service()

    finished(task)
    wait_for(lambda: len(acks) == 3, what="the messages with a task id to be acked")
    assert sorted(acks, key=str) == sorted(
        [(missing, None), ("not-a-uuid", None), (str(task.pk), "succeeded")], key=str
    )
    assert queue_size() == 0
    assert tasks.calls == []
    rejected = [r for r in caplog.records if "cannot read" in r.getMessage()]
    assert len(rejected) == 3
    after = Task.objects.create(kallable="tests.examples.tasks.add", args=[1, 1])
    assert finished(after)[0].result == 2


def test_a_duplicate_message_for_a_running_task_does_not_run_it_twice(
    run_service, acks
):
    gate = uuid.uuid4().hex
    task = Task.objects.create(
        kallable="tests.examples.tasks.wait_at_gate", args=[gate]
    )
    run_service()
    wait_for(lambda: tasks.gate_reached(gate), what="the task to start")

    body = {"carrot": 1, "task_id": str(task.pk)}
    publish_raw(json.dumps(body).encode(), "application/json")
    wait_for(lambda: queue_size() == 0, what="the duplicate to be delivered")
    tasks.open_gate(gate)

    wait_for(lambda: len(acks) == 2, what="both messages to be acked")
    row = Task.objects.get(pk=task.pk)
    assert row.attempts == 1
    assert acks == [(str(task.pk), Task.Status.SUCCEEDED)] * 2
