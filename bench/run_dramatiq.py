"""Dramatiq 2 on RabbitMQ: 1 or 2 processes of 4 threads."""

from __future__ import annotations

import os

from . import cases, services
from .cases import Sizes, System
from .dramatiq_app import make_broker, send
from .process import Worker
from .results import Results, repeat


class DramatiqSystem(System):
    def __init__(self, processes: int, confirm: bool = False) -> None:
        self.processes = processes
        self.confirm = confirm
        self.row = "dramatiq.confirm" if confirm else f"dramatiq.{processes}x4"
        self.broker = make_broker(confirm)

    def workers(self) -> list[Worker]:
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        env["CARROT_BENCH_DRAMATIQ_CONFIRM"] = "1" if self.confirm else "0"
        argv = ["-m", "dramatiq", "bench.dramatiq_app", "--threads", "4"]
        argv += ["--processes", str(self.processes)]
        argv += ["--queues", services.DRAMATIQ_QUEUE]
        return [Worker(self.row, argv, env)]

    def send(self, tag: str) -> None:
        send(self.broker, "noop", tag)

    def send_stamp(self, sent_at: float) -> None:
        send(self.broker, "stamp", sent_at)

    def close(self) -> None:
        self.broker.close()


def run(results: Results, sizes: Sizes) -> None:
    count, drain_count = sizes.count, sizes.drain_count
    repeats, samples = sizes.repeats, sizes.latency_samples
    print(f"Dramatiq: {count:,} tasks, drain of {drain_count:,}")
    for processes in (1, 2):
        system = DramatiqSystem(processes)
        repeat(
            results,
            f"{system.row}/e2e",
            repeats,
            lambda system=system: cases.end_to_end(system, count),  # type: ignore[misc]
        )
        repeat(
            results,
            f"{system.row}/drain",
            repeats,
            lambda system=system: cases.drain(system, drain_count)[0],  # type: ignore[misc]
        )
        if processes == 1:
            repeat(
                results,
                f"{system.row}/latency",
                repeats,
                lambda system=system: cases.latency(system, samples),  # type: ignore[misc]
            )
        system.close()

    confirm = DramatiqSystem(1, confirm=True)
    repeat(
        results,
        "dramatiq.confirm/e2e",
        repeats,
        lambda: cases.end_to_end(confirm, count),
    )
    confirm.close()
