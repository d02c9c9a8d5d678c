"""``manage.py rundemo``: run a few shop tasks on carrot and show the rows.

The command works on a throwaway database: it migrates a SQLite file in a
fresh temporary directory, creates workers and tasks, runs the workers in
a background thread until every task has finished, and prints what each
task row recorded.

The broker is RabbitMQ on localhost when it answers, else kombu's
in-memory transport, which works here because this one process both
creates and runs the tasks. ``CARROT_BROKER_URL`` in the environment
overrides the choice.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.test import override_settings
from kombu import Connection
from kombu.utils.url import maybe_sanitize_url

from carrot.conf import get_broker
from carrot.core import InvalidTask
from carrot.models import Task, Worker
from carrot.utils import WorkerService

#: RabbitMQ as a plain install on this host runs it.
RABBITMQ_URL = "amqp://guest:guest@localhost:5672//"
#: Kept in this process's memory, so only this process can consume it.
MEMORY_URL = "memory://"
#: How long the tasks may take before the demo gives up on them.
DEADLINE_SECONDS = 60.0

#: The workers added beside ``default``: name, concurrency, description.
WORKERS = [
    ("invoices", 2, "Renders invoices, two at a time"),
    ("reports", 1, "Builds heavy reports one at a time"),
]

#: The tasks, in the order they are created: kallable, args, kwargs, worker.
TASKS: list[tuple[str, list[Any], dict[str, Any], str]] = [
    ("shop.tasks.add_vat", [10000], {}, "default"),
    ("shop.tasks.add_vat", [2500], {"rate_percent": 5}, "default"),
    ("shop.tasks.Invoice.render", [1001], {}, "invoices"),
    ("shop.tasks.Invoice.render", [1002], {"currency": "GBP"}, "invoices"),
    ("shop.tasks.charge_card", [1003], {}, "default"),
    ("shop.tasks.build_report", ["2024-05"], {}, "reports"),
    ("shop.tasks.build_report", ["2024-06"], {}, "reports"),
]

_FINISHED = [Task.Status.SUCCEEDED, Task.Status.FAILED]

#: The table's columns; "start" counts from the first task's creation.
_HEADER = [
    "kallable",
    "worker",
    "status",
    "result or error",
    "host/pid",
    "start",
    "took",
]
#: Longest result or error shown; the row keeps all of it.
_MAX_OUTCOME = 44


class Command(BaseCommand):
    help = "Run a few shop tasks on carrot workers and show what happened."

    def handle(self, *args: Any, **options: Any) -> None:
        _configure_logging(options["verbosity"])
        url, reason = _choose_broker()
        # A prefix per run: two demos on one RabbitMQ never take each
        # other's messages.
        prefix = f"{settings.CARROT_QUEUE_PREFIX}-{uuid.uuid4().hex[:8]}"

        with (
            tempfile.TemporaryDirectory(prefix="carrot-demo-") as directory,
            override_settings(
                CARROT_BROKER_URL=url,
                CARROT_QUEUE_PREFIX=prefix,
                CARROT_BROKER_TRANSPORT_OPTIONS=_transport_options(url),
            ),
        ):
            self._say("Broker:", maybe_sanitize_url(url))
            self._say("", reason)
            _use_database(Path(directory) / "demo.sqlite3")
            call_command("migrate", verbosity=0)
            self._create_workers()

            ids, unfinished = self._run()
            self._show(ids)
            _delete_queues(list(Worker.objects.values_list("name", flat=True)))
            connections.close_all()

        if unfinished:
            raise CommandError(
                f"{unfinished} task(s) did not finish within {DEADLINE_SECONDS:.0f} "
                "s; run the demo again with -v 2 to see carrot's log"
            )

    def _say(self, label: str, text: str) -> None:
        """Write ``text`` wrapped to 79 columns, under a label."""
        self.stdout.write(
            textwrap.fill(
                text,
                width=79,
                initial_indent=label.ljust(10),
                subsequent_indent=" " * 10,
                break_on_hyphens=False,
            )
        )

    def _create_workers(self) -> None:
        for name, concurrency, description in WORKERS:
            worker = Worker(name=name)
            worker.description = description
            worker.concurrency = concurrency
            worker.save()
        listed = ", ".join(
            f"{worker.name} (concurrency {worker.concurrency})"
            for worker in Worker.objects.all()
        )
        self._say("Workers:", listed)

    def _run(self) -> tuple[list[str], int]:
        """Run the workers in a thread while the tasks are created and run."""
        service = WorkerService()
        thread = threading.Thread(target=service.start, name="carrot-service")
        thread.start()
        try:
            if not service.service.ready.wait(DEADLINE_SECONDS):
                raise CommandError(
                    "the workers could not start consuming; run the demo "
                    "again with -v 2 to see why"
                )
            ids = self._create_tasks()
            self._say("Tasks:", f"created {len(ids)}; waiting until each has finished")
            self._refuse_a_bad_task()
            return ids, _wait_until_finished(ids)
        finally:
            service.stop()
            thread.join()

    def _create_tasks(self) -> list[str]:
        ids = []
        for kallable, args, kwargs, worker in TASKS:
            task = Task.objects.create(
                kallable=kallable, args=args, kwargs=kwargs, worker_id=worker
            )
            ids.append(str(task.pk))
        return ids

    def _refuse_a_bad_task(self) -> None:
        # A task that cannot run is refused where it is created, not later
        # in a worker.
        try:
            Task.objects.create(kallable="shop.tasks.refund", args=[1003])
        except InvalidTask as exc:
            self._say("Refused:", str(exc))
        else:
            raise CommandError("shop.tasks.refund does not exist, yet was accepted")

    def _show(self, ids: Sequence[str]) -> None:
        tasks = {str(pk): task for pk, task in Task.objects.in_bulk(ids).items()}
        origin = min(task.created_at for task in tasks.values())
        rows = [_row(tasks[task_id], origin) for task_id in ids]
        self.stdout.write("")
        for line in _table(_HEADER, rows):
            self.stdout.write(line)
        self.stdout.write("")

        counts = {
            status: sum(task.status == status for task in tasks.values())
            for status in Task.Status
        }
        self.stdout.write(
            ", ".join(f"{count} {status}" for status, count in counts.items() if count)
        )


def _row(task: Task, origin: datetime) -> list[str]:
    if task.status == Task.Status.FAILED:
        outcome = task.error
    elif task.status == Task.Status.SUCCEEDED:
        outcome = json.dumps(task.result)
    else:
        outcome = "-"
    if len(outcome) > _MAX_OUTCOME:
        outcome = outcome[: _MAX_OUTCOME - 3] + "..."
    return [
        task.kallable,
        task.worker_id,
        task.status,
        outcome,
        f"{task.host}/{task.pid}" if task.pid else "-",
        _seconds(origin, task.started_at, sign="+"),
        _seconds(task.started_at, task.finished_at),
    ]


def _seconds(start: datetime | None, end: datetime | None, sign: str = "") -> str:
    if start is None or end is None:
        return "-"
    return f"{sign}{(end - start).total_seconds():.2f} s"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    rule = ["-" * width for width in widths]
    return [_line(row, widths) for row in [header, rule, *rows]]


def _line(cells: list[str], widths: list[int]) -> str:
    padded = (cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
    return "  ".join(padded).rstrip()


def _choose_broker() -> tuple[str, str]:
    """Return the broker URL to use and why it was chosen."""
    forced = os.environ.get("CARROT_BROKER_URL")
    if forced:
        return forced, "named by CARROT_BROKER_URL in the environment"

    connection = Connection(RABBITMQ_URL, connect_timeout=2)
    try:
        connection.ensure_connection(max_retries=0)
    except Exception as exc:
        return MEMORY_URL, (
            f"RabbitMQ does not answer on localhost:5672 ({exc}), so the "
            "in-memory transport runs the tasks inside this process"
        )
    finally:
        connection.release()
    return RABBITMQ_URL, "RabbitMQ answers on localhost:5672"


def _transport_options(url: str) -> dict[str, float]:
    if url.startswith("memory:"):
        # kombu's in-memory transport polls its queues, once a second
        # unless told otherwise.
        return {"polling_interval": 0.05}
    return {}


def _use_database(path: Path) -> None:
    # Django's test runner points a connection at its test database the
    # same way: every connection, in every thread, reads this dict when
    # it opens.
    connections.close_all()
    settings.DATABASES["default"]["NAME"] = str(path)
    connections["default"].settings_dict["NAME"] = str(path)


def _wait_until_finished(ids: Sequence[str]) -> int:
    """Wait until every task has an outcome; return how many have none."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        left = Task.objects.filter(pk__in=ids).exclude(status__in=_FINISHED).count()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def _delete_queues(worker_names: Sequence[str]) -> None:
    """Remove the run's queues and exchange, so that none pile up."""
    broker = get_broker()
    with broker.connection() as connection:
        channel = connection.default_channel
        for name in worker_names:
            broker.queue(name)(channel).delete()
        broker.exchange(channel).delete()


def _configure_logging(verbosity: int) -> None:
    """Send carrot's log to stderr: warnings, or more with -v 2 and -v 3."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    if verbosity < 2:
        # The table shows a failed task's error, and its row keeps the
        # traceback; logging it too would read as if the demo broke.
        handler.addFilter(lambda record: getattr(record, "action", None) != "fail")
    logger = logging.getLogger("carrot")
    logger.addHandler(handler)
    logger.setLevel(
        {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO}.get(
            verbosity, logging.DEBUG
        )
    )
