"""At least once: a service killed while it runs tasks loses none of them.

A SIGKILLed service cannot acknowledge anything, so RabbitMQ redelivers
what it held; the rows it was running are handed back by the next
service once the dead one has been silent for the runner timeout.
"""

from __future__ import annotations

import os
import random
import time

import pytest

from carrot.models import Task
from tests.faults.conftest import poll, set_concurrency, statuses

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

WORK = "tests.examples.faults.work"
HOLD = "tests.examples.faults.hold"

#: The soak test: how many tasks, how long each takes, how many kills.
SOAK_TASKS = 2000
SOAK_MILLISECONDS = (10, 200)
SOAK_KILLS = 5
SOAK_CONCURRENCY = 10


def test_every_task_completes_after_its_service_is_killed_and_restarted(
    rabbitmq_settings, services, ledger, tmp_path
):
    set_concurrency(4)
    release = tmp_path / "release"
    Task.objects.bulk_create(
        Task(kallable=HOLD, args=[str(ledger), str(n), str(release)]) for n in range(12)
    )
    first = services.start(rabbitmq_settings.url)
    poll(lambda: len(ledger.count("start")) == 4, 30, "four tasks to start")

    first.kill()
    interrupted = set(ledger.count("start"))
    release.touch()
    services.start(rabbitmq_settings.url)

    poll(lambda: statuses() == {"succeeded": 12}, 60, "every task to succeed")
    assert ledger.count("end") == {str(n): 1 for n in range(12)}
    attempts = dict(Task.objects.values_list("args__1", "attempts"))
    assert {n for n, count in attempts.items() if count == 2} == interrupted
    assert {n for n, count in attempts.items() if count == 1} == (
        set(attempts) - interrupted
    )


def test_a_soak_of_2000_tasks_and_5_kills_loses_none(
    rabbitmq_settings, services, ledger
):
    seed = int(os.environ.get("CARROT_FAULTS_SEED", time.time()))
    rng = random.Random(seed)
    set_concurrency(SOAK_CONCURRENCY)
    Task.objects.bulk_create(
        Task(kallable=WORK, args=[str(ledger), str(n), rng.randint(*SOAK_MILLISECONDS)])
        for n in range(SOAK_TASKS)
    )
    kill_after = sorted(rng.sample(range(SOAK_TASKS // 10, SOAK_TASKS * 9 // 10), 5))
    began = time.monotonic()
    service = services.start(rabbitmq_settings.url)

    killed = set()
    for threshold in kill_after:
        poll(
            lambda t=threshold: len(ledger.count("end")) >= t,
            120,
            f"{threshold} tasks to run",
        )
        service.kill()
        killed.add(service.pid)
        service = services.start(rabbitmq_settings.url)
    poll(
        lambda: statuses()["succeeded"] == SOAK_TASKS,
        180,
        "every task to succeed",
        interval=0.5,
    )

    ends, starts = ledger.count("end"), ledger.count("start")
    lost = [str(n) for n in range(SOAK_TASKS) if ends[str(n)] == 0]
    duplicates = sorted(token for token, count in ends.items() if count > 1)
    restarted = sorted(token for token, count in starts.items() if count > 1)
    print(
        f"\nsoak (seed {seed}): {SOAK_TASKS} tasks, {len(killed)} kills after "
        f"{kill_after} runs, {time.monotonic() - began:.1f} s: "
        f"{len(lost)} lost, {statuses()['running']} running, "
        f"{len(duplicates)} run to the end twice {duplicates}, "
        f"{len(restarted)} started again after a kill"
    )
    assert lost == []
    assert statuses() == {"succeeded": SOAK_TASKS}
    for token in restarted:
        # Every run but the last was cut short by a kill before its outcome
        # was stored: it was in flight at that kill.
        assert set(ledger.pids("start", token)[:-1]) <= killed, token
    assert set(duplicates) <= set(restarted)
    assert len(restarted) <= SOAK_KILLS * SOAK_CONCURRENCY
