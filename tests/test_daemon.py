"""The pid file, status, stop and detach, with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from carrot.core import CarrotError
from carrot.core.daemon import (
    AlreadyRunning,
    DaemonError,
    NotRunning,
    PidFile,
    State,
    StopTimeout,
    is_alive,
    status,
    stop,
)
from tests.conftest import wait_for

#: Acts like the service on SIGTERM: prints each one it receives and exits
#: after as many as its first argument says.
_SIGNALLED = textwrap.dedent(
    """
    import signal, sys
    received = 0
    def count(signum, frame):
        global received
        received += 1
        print("SIGTERM", received, flush=True)
        if received >= int(sys.argv[1]):
            sys.exit(0)
    signal.signal(signal.SIGTERM, count)
    print("ready", flush=True)
    while True:
        signal.pause()
    """
)

#: Detaches, says so in its log, and waits for SIGTERM to release the pid
#: file: a daemon without Django.
_DAEMON = textwrap.dedent(
    """
    import os, signal, sys
    from carrot.core.daemon import PidFile, detach
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    pidfile = PidFile(sys.argv[1])
    pid = detach(pidfile, sys.argv[2])
    if pid is not None:
        print(pid)
        sys.exit(0)
    print("daemon", os.getsid(0), repr(sys.stdin.read()), flush=True)
    signal.sigwait({signal.SIGTERM})
    pidfile.release()
    """
)


@pytest.fixture
def pidfile(tmp_path: Path) -> Path:
    return tmp_path / "carrot.pid"


@pytest.fixture
def spawn() -> Iterator[object]:
    """Start `_SIGNALLED` children; each is killed after the test."""
    children: list[subprocess.Popen[str]] = []

    def start(sigterms_to_exit: int = 1) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, "-c", _SIGNALLED, str(sigterms_to_exit)],
            stdout=subprocess.PIPE,
            text=True,
        )
        children.append(child)
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        return child

    yield start

    for child in children:
        child.kill()
        with child:  # closes its stdout and reaps it
            pass


def _exited_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


def test_acquire_writes_this_process_pid_and_release_removes_it(pidfile):
    with PidFile(pidfile):
        assert pidfile.read_text() == f"{os.getpid()}\n"

    assert not pidfile.exists()
    assert not list(pidfile.parent.iterdir())


def test_acquire_refuses_a_pid_file_held_by_a_live_process(pidfile, spawn):
    child = spawn()
    pidfile.write_text(f"{child.pid}\n")

    with pytest.raises(AlreadyRunning, match=f"already runs as pid {child.pid}"):
        PidFile(pidfile).acquire()

    assert pidfile.read_text() == f"{child.pid}\n"


def test_acquire_replaces_a_stale_pid_file(pidfile):
    pidfile.write_text(f"{_exited_pid()}\n")

    with PidFile(pidfile):
        assert pidfile.read_text() == f"{os.getpid()}\n"


def test_acquire_replaces_a_pid_file_that_holds_no_pid(pidfile):
    pidfile.write_text("not a pid\n")

    with PidFile(pidfile):
        assert pidfile.read_text() == f"{os.getpid()}\n"


def test_acquire_says_to_check_the_directory_when_it_is_missing(tmp_path):
    with pytest.raises(DaemonError, match="check that its directory exists"):
        PidFile(tmp_path / "missing" / "carrot.pid").acquire()


def test_release_keeps_a_pid_file_that_another_process_took_over(pidfile):
    held = PidFile(pidfile)
    held.acquire()
    pidfile.write_text("12345\n")

    held.release()

    assert pidfile.read_text() == "12345\n"


def test_status_without_a_pid_file_is_not_running(pidfile):
    current = status(pidfile)

    assert current.state is State.NOT_RUNNING
    assert str(current) == f"carrot is not running: {pidfile} does not exist"


def test_status_names_the_pid_of_a_live_process(pidfile, spawn):
    child = spawn()
    pidfile.write_text(f"{child.pid}\n")

    current = status(pidfile)

    assert (current.state, current.pid) == (State.RUNNING, child.pid)
    assert str(current) == f"carrot is running as pid {child.pid} ({pidfile})"


def test_status_calls_a_pid_file_of_an_exited_process_stale(pidfile):
    pid = _exited_pid()
    pidfile.write_text(f"{pid}\n")

    current = status(pidfile)

    assert (current.state, current.pid) == (State.STALE, pid)
    assert "which has exited (stale pid file)" in str(current)


def test_an_exited_process_that_nobody_reaped_is_not_alive(spawn):
    child = spawn()
    child.send_signal(signal.SIGTERM)
    # Wait for the exit but leave the child a zombie, as a daemon stays
    # under an init that does not reap.
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)

    assert not is_alive(child.pid)


def test_stop_waits_for_the_process_to_exit_and_removes_its_pid_file(pidfile, spawn):
    child = spawn()
    pidfile.write_text(f"{child.pid}\n")

    assert stop(pidfile, timeout_seconds=30) == child.pid

    assert child.wait() == 0
    assert child.stdout.read() == "SIGTERM 1\n"
    assert not pidfile.exists()


def test_stop_gives_up_after_the_timeout_and_a_second_stop_stops_at_once(
    pidfile, spawn
):
    child = spawn(sigterms_to_exit=2)
    pidfile.write_text(f"{child.pid}\n")

    with pytest.raises(StopTimeout, match="stop it again to stop it at once"):
        stop(pidfile, timeout_seconds=0.2)
    assert child.stdout.readline() == "SIGTERM 1\n"
    assert child.poll() is None

    assert stop(pidfile, timeout_seconds=30) == child.pid
    assert child.wait() == 0
    assert child.stdout.read() == "SIGTERM 2\n"


def test_stop_immediate_sends_the_second_sigterm_itself(pidfile, spawn):
    child = spawn(sigterms_to_exit=2)
    pidfile.write_text(f"{child.pid}\n")

    assert stop(pidfile, timeout_seconds=30, immediate=True) == child.pid

    assert child.wait() == 0
    assert child.stdout.read().splitlines()[:2] == ["SIGTERM 1", "SIGTERM 2"]


def test_stop_refuses_when_there_is_no_pid_file(pidfile):
    with pytest.raises(NotRunning, match="does not exist; there is nothing to stop"):
        stop(pidfile, timeout_seconds=1)


def test_stop_refuses_a_stale_pid_file(pidfile):
    pidfile.write_text(f"{_exited_pid()}\n")

    with pytest.raises(NotRunning, match="stale pid file"):
        stop(pidfile, timeout_seconds=1)


def test_daemon_errors_are_carrot_errors():
    for error in (AlreadyRunning, NotRunning, StopTimeout):
        assert issubclass(error, DaemonError)
    assert issubclass(DaemonError, CarrotError)


def _detach(pidfile: Path, logfile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _DAEMON, str(pidfile), str(logfile)],
        capture_output=True,
        text=True,
        stdin=subprocess.PIPE,
        timeout=30,
    )


def test_detach_returns_once_the_daemon_holds_the_pid_file(pidfile, tmp_path):
    logfile = tmp_path / "carrot.log"

    started = _detach(pidfile, logfile)

    assert started.returncode == 0, started.stderr
    pid = int(started.stdout)
    try:
        assert pidfile.read_text() == f"{pid}\n"
        wait_for(lambda: logfile.exists() and logfile.read_text(), what="the log")
        # Output in the log file, its own session, stdin from /dev/null.
        word, session, stdin = logfile.read_text().split()
        assert word == "daemon"
        assert int(session) not in (os.getsid(0), pid)
        assert stdin == "''"
        assert status(pidfile).state is State.RUNNING

        assert stop(pidfile, timeout_seconds=30) == pid
        assert not pidfile.exists()
    finally:
        if is_alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_detach_refuses_a_pid_file_held_by_a_live_process(pidfile, tmp_path, spawn):
    child = spawn()
    pidfile.write_text(f"{child.pid}\n")

    started = _detach(pidfile, tmp_path / "carrot.log")

    assert started.returncode == 1
    assert f"AlreadyRunning: carrot already runs as pid {child.pid}" in started.stderr
    assert not (tmp_path / "carrot.log").exists()


def test_detach_reports_a_log_file_it_cannot_open(pidfile, tmp_path):
    started = _detach(pidfile, tmp_path / "missing" / "carrot.log")

    assert started.returncode == 1
    assert "cannot open the log file" in started.stderr
    assert not pidfile.exists()
