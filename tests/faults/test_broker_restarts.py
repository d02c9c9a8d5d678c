"""Broker restarts: the service reconnects by itself, resumes within
seconds, and loses and repeats nothing.

Acknowledgements for messages of a closed connection are skipped (the
broker redelivers them, and a finished task's copy is dropped), so a
restart never makes the service acknowledge an unknown delivery tag.
"""

from __future__ import annotations

import random

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
RESTARTS = 3


def run_through_restarts(
    restart, url, services, ledger, tasks: int, reconnects: int = RESTARTS
) -> None:
    """Run ``tasks`` tasks, calling ``restart`` three times on the way.

    The service must log at least ``reconnects`` lost connections.
    """
    # About ten seconds of work for a thousand tasks, so that each restart
    # finds tasks running and tasks still to run.
    rng = random.Random(tasks)
    set_concurrency(4)
    Task.objects.bulk_create(
        Task(kallable=WORK, args=[str(ledger), str(n), rng.randint(20, 60)])
        for n in range(tasks)
    )
    service = services.start(url)

    for number in range(1, RESTARTS + 1):
        threshold = tasks * number // (RESTARTS + 1)
        poll(lambda t=threshold: len(ledger.count("end")) >= t, 60, f"{threshold} runs")
        restart()
        resumed_from = len(ledger.count("end"))
        poll(
            lambda n=resumed_from: n == tasks or len(ledger.count("end")) > n,
            30,
            "the service to resume after the restart",
        )

    try:
        poll(lambda: statuses() == {"succeeded": tasks}, 120, "every task to run")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {statuses()}\n{service.log()[-4000:]}") from None
    assert ledger.count("start") == {str(n): 1 for n in range(tasks)}
    assert service.alive
    log = service.log()
    assert log.count("lost the broker connection") >= reconnects
    assert "unknown delivery tag" not in log
    assert " ERROR " not in log


def test_rabbitmq_restarted_three_times_loses_and_repeats_nothing(
    rabbitmq_settings, services, ledger
):
    def restart() -> None:
        rabbitmq_settings.stop_app()
        rabbitmq_settings.start_app()

    run_through_restarts(restart, rabbitmq_settings.url, services, ledger, 1000)


def test_redis_restarted_three_times_loses_and_repeats_nothing(
    redis_server, services, ledger, settings
):
    # kombu sets aside a message it takes from Redis until it is
    # acknowledged, and puts it back after the visibility timeout. A restart
    # can leave there a message that no service received: it runs once that
    # timeout has passed, shortened here from an hour.
    options = {"visibility_timeout": 5}
    settings.CARROT_BROKER_URL = redis_server.url
    settings.CARROT_BROKER_TRANSPORT_OPTIONS = options
    services.defaults["CARROT_BROKER_TRANSPORT_OPTIONS"] = options
    # kombu pops a message from Redis, then records it as unacknowledged in
    # a second command: a restart between the two loses the message. Its
    # row stays waiting, and the republish sweep publishes it again.
    services.defaults["CARROT_REPUBLISH_SECONDS"] = 5

    # redis-py retries a failed command on a new connection by itself, so a
    # restart between two polls can pass without the service noticing.
    run_through_restarts(
        redis_server.restart, redis_server.url, services, ledger, 300, reconnects=1
    )


def test_a_service_cut_off_from_the_broker_is_not_taken_for_dead(
    rabbitmq_settings, redis_server, services, ledger, tmp_path
):
    # One service loses its broker while a second one, which reaches a
    # broker (here another one), keeps doing the housekeeping.
    release = tmp_path / "release"
    cut_off = services.start(rabbitmq_settings.url)
    Task.objects.create(kallable=HOLD, args=[str(ledger), "held", str(release)])
    poll(lambda: ledger.count("start") == {"held": 1}, 30, "the task to start")
    services.start(redis_server.url)

    rabbitmq_settings.stop_app()
    try:
        poll(lambda: "cannot reach the broker" in cut_off.log(), 30, "the cut")
        wait_past_runner_timeout(ledger)
    finally:
        rabbitmq_settings.start_app()
    release.touch()

    poll(lambda: statuses() == {"succeeded": 1}, 30, "the task to finish")
    assert ledger.count("start") == {"held": 1}
