"""Celery 5 with the threads pool at concurrency 4, in three variants."""

from __future__ import annotations

import os
import time

from . import cases, services
from .cases import Sizes, Stall, System
from .celery_app import make_app
from .process import Worker
from .results import Results, repeat


class CelerySystem(System):
    def __init__(self, variant: str) -> None:
        self.variant = variant
        self.row = f"celery.{variant}"
        self.app = make_app(variant)

    def workers(self) -> list[Worker]:
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        env["CARROT_BENCH_CELERY"] = self.variant
        argv = ["-m", "celery", "-A", "bench.celery_app", "worker", "-P", "threads"]
        argv += ["-c", "4", "-Q", services.CELERY_QUEUE, "-l", "WARNING"]
        argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        return [Worker(self.row, argv, env)]

    def send(self, tag: str) -> None:
        self.app.send_task("bench.noop", args=[tag], queue=services.CELERY_QUEUE)

    def send_stamp(self, sent_at: float) -> None:
        self.app.send_task("bench.stamp", args=[sent_at], queue=services.CELERY_QUEUE)

    def wait_finished(self, tag: str, count: int) -> tuple[float, float]:
        if self.variant != "results":
            return cases.wait_probe(tag, count)
        span = wait_result_rows(count)
        if tag.startswith("warmup"):
            services.truncate_tables()
        return span

    def close(self) -> None:
        self.app.close()


def wait_result_rows(count: int) -> tuple[float, float]:
    """Wait for ``count`` result rows; return the first and last stored."""
    from django.db.models import Max, Min
    from django_celery_results.models import TaskResult

    rows = TaskResult.objects.all()
    stall = Stall(f"{count:,} Celery result rows")
    while (stored := rows.count()) < count:
        stall.check(stored)
        time.sleep(0.25)
    span = rows.aggregate(first=Min("date_done"), last=Max("date_done"))
    return span["first"].timestamp(), span["last"].timestamp()


def run(results: Results, sizes: Sizes) -> None:
    count, drain_count = sizes.count, sizes.drain_count
    repeats, samples = sizes.repeats, sizes.latency_samples
    print(f"Celery: {count:,} tasks, drain of {drain_count:,}")
    plain = CelerySystem("plain")
    repeat(results, "celery.plain/e2e", repeats, lambda: cases.end_to_end(plain, count))
    repeat(
        results,
        "celery.plain/drain",
        repeats,
        lambda: cases.drain(plain, drain_count)[0],
    )
    repeat(
        results,
        "celery.plain/latency",
        repeats,
        lambda: cases.latency(plain, samples),
    )
    plain.close()
    for variant in ("confirm", "results"):
        system = CelerySystem(variant)
        repeat(
            results,
            f"{system.row}/e2e",
            repeats,
            lambda system=system: cases.end_to_end(system, count),  # type: ignore[misc]
        )
        system.close()
