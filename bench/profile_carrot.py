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
"""

from __future__ import annotations

import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import cases, services
from .process import stop_all
from .run_carrot import CarrotSystem, wait_published, wait_rows

PROFILE_PATH = Path(__file__).parent.parent / "docs" / "bench" / "profile.txt"
#: Functions listed per thread role, by cumulative time.
TOP_FUNCTIONS = 30


def run(count: int) -> None:
    print(f"profile: {count:,} carrot tasks, end to end and drain")
    folder = Path(tempfile.mkdtemp(prefix="carrot-bench-profile-"))
    sections = [_end_to_end(count, folder / "e2e"), _drain(count, folder / "drain")]
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
