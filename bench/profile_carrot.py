"""Where carrot's time goes, per task: writes ``docs/bench/profile.txt``.

Two profiled runs of ``count`` tasks, one service process at concurrency
4, each under cProfile on every thread (which slows it; the unprofiled
figures are in the results table):

- *end to end*: a separate process creates the tasks one at a time while
  the service runs; both processes are profiled;
- *drain*: the tasks are queued first, then the service is started, so
  PostgreSQL's counters are the service's alone.

Beside the profiles: SQL statements by kind and the connections Django
opened, counted in each process, and PostgreSQL's own counters for the
benchmark database (transactions, sessions, rows) over each run.

Last, unprofiled and with no service running, what one ``create()``
costs: its INSERT statement, and the same INSERT committed without
waiting for the disk, beside a bare round trip to PostgreSQL. One process
creating tasks one at a time cannot go faster than this, whatever runs
them.
"""

from __future__ import annotations

import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.db import connection

from carrot.models import Task

from . import cases, services
from .process import stop_all
from .run_carrot import NOOP, CarrotSystem, wait_published, wait_rows

PROFILE_PATH = Path(__file__).parent.parent / "docs" / "bench" / "profile.txt"
#: Functions listed per thread role, by cumulative time.
TOP_FUNCTIONS = 30


def run(count: int) -> None:
    print(f"profile: {count:,} carrot tasks, end to end and drain")
    folder = Path(tempfile.mkdtemp(prefix="carrot-bench-profile-"))
    sections = [
        _end_to_end(count, folder / "e2e"),
        _drain(count, folder / "drain"),
        _create_cost(count),
    ]
    header = [
        f"carrot profile, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{count:,} no-op tasks, carrot at {services.git_describe()}",
        f"(written by python -m bench --profile; raw profiles in {folder})",
        (__doc__ or "").split("\n\n", 1)[1].strip(),
    ]
    PROFILE_PATH.parent.mkdir(parents=True, exist_ok=True)
    PROFILE_PATH.write_text("\n\n".join(header + sections) + "\n")
    print(f"  wrote {PROFILE_PATH}")


def _end_to_end(count: int, folder: Path) -> str:
    services.reset()
    system = CarrotSystem(1, profile_dir=folder / "service")
    workers = system.workers()
    try:
        system.start(workers)
        cases.warm_up(system)
        before = services.pg_stats()
        started = time.time()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.profile_enqueue",
                str(count),
                str(folder / "enqueue"),
            ],
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings"},
            check=True,
        )
        _, last = wait_rows("bench.tasks.noop", count)
    finally:
        stop_all(workers)
    after = services.pg_stats()

    timings = json.loads((folder / "enqueue" / "timings.json").read_text())
    lines = [
        _title(
            f"End to end: {count:,} tasks created one at a time while the service runs"
        ),
        f"profiled end to end: {count / (last - started):,.0f} tasks/s; "
        f"create() returned at {count / timings['create_seconds']:,.0f}/s, "
        f"published at {count / timings['publish_seconds']:,.0f}/s",
        _pg_lines(before, after, count, "both processes"),
        _process_lines("Creating process", folder / "enqueue", count),
        _process_lines("Service process", folder / "service", count),
    ]
    return "\n\n".join(lines)


def _drain(count: int, folder: Path) -> str:
    services.reset()
    system = CarrotSystem(1, profile_dir=folder / "service")
    system.prefill("run", count)
    wait_published()
    before = services.pg_stats()
    workers = system.workers()
    try:
        system.start(workers)
        first, last = wait_rows("bench.tasks.noop", count)
    finally:
        stop_all(workers)
    after = services.pg_stats()

    lines = [
        _title(f"Drain: {count:,} tasks queued first, then the service started"),
        f"profiled drain: {(count - 1) / (last - first):,.0f} tasks/s",
        _pg_lines(
            before, after, count, "the service alone, plus the benchmark's polling"
        ),
        _process_lines("Service process", folder / "service", count),
    ]
    return "\n\n".join(lines)


def _create_cost(count: int) -> str:
    services.reset()
    inserts: list[float] = []

    def time_insert(execute: Any, sql: str, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, *args)
        finally:
            if sql.startswith("INSERT"):
                inserts.append(time.perf_counter() - started)

    def create() -> None:
        Task.objects.create(kallable=NOOP)

    with connection.execute_wrapper(time_insert):
        creates = _timed(count, create)
        wait_published()
        durable, inserts[:] = list(inserts), []
        # For this connection only: what the commit's wait for the disk
        # costs. carrot never creates a task this way.
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit = off")
        try:
            relaxed_creates = _timed(count, create)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET synchronous_commit")
    wait_published()
    round_trips = _timed(count, _select_one)

    def ms(samples: list[float]) -> str:
        return f"{1000 * statistics.median(samples):6.3f}"

    return "\n".join(
        [
            _title(f"One create(): {count:,} created one at a time, no service"),
            "median ms each                     durable commit    no disk wait",
            f"  create(), publishing included   {ms(creates):>14}  "
            f"{ms(relaxed_creates):>14}",
            f"  its INSERT statement            {ms(durable):>14}  {ms(inserts):>14}",
            f"  SELECT 1, for the round trip    {ms(round_trips):>14}",
            f"create() one at a time, at most: {1 / statistics.median(creates):,.0f}/s",
        ]
    )


def _timed(count: int, call: Callable[[], object]) -> list[float]:
    """Seconds each of ``count`` calls took."""
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def _select_one() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _title(text: str) -> str:
    return f"{'=' * len(text)}\n{text}\n{'=' * len(text)}"


def _pg_lines(
    before: dict[str, int], after: dict[str, int], count: int, who: str
) -> str:
    lines = [f"PostgreSQL counters per task ({who}):"]
    for name, value in after.items():
        lines.append(f"  {name:<14} {(value - before[name]) / count:8.2f}")
    return "\n".join(lines)


def _process_lines(title: str, folder: Path, count: int) -> str:
    sql = json.loads((folder / "sql.json").read_text())
    lines = [
        f"{title}:",
        f"  Django connections opened per task: {sql['connections'] / count:.2f}",
        "  SQL per task (counted where Django sends it):",
        f"    {'statement':<40} {'per task':>8} {'ms each':>8} {'ms/task':>8}",
    ]
    kinds = sorted(sql["kinds"].items(), key=lambda item: -item[1][1])
    for kind, (calls, seconds) in kinds:
        lines.append(
            f"    {kind[:40]:<40} {calls / count:8.2f} "
            f"{1000 * seconds / calls:8.3f} {1000 * seconds / count:8.3f}"
        )
    for path in sorted(folder.glob("*.prof")):
        if path.stem.startswith("bench-"):
            continue  # the benchmark's own thread
        lines.append(_functions(path, count))
    return "\n".join(lines)


def _functions(path: Path, count: int) -> str:
    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    rows = sorted(stats.items(), key=lambda item: -item[1][3])[:TOP_FUNCTIONS]
    lines = [
        f"\n  Thread {path.stem}: top {TOP_FUNCTIONS} functions by cumulative time",
        f"    {'ms/task cum':>11} {'ms/task own':>11} {'calls/task':>10}  function",
    ]
    for (filename, line, name), (_, calls, own, cumulative, _) in rows:
        lines.append(
            f"    {1000 * cumulative / count:11.3f} {1000 * own / count:11.3f} "
            f"{calls / count:10.2f}  {name} ({_short(filename)}:{line})"
        )
    return "\n".join(lines)


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename
