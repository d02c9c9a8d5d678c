"""``carrot`` and ``manage.py carrot-workers``: mistakes, help, real runs.

The real runs use a project in a temporary directory, on its own SQLite
file and the in-memory transport, so they need no server; the
acceptance tests run tasks through RabbitMQ.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from django.core.management import CommandError, call_command

from carrot.cli import carrot
from carrot.core import CarrotError, daemon
from carrot.models import Worker
from tests.conftest import wait_for

#: The root of the checkout, where the ``tests`` package lives.
ROOT = Path(__file__).resolve().parent.parent
#: The console script installed beside this interpreter.
CARROT = Path(sys.executable).parent / "carrot"
#: A logged line: time, level, logger and message.
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ [\w.]+: .+$")


def invoke(*args: str, **env: str | None) -> object:
    return CliRunner().invoke(carrot, list(args), env=env)


def test_help_lists_the_commands():
    result = invoke("--help")

    assert result.exit_code == 0
    for command in ("worker", "status", "stop"):
        assert re.search(rf"^  {command} ", result.output, re.MULTILINE)


def test_worker_help_lists_every_option():
    result = invoke("worker", "--help")

    assert result.exit_code == 0
    for option in (
        "--settings",
        "--pythonpath",
        "--worker",
        "--broker",
        "--loglevel",
        "--detach",
        "--pidfile",
        "--logfile",
    ):
        assert option in result.output


def test_worker_without_settings_says_how_to_name_them():
    result = invoke("worker", DJANGO_SETTINGS_MODULE=None)

    assert result.exit_code == 2
    assert "--settings=mysite.settings or DJANGO_SETTINGS_MODULE" in result.output


def test_worker_with_an_unknown_settings_module_says_where_to_run():
    result = invoke("worker", "--settings=nosuchsite.settings")

    assert result.exit_code == 2
    assert "cannot import the settings module 'nosuchsite.settings'" in result.output
    assert "--pythonpath" in result.output
    assert "Traceback" not in result.output


@pytest.mark.django_db
def test_worker_refuses_an_unknown_worker_and_lists_the_enabled_ones():
    result = invoke("worker", "--settings=tests.settings", "--worker", "nosuchworker")

    assert result.exit_code == 2
    assert "no worker is named 'nosuchworker'" in result.output
    assert "the enabled workers are default" in result.output


@pytest.mark.django_db
def test_worker_reads_the_settings_module_from_the_environment():
    result = invoke(
        "worker", "--worker", "nosuchworker", DJANGO_SETTINGS_MODULE="tests.settings"
    )

    assert result.exit_code == 2
    assert "no worker is named 'nosuchworker'" in result.output


@pytest.mark.django_db
def test_worker_refuses_a_disabled_worker():
    Worker.objects.create(name="resting", enabled=False)

    result = invoke("worker", "--settings=tests.settings", "--worker", "resting")

    assert result.exit_code == 2
    assert "worker 'resting' is disabled" in result.output


@pytest.mark.django_db
def test_worker_refuses_a_broker_url_kombu_cannot_load_and_hides_its_password():
    result = invoke(
        "worker", "--settings=tests.settings", "--broker", "nosuch://user:secret@host//"
    )

    assert result.exit_code == 2
    assert "--broker 'nosuch://user:**@host//' names a transport" in result.output
    assert "secret" not in result.output


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--detach"], "--detach needs --pidfile and --logfile"),
        (["--detach", "--pidfile", "w.pid"], "--detach needs --pidfile and --logfile"),
        (["--logfile", "w.log"], "--logfile applies only with --detach"),
    ],
)
@pytest.mark.django_db
def test_worker_refuses_daemon_options_that_do_not_fit(options, message):
    result = invoke("worker", "--settings=tests.settings", *options)

    assert result.exit_code == 2
    assert message in result.output


def test_status_without_a_pid_file_exits_3(tmp_path):
    result = invoke("status", "--pidfile", str(tmp_path / "w.pid"))

    assert result.exit_code == 3
    assert "carrot is not running" in result.output


def test_status_of_a_stale_pid_file_exits_1(tmp_path):
    exited = subprocess.Popen([sys.executable, "-c", ""])
    exited.wait()
    (tmp_path / "w.pid").write_text(f"{exited.pid}\n")

    result = invoke("status", "--pidfile", str(tmp_path / "w.pid"))

    assert result.exit_code == 1
    assert "stale pid file" in result.output


def test_stop_without_a_pid_file_says_there_is_nothing_to_stop(tmp_path):
    result = invoke("stop", "--pidfile", str(tmp_path / "w.pid"))

    assert result.exit_code == 1
    assert "there is nothing to stop" in result.output


def test_status_needs_a_pid_file():
    result = invoke("status")

    assert result.exit_code == 2
    assert "--pidfile" in result.output


@pytest.mark.django_db
def test_carrot_workers_refuses_an_unknown_worker_with_a_command_error():
    with pytest.raises(CommandError, match="no worker is named 'nosuchworker'"):
        call_command("carrot-workers", "--worker", "nosuchworker")


def test_carrot_workers_status_needs_a_pid_file():
    with pytest.raises(CommandError, match="--pidfile"):
        call_command("carrot-workers", "status")


def test_carrot_workers_status_without_a_pid_file_exits_3(tmp_path):
    with pytest.raises(CommandError, match="carrot is not running") as raised:
        call_command("carrot-workers", "status", "--pidfile", str(tmp_path / "w.pid"))

    assert raised.value.returncode == 3


# Real runs, in subprocesses.


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A migrated project on its own SQLite file and the memory transport."""
    directory = tmp_path_factory.mktemp("site")
    (directory / "clisite.py").write_text(
        textwrap.dedent(
            f"""
            from tests.settings import *

            DATABASES = {{
                "default": {{
                    "ENGINE": "django.db.backends.sqlite3",
                    "NAME": {str(directory / "db.sqlite3")!r},
                }}
            }}
            CARROT_QUEUE_PREFIX = "carrot-cli-{uuid.uuid4().hex[:12]}"
            """
        )
    )
    django_admin(directory, "migrate", "--verbosity=0")
    yield directory


def environment(site: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DJANGO_SETTINGS_MODULE", "CARROT_BROKER_URL")
    }
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(site)])
    return env


def django_admin(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "django", *args, "--settings=clisite"],
        cwd=site,
        env=environment(site),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


def start(site: Path, command: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(
            command,
            cwd=site,
            env=environment(site),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def run(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CARROT), *args],
        cwd=site,
        env=environment(site),
        capture_output=True,
        text=True,
        timeout=60,
    )


def wait_for_log(log: Path, text: str) -> None:
    """Wait until ``text`` is in ``log``; a loaded machine starts slowly."""
    try:
        wait_for(lambda: text in log.read_text(), timeout=60, what=repr(text))
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the log says:\n{log.read_text()}") from None


@pytest.mark.parametrize(
    "command",
    [
        [str(CARROT), "worker", "--settings=clisite"],
        [sys.executable, "-m", "django", "carrot-workers", "--settings=clisite"],
    ],
    ids=["carrot worker", "manage.py carrot-workers"],
)
def test_the_worker_logs_with_time_and_level_and_exits_0_on_sigterm(
    site, tmp_path, command
):
    log = tmp_path / "worker.log"
    worker = start(site, command, log)

    try:
        wait_for_log(log, "worker default consuming")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        worker.kill()

    lines = log.read_text().splitlines()
    assert all(LOG_LINE.match(line) for line in lines), lines
    assert "WARNING carrot.core.service: received SIGTERM" in lines[-2]
    assert lines[-1].endswith("INFO carrot.core.service: carrot service stopped")


def test_the_worker_runs_only_the_named_workers(site, tmp_path):
    django_admin(
        site,
        "shell",
        "-c",
        "from carrot.models import Worker; Worker.objects.create(name='files')",
    )
    log = tmp_path / "worker.log"
    worker = start(
        site, [str(CARROT), "worker", "--settings=clisite", "--worker=files"], log
    )

    try:
        wait_for_log(log, "worker files consuming")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        worker.kill()

    assert "worker default" not in log.read_text()


@pytest.fixture
def pidfile(tmp_path: Path) -> Iterator[Path]:
    """A pid file whose daemon is stopped after the test, had it failed."""
    path = tmp_path / "w.pid"
    yield path
    with contextlib.suppress(CarrotError):
        daemon.stop(path, timeout_seconds=30, immediate=True)


def test_a_detached_worker_is_found_and_stopped_through_its_pid_file(
    site, tmp_path, pidfile
):
    log = tmp_path / "w.log"
    options = ["--pidfile", str(pidfile)]

    started = run(
        site, "worker", "--settings=clisite", "--detach", *options, "--logfile", log
    )
    assert started.returncode == 0, started.stderr
    pid = int(pidfile.read_text())
    assert started.stdout == f"carrot started as pid {pid}, logging to {log}\n"
    wait_for_log(log, "worker default consuming")

    again = run(
        site, "worker", "--settings=clisite", "--detach", *options, "--logfile", log
    )
    assert again.returncode == 1
    assert f"carrot already runs as pid {pid}" in again.stderr

    running = run(site, "status", *options)
    assert (running.returncode, running.stdout) == (
        0,
        f"carrot is running as pid {pid} ({pidfile})\n",
    )

    stopped = run(site, "stop", *options)
    assert (stopped.returncode, stopped.stdout) == (0, f"carrot (pid {pid}) stopped\n")
    assert not pidfile.exists()
    assert log.read_text().splitlines()[-1].endswith("carrot service stopped")
    assert run(site, "status", *options).returncode == 3
