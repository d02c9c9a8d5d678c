"""The task row is the outbox: a task whose message never reached the
broker is published by a running service once the broker answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from carrot.models import Task
from carrot.publishing import flush
from tests.conftest import wait_for
from tests.faults.conftest import ROOT, statuses

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

WORK = "tests.examples.faults.work"

#: A process that commits a task and dies before anything publishes it:
#: the callback that kills it runs first, since callbacks run in the order
#: they were registered.
CREATE_AND_DIE = textwrap.dedent(
    """
    import os, signal, sys
    from tests.faults.service_main import configure
    configure()
    from django.db import transaction
    from carrot.models import Task
    with transaction.atomic():
        transaction.on_commit(lambda: os.kill(os.getpid(), signal.SIGKILL))
        Task.objects.create(kallable=sys.argv[1], args=sys.argv[2:])
    """
)


def test_tasks_created_while_rabbitmq_is_down_all_run_once_it_is_back(
    rabbitmq_settings, services, ledger, settings
):
    settings.CARROT_PUBLISH_TIMEOUT_SECONDS = 0.5
    rabbitmq = rabbitmq_settings
    service = services.start(rabbitmq.url)

    rabbitmq.stop_app()
    try:
        slowest = 0.0
        for n in range(100):
            began = time.monotonic()
            Task.objects.create(kallable=WORK, args=[str(ledger), str(n)])
            slowest = max(slowest, time.monotonic() - began)
        assert flush(30), "publishing did not give up while the broker was down"
        unpublished = Task.objects.filter(published_at__isnull=True).count()
    finally:
        rabbitmq.start_app()

    # Bounded by the publish timeout, whatever the broker does.
    assert slowest < settings.CARROT_PUBLISH_TIMEOUT_SECONDS + 1.0
    assert unpublished == 100
    wait_for(lambda: statuses() == {"succeeded": 100}, 60, "all 100 tasks to run")
    assert ledger.count("end") == {str(n): 1 for n in range(100)}
    assert "from the outbox" in service.log()


def test_a_task_whose_creator_died_before_publishing_it_runs(
    rabbitmq_settings, services, ledger, database
):
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "CARROT_FAULTS_DATABASE": database,
        "CARROT_FAULTS_SETTINGS": json.dumps(
            {"CARROT_BROKER_URL": rabbitmq_settings.url}
        ),
    }
    creator = subprocess.run(
        [sys.executable, "-c", CREATE_AND_DIE, WORK, str(ledger), "orphan"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        timeout=60,
    )
    assert creator.returncode == -9, creator.stderr.decode()
    task = Task.objects.get()
    assert task.published_at is None

    service = services.start(rabbitmq_settings.url)

    wait_for(lambda: statuses() == {"succeeded": 1}, 30, "the task to run")
    assert ledger.count("end") == {"orphan": 1}
    assert "published 1 task(s) from the outbox" in service.log()


def test_tasks_created_together_are_published_once_and_marked(
    rabbitmq_settings, ledger, settings
):
    Task.objects.bulk_create(
        Task(kallable=WORK, args=[str(ledger), str(n)]) for n in range(50)
    )

    assert flush(30)
    # Marked published: the broker confirmed every message in time, so the
    # outbox sweep will not publish them a second time.
    assert not Task.objects.filter(published_at__isnull=True).exists()
    queue = f"{settings.CARROT_QUEUE_PREFIX}.default"
    assert rabbitmq_settings.queue_depths()[queue] == (50, 0)
