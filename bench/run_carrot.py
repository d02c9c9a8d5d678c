"""carrot: enqueue rates, end to end, drain, latency and memory.

The service runs as ``python -m bench.carrot_service``: one process at
concurrency 4 (the ``default`` worker's), or two such processes; for the
drain also one process at concurrency 16, to show what sharing each
commit among more tasks gives. The benchmark process creates the tasks
through the ORM, as an application would, and reads their rows to know
when they have finished.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from django.db.models import Max, Min

from carrot import publishing
from carrot.models import Task
from carrot.models import Worker as WorkerRow

from . import cases, services
from .cases import Sizes, Stall, System
from .process import Worker
from .results import Results, repeat
from .services import BenchError

#: Tasks per ``bulk_create`` call when a queue is filled beforehand.
BULK_BATCH = 10_000
NOOP = "bench.tasks.noop"
WARMUP = "bench.tasks.warmup"
STAMP = "bench.tasks.stamp"
#: Longest wait for the broker to confirm what was created; 50,000 tasks
#: from ``bulk_create`` take a while on a busy machine.
PUBLISH_TIMEOUT_SECONDS = 600.0
#: How often the rows are counted while tasks run; the figures come from
#: the rows' timestamps, so this only delays the end of a run.
POLL_SECONDS = 0.25


class CarrotSystem(System):
    """carrot's service in ``processes`` processes of ``concurrency``."""

    def __init__(
        self,
        processes: int = 1,
        profile_dir: Path | None = None,
        *,
        concurrency: int = 4,
    ) -> None:
        self.processes = processes
        self.concurrency = concurrency
        self.row = f"carrot.{processes}x{concurrency}"
        self.profile_dir = profile_dir

    def workers(self) -> list[Worker]:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings"}
        if self.profile_dir is not None:
            env["CARROT_BENCH_PROFILE"] = str(self.profile_dir)
        return [
            Worker(
                f"{self.row}-{index}",
                ["-m", "bench.carrot_service"],
                env,
                announces_ready=True,
            )
            for index in range(self.processes)
        ]

    def start(self, workers: list[Worker]) -> None:
        # The worker row outlives every run, so each run sets the
        # concurrency it measures.
        WorkerRow.objects.filter(name="default").update(concurrency=self.concurrency)
        super().start(workers)

    def send(self, tag: str) -> None:
        Task.objects.create(kallable=WARMUP if tag.startswith("warmup") else NOOP)

    def send_stamp(self, sent_at: float) -> None:
        Task.objects.create(kallable=STAMP, args=[sent_at])

    def prefill(self, tag: str, count: int) -> None:
        for start in range(0, count, BULK_BATCH):
            size = min(BULK_BATCH, count - start)
            Task.objects.bulk_create(Task(kallable=NOOP) for _ in range(size))
        self.flush()

    def flush(self) -> None:
        wait_published()

    def wait_finished(self, tag: str, count: int) -> tuple[float, float]:
        kallable = WARMUP if tag.startswith("warmup") else NOOP
        return wait_rows(kallable, count)


def wait_rows(kallable: str, count: int) -> tuple[float, float]:
    """Wait for ``count`` finished rows; return first and last finish."""
    rows = Task.objects.filter(kallable=kallable)
    # Counting the rows still to run reads a shrinking index of unfinished
    # rows, so that polling costs the service little.
    unfinished = rows.filter(finished_at__isnull=True)
    stall = Stall(f"{count:,} carrot tasks")
    while (left := unfinished.count()) or rows.count() < count:
        stall.check(left)
        time.sleep(POLL_SECONDS)

    failed = rows.filter(status=Task.Status.FAILED).first()
    if failed is not None:
        raise BenchError(f"carrot task {failed.pk} failed: {failed.error}")
    span = rows.aggregate(first=Min("finished_at"), last=Max("finished_at"))
    return span["first"].timestamp(), span["last"].timestamp()


def run(results: Results, sizes: Sizes) -> None:
    print(f"carrot: {sizes.count:,} tasks, drains of {sizes.drain_counts}")
    one, two = CarrotSystem(1), CarrotSystem(2)
    repeat(results, "carrot.1x4/create", sizes.repeats, lambda: _create(sizes.count))
    repeat(results, "carrot/bulk", sizes.repeats, lambda: _bulk(sizes.bulk_count))
    for system in (one, two):
        repeat(
            results,
            f"{system.row}/e2e",
            sizes.repeats,
            lambda system=system: cases.end_to_end(system, sizes.count),  # type: ignore[misc]
        )
    for count in sizes.drain_counts:
        repeat(
            results,
            f"carrot.1x4/drain.n{count}",
            sizes.repeats,
            lambda count=count: _drain_with_memory(one, count, sizes),  # type: ignore[misc]
        )
    for system in (two, CarrotSystem(1, concurrency=16)):
        repeat(
            results,
            f"{system.row}/drain",
            sizes.repeats,
            lambda system=system: {  # type: ignore[misc]
                "drain": cases.drain(system, sizes.drain_count)[0]["drain"]
            },
        )
    repeat(
        results,
        "carrot.1x4/latency",
        sizes.repeats,
        lambda: cases.latency(one, sizes.latency_samples),
    )


def time_creates(count: int) -> tuple[float, float]:
    """Create ``count`` tasks one at a time; seconds until returned, published."""
    started = time.perf_counter()
    for _ in range(count):
        Task.objects.create(kallable=NOOP)
    returned = time.perf_counter()
    wait_published()
    return returned - started, time.perf_counter() - started


def _create(count: int) -> dict[str, float]:
    services.reset()
    returned, published = time_creates(count)
    return {
        "enqueue": count / published,
        "create_returns": count / returned,
    }


def _bulk(count: int) -> dict[str, float]:
    services.reset()
    started = time.perf_counter()
    Task.objects.bulk_create(Task(kallable=NOOP) for _ in range(count))
    wait_published()
    return {"bulk_create": count / (time.perf_counter() - started)}


def wait_published() -> None:
    """Wait until the broker confirmed every task this process created.

    Where carrot publishes in the background, ``create()`` returns before
    the broker has the message; an enqueue rate counts the publishing.
    """
    flush = getattr(publishing, "flush", None)
    if flush is not None and not flush(PUBLISH_TIMEOUT_SECONDS):
        raise BenchError(
            f"tasks still unpublished after {PUBLISH_TIMEOUT_SECONDS:.0f} s"
        )


def _drain_with_memory(
    system: CarrotSystem, count: int, sizes: Sizes
) -> dict[str, float]:
    figures, workers = cases.drain(system, count)
    service = workers[0]
    measured = {
        f"drain.n{count}": figures["drain"],
        f"rss_peak_mib.n{count}": service.peak_rss_mib,
        f"rss_growth_mib.n{count}": service.rss_growth_mib(),
    }
    if count == sizes.drain_count:
        measured["drain"] = figures["drain"]
    return measured
