"""Private brokers, service processes and ledgers for the fault tests.

These tests stop and restart brokers and kill services. They run their
own RabbitMQ node and Redis server, on ports of their own, so that the
shared servers other suites use are never disturbed; services run in
subprocesses (`tests.faults.service_main`) on the PostgreSQL test
database, which they share with the test.

Both private servers accept only the user `BROKER_USER` with the
distinctive `BROKER_PASSWORD`; every service's log is searched for that
password when the service is cleaned up.

Without RabbitMQ, Redis or PostgreSQL the tests skip locally and fail
under ``CI``. They run only with ``CARROT_TEST_DATABASE=postgres``, and
skip otherwise::

    CARROT_TEST_DATABASE=postgres pytest -m faults
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_for

#: The only user of both private servers. The password is distinctive, so
#: that finding it in a log or a page cannot be chance.
BROKER_USER = "carrot-faults"
BROKER_PASSWORD = "Pw-carrot-faults-8Jx2Qv7"

#: Where the private servers keep their files: a directory per session,
#: named by the pid of its pytest process. Sessions run at once by several
#: people each get their own servers, on ports free at the time.
STATE_DIR = Path(tempfile.gettempdir()) / "carrot-faults"
#: The repository root, from which the services import ``tests``.
ROOT = Path(__file__).resolve().parents[2]

#: Settings of every service started here: quick to refresh, and quick to
#: take a silent service for dead, so that recovery shows within seconds.
SERVICE_SETTINGS: dict[str, Any] = {
    "CARROT_REFRESH_SECONDS": 0.5,
    "CARROT_RUNNER_TIMEOUT_SECONDS": 3.0,
    "CARROT_OUTBOX_GRACE_SECONDS": 1.0,
    "CARROT_PREFETCH_MULTIPLIER": 2,
}


def unavailable(message: str) -> None:
    """Skip locally, fail under CI, where every server must be there."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


class RabbitMQNode:
    """A RabbitMQ node of this session's own, run with ``rabbitmqctl``."""

    def __init__(self, base: Path, bin_dir: Path) -> None:
        self.base = base
        self.bin_dir = bin_dir
        self.name = f"carrot-faults-{base.parent.name}@localhost"
        self.port = _free_port()
        self.dist_port = _free_port()
        self.url = f"amqp://{BROKER_USER}:{BROKER_PASSWORD}@127.0.0.1:{self.port}//"

    def start(self) -> None:
        """Start the node, with no queues."""
        self._write_files()
        subprocess.run(
            [str(self.bin_dir / "rabbitmq-server"), "-detached"],
            env=self._env(),
            check=True,
            capture_output=True,
            timeout=60,
        )
        self._await_startup()

    def stop(self) -> None:
        """Stop the node and its Erlang VM."""
        self.ctl("stop", check=False)

    def stop_app(self) -> None:
        """Stop RabbitMQ but not its VM: every connection is closed."""
        self.ctl("stop_app")

    def start_app(self) -> None:
        """Start RabbitMQ again; it accepts connections when this returns."""
        self.ctl("start_app")

    def set_consumer_timeout(self, milliseconds: int) -> None:
        """Set the acknowledgement timeout of the channels opened from now."""
        self.ctl(
            "eval", f"application:set_env(rabbit, consumer_timeout, {milliseconds})."
        )

    def queue_depths(self) -> dict[str, tuple[int, int]]:
        """Every queue's messages, as (ready, unacknowledged), by name."""
        output = self.ctl(
            "list_queues",
            "--quiet",
            "--no-table-headers",
            "name",
            "messages_ready",
            "messages_unacknowledged",
        )
        depths = {}
        for line in output.splitlines():
            name, ready, unacked = line.split("\t")
            depths[name] = (int(ready), int(unacked))
        return depths

    def ctl(self, *args: str, check: bool = True) -> str:
        """Run ``rabbitmqctl`` against this node and return its output."""
        done = subprocess.run(
            [*self._command(), *args],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and done.returncode:
            raise AssertionError(
                f"rabbitmqctl {' '.join(args)} failed: {done.stdout}{done.stderr}"
            )
        return done.stdout

    def _await_startup(self) -> None:
        # The node registers with epmd a moment after -detached returns; until
        # then await_startup fails at once rather than waiting.
        deadline = time.monotonic() + 90
        while True:
            done = subprocess.run(
                [*self._command(), "await_startup", "--timeout", "60"],
                env=self._env(),
                capture_output=True,
                text=True,
                timeout=120,
            )
            if done.returncode == 0:
                return
            if time.monotonic() > deadline:
                log = "\n".join(
                    path.read_text()[-2000:]
                    for path in (self.base / "log").glob("*.log")
                )
                raise AssertionError(f"the RabbitMQ node did not start: {log}")
            time.sleep(0.5)

    def _command(self) -> list[str]:
        return [str(self.bin_dir / "rabbitmqctl"), "-n", self.name]

    def _write_files(self) -> None:
        home = self.base / "home"
        home.mkdir(parents=True)
        # A cookie of its own: the shared node's cookie is not readable by
        # every user, and this node needs none of its trust.
        cookie = home / ".erlang.cookie"
        cookie.write_text(os.urandom(16).hex().upper())
        cookie.chmod(0o400)
        (self.base / "node").write_text(self.name)
        (self.base / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
            f"default_user = {BROKER_USER}\n"
            f"default_pass = {BROKER_PASSWORD}\n"
            "log.console = false\n"
            "log.file.level = info\n"
        )
        # RabbitMQ looks for acknowledgement timeouts once per channel tick,
        # every minute by default; the long-task test needs it within a second.
        (self.base / "advanced.config").write_text(
            "[{rabbit, [{channel_tick_interval, 500}]}].\n"
        )
        (self.base / "enabled_plugins").write_text("[].\n")

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOME": str(self.base / "home"),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.base / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.base / "rabbitmq.pid"),
        }


class RedisServer:
    """A Redis server of this suite's own, persisting every write.

    The append-only file is written and synced at every command, so that a
    restart loses nothing a client was told was stored: that is how a Redis
    that carries tasks must be run.
    """

    def __init__(self, base: Path, server: str, cli: str) -> None:
        self.base = base
        self.server = server
        self.cli = cli
        self.port = _free_port()
        self.url = f"redis://:{BROKER_PASSWORD}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server on the data it has on disk, if any."""
        self.base.mkdir(parents=True, exist_ok=True)
        options = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "requirepass": BROKER_PASSWORD,
            "save": "",
            "appendonly": "yes",
            "appendfsync": "always",
            "dir": str(self.base),
            "daemonize": "yes",
            "pidfile": str(self.base / "redis.pid"),
            "logfile": str(self.base / "redis.log"),
        }
        arguments = [
            part for name, value in options.items() for part in (f"--{name}", value)
        ]
        subprocess.run(
            [self.server, *arguments],
            check=True,
            capture_output=True,
            timeout=30,
        )
        wait_for(lambda: self._ping(), 30, "the private Redis to answer")

    def stop(self) -> None:
        """Stop the server; what it holds is on disk."""
        self._shutdown()
        wait_for(lambda: not _answers(self.port), 30, "the private Redis to stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def _ping(self) -> bool:
        return self._cli("ping").strip() == "PONG"

    def _shutdown(self) -> None:
        self._cli("shutdown")

    def _cli(self, *args: str) -> str:
        done = subprocess.run(
            [self.cli, "-p", str(self.port), *args],
            env={**os.environ, "REDISCLI_AUTH": BROKER_PASSWORD},
            capture_output=True,
            text=True,
            timeout=30,
        )
        return done.stdout


def _stop_stale_servers(session: Path) -> None:
    """Stop the servers of a session whose pytest process died."""
    node = session / "rabbitmq" / "node"
    ctl = shutil.which("rabbitmqctl")
    if node.exists() and ctl:
        subprocess.run(
            [ctl, "-n", node.read_text(), "stop"],
            env={**os.environ, "HOME": str(session / "rabbitmq" / "home")},
            capture_output=True,
            timeout=120,
        )
    with contextlib.suppress(OSError, ValueError):
        pid = int((session / "redis" / "redis.pid").read_text())
        os.kill(pid, signal.SIGTERM)
    shutil.rmtree(session, ignore_errors=True)


@pytest.fixture(scope="session")
def session_dir() -> Iterator[Path]:
    """This session's directory for its servers, after clearing dead ones."""
    STATE_DIR.mkdir(exist_ok=True)
    for session in STATE_DIR.iterdir():
        with contextlib.suppress(ValueError):
            pid = int(session.name)
            if not _process_exists(pid):
                _stop_stale_servers(session)
    directory = STATE_DIR / str(os.getpid())
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session")
def rabbitmq(session_dir: Path) -> Iterator[RabbitMQNode]:
    """The private RabbitMQ node, for the whole session."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        unavailable("RabbitMQ is not installed: rabbitmqctl is not on the PATH")
    assert ctl is not None
    # Debian's rabbitmq-server on the PATH switches to the rabbitmq user;
    # the scripts beside the real rabbitmqctl run the node as we are.
    bin_dir = Path(os.path.realpath(ctl)).parent
    node = RabbitMQNode(session_dir / "rabbitmq", bin_dir)
    try:
        node.start()
    except (OSError, subprocess.SubprocessError, AssertionError) as exc:
        unavailable(f"cannot start a private RabbitMQ node: {exc}")
    yield node
    node.stop()


@pytest.fixture(scope="session")
def redis_server(session_dir: Path) -> Iterator[RedisServer]:
    """The private Redis server, for the whole session."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        unavailable("Redis is not installed: redis-server is not on the PATH")
    assert server is not None and cli is not None
    redis = RedisServer(session_dir / "redis", server, cli)
    try:
        redis.start()
    except (OSError, subprocess.SubprocessError, AssertionError) as exc:
        unavailable(f"cannot start a private Redis server: {exc}")
    yield redis
    with contextlib.suppress(AssertionError):
        redis.stop()


@pytest.fixture(autouse=True)
def _postgres_database(settings: Any) -> None:
    # Checked before any server starts. Services in other processes share
    # the test database, which an SQLite file cannot serve well. A choice
    # of the run rather than a missing server, so it skips even under CI.
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        pytest.skip(
            "the fault tests share their database with service processes: "
            "run them with CARROT_TEST_DATABASE=postgres"
        )


@pytest.fixture
def database(transactional_db: None) -> str:
    """The name of the PostgreSQL test database."""
    from django.db import connection

    return str(connection.settings_dict["NAME"])


class ServiceProcess:
    """A service running `tests.faults.service_main` in a subprocess."""

    def __init__(self, popen: subprocess.Popen[bytes], log: Path, ready: Path):
        self.popen = popen
        self.pid = popen.pid
        self.log_path = log
        self.ready_path = ready

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until the service consumes its queues."""
        wait_for(
            lambda: self.ready_path.exists() or not self.alive,
            timeout,
            f"service {self.pid} to consume",
        )
        assert self.alive, f"service {self.pid} exited:\n{self.tail()}"

    def send(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def dump_stacks(self) -> None:
        """Have the service write every thread's stack to its log."""
        if self.alive:
            self.send(signal.SIGUSR1)
            with contextlib.suppress(AssertionError):
                wait_for(lambda: "most recent call first" in self.log(), 5)

    def kill(self) -> None:
        """SIGKILL the service and reap it."""
        if self.alive:
            self.popen.kill()
        self.popen.wait(30)

    def wait_exit(self, timeout: float = 30.0) -> int:
        """Wait for the service to exit; return its exit status."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"service {self.pid} still runs after {timeout} s:\n{self.tail()}"
            ) from None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


class Services:
    """Starts service processes; kills what still runs at the end."""

    def __init__(self, directory: Path, database: str, settings: Any) -> None:
        self._directory = directory
        self._database = database
        self._settings = settings
        self.started: list[ServiceProcess] = []
        #: Settings for every service started from now on, over
        #: `SERVICE_SETTINGS`.
        self.defaults: dict[str, Any] = {}

    def start(
        self,
        broker_url: str,
        *,
        wait: bool = True,
        env: dict[str, str] | None = None,
        **overrides: Any,
    ) -> ServiceProcess:
        """Start a service on ``broker_url`` with `SERVICE_SETTINGS`.

        ``overrides`` are more Django settings, by name. Waits until the
        service consumes unless ``wait`` is false.
        """
        number = len(self.started) + 1
        log = self._directory / f"service-{number}.log"
        ready = self._directory / f"service-{number}.ready"
        settings = {
            **SERVICE_SETTINGS,
            "CARROT_BROKER_URL": broker_url,
            "CARROT_QUEUE_PREFIX": self._settings.CARROT_QUEUE_PREFIX,
            **self.defaults,
            **overrides,
        }
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "CARROT_FAULTS_DATABASE": self._database,
            "CARROT_FAULTS_SETTINGS": json.dumps(settings),
            "CARROT_FAULTS_READY": str(ready),
            **(env or {}),
        }
        with log.open("ab") as output:
            popen = subprocess.Popen(
                [sys.executable, "-m", "tests.faults.service_main"],
                cwd=ROOT,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = ServiceProcess(popen, log, ready)
        self.started.append(process)
        if wait:
            process.wait_ready()
        return process

    def close(self) -> None:
        for process in self.started:
            process.dump_stacks()
            process.kill()
        for process in self.started:
            assert BROKER_PASSWORD not in process.log(), (
                f"the broker password is in the log of service {process.pid}"
            )


@pytest.fixture
def services(tmp_path: Path, database: str, settings: Any) -> Iterator[Services]:
    """Start service processes; they are killed after the test."""
    started = Services(tmp_path, database, settings)
    yield started
    started.close()


@pytest.fixture
def rabbitmq_settings(rabbitmq: RabbitMQNode, settings: Any) -> RabbitMQNode:
    """Publish from the test process to the private RabbitMQ node."""
    settings.CARROT_BROKER_URL = rabbitmq.url
    return rabbitmq


class Ledger:
    """The lines that the tasks of `tests.examples.faults` appended."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __str__(self) -> str:
        return str(self.path)

    def entries(self) -> list[tuple[str, str, int]]:
        """Every ``(event, token, pid)``, in the order they were written."""
        if not self.path.exists():
            return []
        entries = []
        for line in self.path.read_text().splitlines():
            event, token, pid = line.split(" ")
            entries.append((event, token, int(pid)))
        return entries

    def count(self, event: str) -> collections.Counter[str]:
        """How many times each token noted ``event``."""
        return collections.Counter(t for e, t, _ in self.entries() if e == event)

    def pids(self, event: str, token: str) -> list[int]:
        """The processes that noted ``event`` for ``token``, in order."""
        return [p for e, t, p in self.entries() if e == event and t == token]


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    """A fresh ledger file for the tasks of one test."""
    return Ledger(tmp_path / "ledger.txt")


def poll(
    condition: Callable[[], object], timeout: float, what: str, interval: float = 0.1
) -> None:
    """Like `wait_for`, looking less often: for conditions that query."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def statuses() -> collections.Counter[str]:
    """How many task rows there are in each status."""
    from carrot.models import Task

    return collections.Counter(Task.objects.values_list("status", flat=True))


def set_concurrency(concurrency: int, worker: str = "default") -> None:
    """Let one service run ``concurrency`` tasks of ``worker`` at once."""
    from carrot.models import Worker

    Worker.objects.filter(name=worker).update(concurrency=concurrency)


def wait_past_runner_timeout(ledger: Any, services: int = 2) -> None:
    """Wait until ``services`` runners record themselves after the timeout.

    By then a service that fell silent would have been taken for dead and
    its task started again, which the ledger would show.
    """
    from datetime import timedelta

    from django.utils import timezone

    from carrot.models import Runner

    timeout = SERVICE_SETTINGS["CARROT_RUNNER_TIMEOUT_SECONDS"]
    refresh = SERVICE_SETTINGS["CARROT_REFRESH_SECONDS"]
    deadline = timezone.now() + timedelta(seconds=timeout + 2 * refresh)

    def outlived() -> bool:
        seen = Runner.objects.values_list("seen_at", flat=True)
        return sum(1 for at in seen if at > deadline) == services

    poll(
        lambda: outlived() or sum(ledger.count("start").values()) > 1,
        30,
        "the services to record themselves after the runner timeout",
    )
