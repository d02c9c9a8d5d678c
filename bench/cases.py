"""The workloads every system runs, measured the same way for each.

- *end to end*: the workers run; N tasks are sent one at a time, as a web
  app would; the figure is N over the time from the first send to the
  last task finished.
- *drain*: N tasks are sent first; then the workers start; the figure is
  N - 1 over the time from the first task finished to the last, which
  leaves process start-up out.
- *latency*: the workers idle; one task at a time records, at its start,
  how long ago it was sent.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import redis

from . import probe, services
from .process import Worker, stop_all
from .results import percentile
from .services import BenchError

#: How long a run may go without a task finishing before it is abandoned.
STALL_SECONDS = 60.0
#: Tasks run before a measurement, so that every worker thread is warm.
WARMUP_TASKS = 8
#: Pause after each latency sample, so that the next meets an idle system.
IDLE_GAP_SECONDS = 0.02


@dataclass(frozen=True)
class Sizes:
    """How many tasks each case uses, and how often it repeats."""

    repeats: int
    #: Tasks sent one at a time: enqueue and end to end, every system.
    count: int
    #: Tasks queued before the workers start, every system.
    drain_count: int
    #: carrot's drains, to show how its cost grows with the table.
    drain_counts: tuple[int, ...]
    bulk_count: int
    latency_samples: int
    profile_count: int


class System:
    """A system under test: how to start its workers and send it tasks.

    The defaults count finished tasks through `bench.probe`; carrot and
    Celery's result store read their database instead.
    """

    #: The row of the results table, e.g. ``celery.plain``.
    row = ""

    def workers(self) -> list[Worker]:
        """Return the worker processes to start, not yet started."""
        raise NotImplementedError

    def send(self, tag: str) -> None:
        """Send one no-op task of the run ``tag``."""
        raise NotImplementedError

    def send_stamp(self, sent_at: float) -> None:
        """Send one task that reports the latency since ``sent_at``."""
        raise NotImplementedError

    def prefill(self, tag: str, count: int) -> None:
        for _ in range(count):
            self.send(tag)
        self.flush()

    def flush(self) -> None:
        """Return once every task sent so far is on the broker."""

    def wait_finished(self, tag: str, count: int) -> tuple[float, float]:
        """Wait for ``count`` tasks of ``tag``; return first and last finish."""
        return wait_probe(tag, count)

    def start(self, workers: list[Worker]) -> None:
        for worker in workers:
            worker.start()
        for worker in workers:
            if worker.announces_ready:
                worker.wait_ready()

    def close(self) -> None:
        """Release the connections the system's client holds."""


def end_to_end(system: System, count: int) -> dict[str, float]:
    services.reset()
    workers = system.workers()
    try:
        system.start(workers)
        warm_up(system)
        tag = _tag()
        started = time.time()
        for _ in range(count):
            system.send(tag)
        system.flush()
        sent = time.time()
        _, last = system.wait_finished(tag, count)
    finally:
        stop_all(workers)
    return {"e2e": count / (last - started), "enqueue_load": count / (sent - started)}


def drain(system: System, count: int) -> tuple[dict[str, float], list[Worker]]:
    """Measure a drain; also return the stopped workers, for their memory."""
    services.reset()
    tag = _tag()
    started = time.time()
    system.prefill(tag, count)
    filled = time.time()
    workers = system.workers()
    try:
        system.start(workers)
        first, last = system.wait_finished(tag, count)
    finally:
        stop_all(workers)
    figures = {
        "drain": (count - 1) / (last - first),
        "enqueue": count / (filled - started),
    }
    return figures, workers


def latency(system: System, count: int) -> dict[str, float]:
    """Return the p50 and p99 of ``count`` latencies, in milliseconds."""
    services.reset()
    client = redis.Redis.from_url(services.REDIS_URL)
    workers = system.workers()
    try:
        system.start(workers)
        warm_up(system)
        samples = []
        for _ in range(count):
            system.send_stamp(time.time())
            popped = client.blpop([probe.LATENCY_KEY], timeout=STALL_SECONDS)
            if popped is None:
                raise BenchError(f"{system.row}: a latency task never started")
            samples.append(float(popped[1]) * 1000)
            time.sleep(IDLE_GAP_SECONDS)
    finally:
        stop_all(workers)
        client.close()
    return {"p50": percentile(samples, 0.50), "p99": percentile(samples, 0.99)}


def warm_up(system: System) -> None:
    tag = _tag("warmup")
    for _ in range(WARMUP_TASKS):
        system.send(tag)
    system.wait_finished(tag, WARMUP_TASKS)


def wait_probe(tag: str, count: int) -> tuple[float, float]:
    """Wait until the probe counts ``count`` tasks of ``tag`` finished."""
    client = redis.Redis.from_url(services.REDIS_URL)
    try:
        waiter = Stall(f"tasks of {tag}")
        while True:
            entries = [
                value.split()
                for value in client.hvals(probe.counts_key(tag))  # type: ignore[union-attr]
            ]
            finished = sum(int(entry[0]) for entry in entries)
            if finished >= count:
                first = min(float(entry[1]) for entry in entries)
                return first, max(float(entry[2]) for entry in entries)
            waiter.check(finished)
            time.sleep(0.02)
    finally:
        client.close()


class Stall:
    """Raise when a count has not moved for `STALL_SECONDS`."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.last = -1
        self.since = time.monotonic()

    def check(self, count: int) -> None:
        now = time.monotonic()
        if count != self.last:
            self.last, self.since = count, now
        elif now - self.since > STALL_SECONDS:
            raise BenchError(
                f"no progress for {STALL_SECONDS:.0f} s waiting for {self.what} "
                f"({count} finished); see the worker logs in bench/results/raw/logs"
            )


def _tag(kind: str = "run") -> str:
    return f"{kind}-{uuid.uuid4().hex[:8]}"
