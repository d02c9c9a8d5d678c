"""Worker processes of the systems under test: start, watch, stop.

Each runs in its own session with its output in a log file, so that a
stuck one can be ended with its children and read afterwards. Its
resident memory is sampled while it runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from .services import BenchError

#: Where worker logs go; ignored by git.
LOG_DIR = Path(__file__).parent / "results" / "raw" / "logs"
#: How often resident memory is read.
_RSS_EVERY_SECONDS = 0.25
#: How long a stopped worker may take to finish its running tasks.
_STOP_TIMEOUT_SECONDS = 30.0


class Worker:
    """One worker process: a command line, its log and its memory."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        *,
        announces_ready: bool = False,
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.announces_ready = announces_ready
        self.log_path = LOG_DIR / f"{name}.log"
        #: ``(seconds since start, RSS in MiB)``, while it runs.
        self.rss: list[tuple[float, float]] = []
        #: Highest RSS in MiB, read just before it is stopped.
        self.peak_rss_mib = 0.0
        self._process: subprocess.Popen[bytes] | None = None
        self._started = 0.0
        self._stopped = threading.Event()

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def start(self) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self._started = time.monotonic()
        self._process = subprocess.Popen(
            [sys.executable, *self.argv],
            env=self.env,
            stdout=subprocess.PIPE if self.announces_ready else log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        threading.Thread(target=self._sample, daemon=True).start()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait for the line ``ready`` on the worker's standard output."""
        assert self._process is not None and self._process.stdout is not None
        line: list[bytes] = []
        reader = threading.Thread(
            target=lambda: line.append(self._process.stdout.readline()),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        reader.join(timeout)
        if not line or line[0].strip() != b"ready":
            raise BenchError(
                f"{self.name} did not start within {timeout:.0f} s; see {self.log_path}"
            )

    def stop(self) -> None:
        """Send SIGTERM and wait; end the whole session if it hangs."""
        if self._process is None:
            return
        self.peak_rss_mib = max(self.peak_rss_mib, _read_status(self.pid, "VmHWM"))
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(_STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.pid, signal.SIGKILL)
            self._process.wait()
            raise BenchError(
                f"{self.name} did not stop within {_STOP_TIMEOUT_SECONDS:.0f} s "
                f"of SIGTERM; see {self.log_path}"
            ) from None
        finally:
            self._stopped.set()
            self._kill_leftovers()

    def rss_growth_mib(self, start_fraction: float = 0.2) -> float:
        """RSS at the end less RSS once ``start_fraction`` of the run passed."""
        if len(self.rss) < 2:
            return 0.0
        cut = self.rss[-1][0] * start_fraction
        early = next(rss for seconds, rss in self.rss if seconds >= cut)
        return self.rss[-1][1] - early

    def _sample(self) -> None:
        while not self._stopped.wait(_RSS_EVERY_SECONDS):
            rss = _read_status(self.pid, "VmRSS")
            if rss:
                self.rss.append((time.monotonic() - self._started, rss))

    def _kill_leftovers(self) -> None:
        # Children of a pool that outlived their parent belong to this run.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)


def stop_all(workers: list[Worker]) -> None:
    """Stop every worker, even when one fails to stop; then raise."""
    errors: list[BenchError] = []
    for worker in workers:
        try:
            worker.stop()
        except BenchError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


def _read_status(pid: int, field: str) -> float:
    """Return ``field`` of /proc/<pid>/status in MiB, or 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
