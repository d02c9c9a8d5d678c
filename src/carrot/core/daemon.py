"""Run as a daemon: detach, hold a pid file, report status and stop.

Nothing here imports Django, so ``carrot status`` and ``carrot stop``
work without a settings module.

Limits:

- POSIX only: detaching needs ``fork`` and ``setsid``.
- A pid file names a process by number. If a daemon is killed before
  it removes its pid file and the system hands the number to another
  process, `status` reports that process as running until the file is
  removed by hand.
- Two daemons started at the same instant on the same stale pid file
  can both replace it; start one at a time.
"""

from __future__ import annotations

import enum
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from .errors import CarrotError

__all__ = [
    "AlreadyRunning",
    "DaemonError",
    "NotRunning",
    "PidFile",
    "State",
    "Status",
    "StopTimeout",
    "detach",
    "is_alive",
    "status",
    "stop",
]

#: How often `stop` looks whether the process has exited.
_STOP_POLL_SECONDS = 0.05
#: Attempts at creating the pid file while stale ones are being replaced.
_ACQUIRE_ATTEMPTS = 3


class DaemonError(CarrotError):
    """A daemon could not be started, found or stopped; the message says why."""


class AlreadyRunning(DaemonError):
    """A live process holds the pid file: stop it, or use another pid file."""


class NotRunning(DaemonError):
    """No live process holds the pid file, so there is nothing to stop."""


class StopTimeout(DaemonError):
    """The process still runs its tasks: stop it again to stop it at once."""


class State(enum.Enum):
    """What a pid file says about its process."""

    RUNNING = "running"
    NOT_RUNNING = "not running"
    #: The file names a process that has exited, or holds no pid.
    STALE = "stale"


@dataclass(frozen=True)
class Status:
    """The `State` of a pid file, and the pid it names, if any."""

    state: State
    pidfile: Path
    pid: int | None = None

    def __str__(self) -> str:
        if self.state is State.RUNNING:
            return f"carrot is running as pid {self.pid} ({self.pidfile})"
        if self.state is State.NOT_RUNNING:
            return f"carrot is not running: {self.pidfile} does not exist"
        if self.pid is None:
            return f"carrot is not running: {self.pidfile} holds no pid"
        return (
            f"carrot is not running: {self.pidfile} names pid {self.pid}, "
            "which has exited (stale pid file)"
        )


class PidFile:
    """A file naming the process that runs, for `status` and `stop`.

    `acquire` creates it holding this process's pid; `release`, or leaving
    the ``with`` block, removes it. A process killed without a chance to
    release it leaves a stale file, which the next `acquire` replaces.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = _absolute(path)
        self._owner: int | None = None

    def check(self) -> None:
        """Raise `AlreadyRunning` if another live process holds the file."""
        pid = _read_pid(self.path)
        if pid is not None and pid != os.getpid() and is_alive(pid):
            raise AlreadyRunning(
                f"carrot already runs as pid {pid} ({self.path}); stop it "
                "first, or give this one another pid file"
            )

    def acquire(self) -> None:
        """Create the file with this process's pid, replacing a stale one.

        Raises `AlreadyRunning` when a live process holds it.
        """
        for _ in range(_ACQUIRE_ATTEMPTS):
            if self._create():
                self._owner = os.getpid()
                return
            self.check()
            self.path.unlink(missing_ok=True)
        raise DaemonError(
            f"{self.path} was created again while carrot replaced it: another "
            "carrot is starting with the same pid file"
        )

    def release(self) -> None:
        """Remove the file, unless another process has taken it over."""
        if self._owner is None or self._owner != os.getpid():
            return
        if _read_pid(self.path) == self._owner:
            self.path.unlink(missing_ok=True)
        self._owner = None

    def __enter__(self) -> PidFile:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def _create(self) -> bool:
        # Linking a complete file into place is atomic and fails when the
        # name exists, so nobody ever reads a pid file that is still empty.
        draft = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        try:
            draft.write_text(f"{os.getpid()}\n")
            os.link(draft, self.path)
        except FileExistsError:
            return False
        except OSError as exc:
            raise DaemonError(
                f"cannot create the pid file {self.path}: {exc.strerror}; "
                "check that its directory exists and is writable"
            ) from exc
        finally:
            draft.unlink(missing_ok=True)
        return True


def status(pidfile: Path | str) -> Status:
    """Tell whether the process that ``pidfile`` names is running."""
    path = _absolute(pidfile)
    if not path.exists():
        return Status(State.NOT_RUNNING, path)
    pid = _read_pid(path)
    if pid is not None and is_alive(pid):
        return Status(State.RUNNING, path, pid)
    return Status(State.STALE, path, pid)


def stop(
    pidfile: Path | str, timeout_seconds: float, *, immediate: bool = False
) -> int:
    """Send SIGTERM to the process ``pidfile`` names and wait for its exit.

    The service takes a first SIGTERM as "finish the running tasks" and a
    second one as "stop at once"; a second call of `stop`, or
    ``immediate``, sends the second. Returns the pid that exited; removes
    a pid file left behind. Raises `NotRunning` when no live process holds
    the pid file, and `StopTimeout` when the process still runs after
    ``timeout_seconds``.
    """
    current = status(pidfile)
    if current.state is not State.RUNNING or current.pid is None:
        raise NotRunning(f"{current}; there is nothing to stop")
    pid = current.pid

    _terminate(pid)
    deadline = time.monotonic() + timeout_seconds
    while is_alive(pid):
        if time.monotonic() >= deadline:
            raise StopTimeout(
                f"carrot (pid {pid}) is still finishing its running tasks "
                f"after {timeout_seconds:g} s; stop it again to stop it at "
                "once, or wait longer"
            )
        time.sleep(_STOP_POLL_SECONDS)
        if immediate:
            # Signals that arrive together merge into one; sending until
            # the process is gone makes sure it sees a second one.
            _terminate(pid)

    _remove_if_naming(current.pidfile, pid)
    return pid


def detach(pidfile: PidFile, logfile: Path | str) -> int | None:
    """Go on running the caller's program as a daemon.

    Returns twice, like ``fork``: in the calling process it returns the
    daemon's pid once the daemon holds ``pidfile``; in the daemon it
    returns None. The daemon has its own session, reads its standard
    input from /dev/null and appends its output to ``logfile``. It keeps
    the current directory, because a Django project's settings may name
    paths relative to it. Raises `AlreadyRunning` when a live process
    holds the pid file and `DaemonError` when the daemon cannot start.

    Call it before starting any thread: ``fork`` copies only the calling
    thread.
    """
    pidfile.check()
    log_fd = _open_log(_absolute(logfile))
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()

    child = os.fork()
    if child:
        os.close(write_end)
        os.close(log_fd)
        return _await_daemon(read_end, child)

    # From here on this is a child: it must never return into the
    # caller's program except as the daemon.
    os.close(read_end)
    try:
        _become_daemon(log_fd)
        pidfile.acquire()
    except BaseException as exc:
        os.write(write_end, f"error {exc}".encode())
        os._exit(1)
    os.write(write_end, f"ok {os.getpid()}".encode())
    os.close(write_end)
    return None


def is_alive(pid: int) -> bool:
    """Whether the process ``pid`` exists and has not exited."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    # An exited process stays in the process table until its parent reaps
    # it. A daemon's parent is init, and some container inits never reap.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False  # no /proc: trust kill(pid, 0)
    fields = stat.rpartition(")")[2].split()
    return bool(fields) and fields[0] == "Z"


def _absolute(path: Path | str) -> Path:
    # Absolute and without "..", so messages name the file plainly;
    # symbolic links stay as the user named them.
    return Path(os.path.abspath(path))


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DaemonError(
            f"cannot read the pid file {path}: {exc.strerror}; check its permissions"
        ) from exc
    try:
        pid = int(text.strip())
    except ValueError:
        return None
    return pid if pid > 0 else None


def _remove_if_naming(path: Path, pid: int) -> None:
    if _read_pid(path) == pid:
        path.unlink(missing_ok=True)


def _terminate(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass  # it exited meanwhile
    except PermissionError as exc:
        raise DaemonError(
            f"not allowed to signal pid {pid}; stop it as the user that runs it"
        ) from exc


def _open_log(path: Path) -> int:
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError as exc:
        raise DaemonError(
            f"cannot open the log file {path}: {exc.strerror}; check that its "
            "directory exists and is writable"
        ) from exc


def _become_daemon(log_fd: int) -> None:
    """In the first child: leave the session, fork again, redirect output."""
    os.setsid()
    # The session leader exits, so the daemon can never acquire a
    # controlling terminal; the waiting parent sees its exit at once.
    if os.fork():
        os._exit(0)

    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)


def _await_daemon(read_end: int, child: int) -> int:
    """In the caller: read the daemon's word, then reap the first child."""
    with os.fdopen(read_end, "rb") as pipe:
        word, _, detail = pipe.read().decode().partition(" ")
    os.waitpid(child, 0)

    if word == "ok":
        return int(detail)
    if word == "error":
        raise DaemonError(detail)
    raise DaemonError(
        "the daemon exited before it started; see its log file for the reason"
    )
