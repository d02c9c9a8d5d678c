"""What the README promises, on a fresh ``django-admin startproject``.

Every step runs in a subprocess, as a user would type it, and tasks go
through the real RabbitMQ: a task created in one process and run in
another needs a broker both can reach.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Connection, Exchange, Queue

from carrot.core import CarrotError, daemon
from tests.conftest import BROKERS, require_server, wait_for

pytestmark = pytest.mark.acceptance

#: The scripts installed beside this interpreter.
BIN = Path(sys.executable).parent
#: Workers the tests create, besides ``default``.
WORKERS = ("fileprocesser", "sleepy")

#: The kallable module a user adds next to manage.py.
ANIMALS = textwrap.dedent(
    """
    import time


    class Dog:
        @staticmethod
        def bark(times=1, loud=False):
            return " ".join(["WOOF" if loud else "woof"] * times)


    def process_file(path, bitrate):
        time.sleep(0.2)
        return {"path": path, "bitrate": bitrate}


    def nap(seconds):
        time.sleep(seconds)
    """
)


class Site:
    """A project made with ``django-admin startproject mysite``."""

    def __init__(self, root: Path, prefix: str) -> None:
        self.root = root
        self.prefix = prefix
        #: Every long-running process started, to kill after a failure.
        self.processes: list[subprocess.Popen[bytes]] = []
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DJANGO_SETTINGS_MODULE", "CARROT_BROKER_URL")
        }

    def run(self, *command: str | Path) -> subprocess.CompletedProcess[str]:
        """Run ``command`` in the project directory; fail if it fails."""
        done = subprocess.run(
            command,
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"{command} failed:\n{done.stderr}"
        return done

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(sys.executable, "manage.py", *args)

    def shell(self, code: str) -> None:
        self.manage("shell", "-c", textwrap.dedent(code))

    def start(self, *command: str | Path, log: Path) -> subprocess.Popen[bytes]:
        """Start a long-running ``command`` with its output in ``log``."""
        with log.open("wb") as output:
            process = subprocess.Popen(
                command,
                cwd=self.root,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        return process

    def kill_leftovers(self, *pidfiles: Path) -> None:
        for process in self.processes:
            process.kill()
            process.wait()
        for pidfile in pidfiles:
            with contextlib.suppress(CarrotError):
                daemon.stop(pidfile, timeout_seconds=30, immediate=True)

    def tasks(self) -> list[sqlite3.Row]:
        with sqlite3.connect(self.root / "db.sqlite3") as database:
            database.row_factory = sqlite3.Row
            return database.execute(
                "SELECT * FROM carrot_task ORDER BY created_at"
            ).fetchall()

    def wait_until_succeeded(self, count: int, log: Path) -> list[sqlite3.Row]:
        """Wait until ``count`` tasks exist and every one has succeeded.

        On a timeout, the rows and the worker's log explain what happened.
        """

        def succeeded() -> bool:
            statuses = [task["status"] for task in self.tasks()]
            return len(statuses) == count and set(statuses) == {"succeeded"}

        try:
            wait_for(succeeded, timeout=60, what=f"{count} succeeded tasks")
        except AssertionError as exc:
            rows = [dict(task) for task in self.tasks()]
            raise AssertionError(f"{exc}: {rows}\n{log.read_text()}") from None
        return self.tasks()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """``startproject``, then the README's steps: app, kallables, migrate."""
    url, address = BROKERS["rabbitmq"]
    require_server("rabbitmq", address)
    directory = tmp_path_factory.mktemp("acceptance")
    prefix = f"carrot-acceptance-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    Site(directory, prefix).run(BIN / "django-admin", "startproject", "mysite")
    site = Site(directory / "mysite", prefix)

    settings = site.root / "mysite" / "settings.py"
    text, added = re.subn(
        r"(INSTALLED_APPS = \[\n)", r'\1    "carrot",\n', settings.read_text()
    )
    assert added == 1, "INSTALLED_APPS not found in the generated settings"
    settings.write_text(text + f"\nCARROT_QUEUE_PREFIX = {prefix!r}\n")
    (site.root / "animals.py").write_text(ANIMALS)

    assert (
        "No changes detected"
        in site.manage("makemigrations", "carrot", "--check").stdout
    )
    site.manage("migrate", "--verbosity=0")

    yield site

    site.kill_leftovers(*directory.glob("*.pid"))
    _delete_queues(url, prefix)


def _delete_queues(url: str, prefix: str) -> None:
    with Connection(url) as connection:
        channel = connection.default_channel
        for worker in ("default", *WORKERS):
            Queue(f"{prefix}.{worker}").bind(channel).delete()
        Exchange(prefix).bind(channel).delete()


def _stop(worker: subprocess.Popen[bytes], log: Path) -> int:
    """Send SIGTERM, wait for the exit and return its status."""
    worker.send_signal(signal.SIGTERM)
    try:
        return worker.wait(timeout=60)
    except subprocess.TimeoutExpired:
        worker.kill()
        raise AssertionError(f"the worker did not stop:\n{log.read_text()}") from None


def test_manage_py_carrot_workers_runs_the_tasks_made_in_the_shell(site, tmp_path):
    before = len(site.tasks())
    site.shell(
        """
        from carrot.models import Task, Worker
        Task.objects.create(kallable="animals.Dog.bark")
        Task.objects.create(
            kallable="animals.Dog.bark", args=[1], kwargs={"loud": True}
        )
        worker = Worker(name="fileprocesser")
        worker.description = "Used for processing large files one at a time"
        worker.concurrency = 1
        worker.save()
        for n in range(3):
            Task.objects.create(
                kallable="animals.process_file",
                args=[f"/tmp/huge{n}.wav"],
                kwargs={"bitrate": 1411},
                worker=worker,
            )
        """
    )
    log = tmp_path / "carrot-workers.log"

    worker = site.start(sys.executable, "manage.py", "carrot-workers", log=log)
    tasks = site.wait_until_succeeded(before + 5, log)[before:]
    assert _stop(worker, log) == 0

    assert [task["result"] for task in tasks[:2]] == ['"woof"', '"WOOF"']
    files = [task for task in tasks if task["worker"] == "fileprocesser"]
    assert '"/tmp/huge0.wav"' in files[0]["result"]
    # Concurrency 1: each file starts only after the one before finished.
    for earlier, later in itertools.pairwise(files):
        assert later["started_at"] >= earlier["finished_at"]


def test_carrot_worker_runs_the_tasks_of_the_settings_module(site, tmp_path):
    before = len(site.tasks())
    site.shell(
        """
        from carrot.models import Task
        Task.objects.create(kallable="animals.Dog.bark", args=[2])
        """
    )
    log = tmp_path / "carrot-worker.log"

    worker = site.start(BIN / "carrot", "worker", "--settings=mysite.settings", log=log)
    tasks = site.wait_until_succeeded(before + 1, log)
    assert _stop(worker, log) == 0

    assert tasks[-1]["result"] == '"woof woof"'
    assert "carrot service stopped" in log.read_text()


def test_a_detached_worker_runs_tasks_and_stops_through_its_pid_file(site, tmp_path):
    # Beside the project, where the fixture finds it after a failure.
    pidfile, log = site.root.parent / "carrot.pid", tmp_path / "carrot.log"
    site.manage(
        "carrot-workers",
        "--detach",
        f"--pidfile={pidfile}",
        f"--logfile={log}",
    )
    pid = int(pidfile.read_text())

    before = len(site.tasks())
    site.shell(
        """
        from carrot.models import Task
        Task.objects.create(kallable="animals.Dog.bark", args=[3])
        """
    )
    tasks = site.wait_until_succeeded(before + 1, log)
    assert tasks[-1]["pid"] == pid

    status = site.run(BIN / "carrot", "status", f"--pidfile={pidfile}")
    assert status.stdout == f"carrot is running as pid {pid} ({pidfile})\n"
    stop = site.manage("carrot-workers", "stop", f"--pidfile={pidfile}")
    assert stop.stdout == f"carrot (pid {pid}) stopped\n"
    assert not pidfile.exists()
    assert "carrot service stopped" in log.read_text()


def test_a_second_sigterm_stops_at_once_with_exit_status_1(site, tmp_path):
    site.shell(
        """
        from carrot.models import Task, Worker
        Worker.objects.create(name="sleepy", concurrency=1)
        Task.objects.create(kallable="animals.nap", args=[600], worker_id="sleepy")
        """
    )
    log = tmp_path / "carrot-worker.log"
    worker = site.start(
        BIN / "carrot",
        "worker",
        "--settings=mysite.settings",
        "--worker=sleepy",
        log=log,
    )
    wait_for(
        lambda: site.tasks()[-1]["status"] == "running", timeout=60, what="the nap"
    )

    worker.send_signal(signal.SIGTERM)
    wait_for(lambda: "finishing running tasks" in log.read_text(), timeout=60)
    assert _stop(worker, log) == 1

    assert "stopped at once" in log.read_text()
    assert site.tasks()[-1]["status"] == "running"
