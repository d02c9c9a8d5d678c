"""Huey 3 on Redis: one consumer with 4 worker threads."""

from __future__ import annotations

import os

from . import cases
from .cases import Sizes, System
from .huey_app import noop, stamp
from .process import Worker
from .results import Results, repeat


class HueySystem(System):
    row = "huey.1x4"

    def workers(self) -> list[Worker]:
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        argv = ["-m", "huey.bin.huey_consumer", "bench.huey_app.huey"]
        argv += [
            "--workers",
            "4",
            "--worker-type",
            "thread",
            "--no-periodic",
            "--quiet",
        ]
        return [Worker(self.row, argv, env)]

    def send(self, tag: str) -> None:
        noop(tag)

    def send_stamp(self, sent_at: float) -> None:
        stamp(sent_at)


def run(results: Results, sizes: Sizes) -> None:
    count, drain_count = sizes.count, sizes.drain_count
    repeats, samples = sizes.repeats, sizes.latency_samples
    print(f"Huey: {count:,} tasks, drain of {drain_count:,}")
    system = HueySystem()
    repeat(results, "huey.1x4/e2e", repeats, lambda: cases.end_to_end(system, count))
    repeat(
        results, "huey.1x4/drain", repeats, lambda: cases.drain(system, drain_count)[0]
    )
    repeat(results, "huey.1x4/latency", repeats, lambda: cases.latency(system, samples))
