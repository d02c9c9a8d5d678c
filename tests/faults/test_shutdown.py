"""Shutdown: the first SIGTERM finishes running tasks and returns the rest
unrun; a second one, or the grace deadline, stops at once, and what was
interrupted runs again."""

from __future__ import annotations

import signal

import pytest

from carrot.models import Task
from tests.faults.conftest import (
    poll,
    set_concurrency,
    statuses,
    wait_past_runner_timeout,
)

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

WORK = "tests.examples.faults.work"
HOLD = "tests.examples.faults.hold"
#: What the service logs when the first SIGTERM arrives.
FINISHING = "finishing running tasks"


def create_held(ledger, release, count: int) -> None:
    Task.objects.bulk_create(
        Task(kallable=HOLD, args=[str(ledger), f"held-{n}", str(release)])
        for n in range(count)
    )


def test_a_task_arriving_while_another_runs_starts_beside_it(
    rabbitmq_settings, services, ledger, tmp_path
):
    # The tests below hold two tasks at once: they need this to be true.
    set_concurrency(2)
    release = tmp_path / "release"
    services.start(rabbitmq_settings.url)
    Task.objects.create(kallable=HOLD, args=[str(ledger), "first", str(release)])
    poll(lambda: ledger.count("start") == {"first": 1}, 30, "the first to start")

    Task.objects.create(kallable=HOLD, args=[str(ledger), "second", str(release)])

    poll(lambda: len(ledger.count("start")) == 2, 30, "the second to start")
    release.touch()
    poll(lambda: statuses() == {"succeeded": 2}, 30, "both to finish")


def test_sigterm_finishes_running_tasks_and_returns_the_rest_unrun(
    rabbitmq_settings, services, ledger, settings, tmp_path
):
    set_concurrency(2)
    release = tmp_path / "release"
    create_held(ledger, release, 2)
    Task.objects.bulk_create(
        Task(kallable=WORK, args=[str(ledger), f"later-{n}"]) for n in range(4)
    )
    service = services.start(rabbitmq_settings.url)
    poll(lambda: len(ledger.count("start")) == 2, 30, "the held tasks to start")
    # Two running and two more prefetched: a prefetch of 2 x concurrency.
    poll(lambda: service.log().count("received task") == 4, 30, "a full prefetch")

    service.send(signal.SIGTERM)
    poll(lambda: FINISHING in service.log(), 30, "the service to stop consuming")
    release.touch()

    assert service.wait_exit() == 0
    assert ledger.count("end") == {"held-0": 1, "held-1": 1}
    assert statuses() == {"succeeded": 2, "waiting": 4}
    queue = f"{settings.CARROT_QUEUE_PREFIX}.default"
    assert rabbitmq_settings.queue_depths()[queue] == (4, 0)

    services.start(rabbitmq_settings.url)
    poll(lambda: statuses() == {"succeeded": 6}, 30, "the rest to run")
    assert set(ledger.count("start").values()) == {1}


def test_a_second_sigterm_stops_at_once_and_interrupted_tasks_run_again(
    rabbitmq_settings, services, ledger, tmp_path
):
    release = tmp_path / "release"
    create_held(ledger, release, 2)
    service = services.start(rabbitmq_settings.url)
    poll(lambda: len(ledger.count("start")) == 2, 30, "the held tasks to start")

    service.send(signal.SIGTERM)
    poll(lambda: FINISHING in service.log(), 30, "the first SIGTERM to arrive")
    service.send(signal.SIGTERM)

    assert service.wait_exit() == 1
    assert ledger.count("end") == {}
    release.touch()
    services.start(rabbitmq_settings.url)
    poll(lambda: statuses() == {"succeeded": 2}, 30, "the interrupted tasks to run")
    assert ledger.count("end") == {"held-0": 1, "held-1": 1}
    assert set(Task.objects.values_list("attempts", flat=True)) == {2}


def test_the_shutdown_grace_deadline_stops_at_once(
    rabbitmq_settings, services, ledger, tmp_path
):
    release = tmp_path / "release"
    create_held(ledger, release, 2)
    service = services.start(rabbitmq_settings.url, CARROT_SHUTDOWN_GRACE_SECONDS=0.5)
    poll(lambda: len(ledger.count("start")) == 2, 30, "the held tasks to start")

    service.send(signal.SIGTERM)

    assert service.wait_exit() == 1
    assert "shutdown grace of 0.5 s is over" in service.log()
    assert ledger.count("end") == {}
    release.touch()
    services.start(rabbitmq_settings.url)
    poll(lambda: statuses() == {"succeeded": 2}, 30, "the interrupted tasks to run")
    assert ledger.count("end") == {"held-0": 1, "held-1": 1}


def test_a_service_finishing_its_tasks_is_not_taken_for_dead(
    rabbitmq_settings, services, ledger, tmp_path
):
    set_concurrency(1)
    release = tmp_path / "release"
    create_held(ledger, release, 1)
    stopping = services.start(rabbitmq_settings.url)
    poll(lambda: ledger.count("start") == {"held-0": 1}, 30, "the task to start")
    services.start(rabbitmq_settings.url)

    stopping.send(signal.SIGTERM)
    poll(lambda: FINISHING in stopping.log(), 30, "the service to stop consuming")
    # Long enough for the other service to take a silent one for dead.
    wait_past_runner_timeout(ledger)
    release.touch()

    assert stopping.wait_exit() == 0
    poll(lambda: statuses() == {"succeeded": 1}, 30, "the task to finish")
    assert ledger.count("start") == {"held-0": 1}
