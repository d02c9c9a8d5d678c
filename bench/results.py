"""Figures: the samples of every repeat, kept in a JSON file.

A figure is named ``<row>/<metric>``, for example ``carrot.1x4/e2e``;
`bench.report` turns the file into the tables and the chart.
"""

from __future__ import annotations

import json
import math
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .services import BenchError

#: The figures of the last run; ignored by git.
RAW_PATH = Path(__file__).parent / "results" / "raw" / "latest.json"


class Results:
    """The samples of each figure, and the errors of runs that failed."""

    def __init__(self, path: Path = RAW_PATH) -> None:
        self.path = path
        self.data: dict[str, Any] = {"figures": {}, "errors": {}, "runs": {}}
        if path.exists():
            self.data = json.loads(path.read_text())
        self.run = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())

    def start_run(self, settings: Mapping[str, Any]) -> None:
        self.data["runs"][self.run] = {
            **settings,
            "python": platform.python_version(),
            "machine": platform.machine(),
        }

    def forget(self, prefix: str) -> None:
        """Drop the earlier figures of rows starting with ``prefix``.

        A system measured again keeps nothing from an earlier run, such as
        a drain of a count this run does not measure.
        """
        for key in [k for k in self.data["figures"] if k.startswith(prefix)]:
            del self.data["figures"][key]

    def add(self, key: str, value: float) -> None:
        figure = self.data["figures"].get(key)
        if figure is None or figure["run"] != self.run:
            figure = self.data["figures"][key] = {"run": self.run, "samples": []}
        figure["samples"].append(value)

    def fail(self, case: str, error: str) -> None:
        self.data["errors"][case] = {"run": self.run, "error": error}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=1, sort_keys=True))


def repeat(
    results: Results,
    case: str,
    times: int,
    measure: Callable[[], Mapping[str, float]],
) -> None:
    """Run ``measure`` ``times`` times and add each figure it returns.

    ``measure`` returns figures by metric; each is stored as
    ``<case>/<metric>``. A run that fails is reported and recorded, and
    the benchmark goes on with the next case.
    """
    row = case.split("/")[0]
    results.data["errors"].pop(case, None)
    for attempt in range(1, times + 1):
        started = time.monotonic()
        try:
            figures = measure()
        except Exception as exc:
            error = str(exc) if isinstance(exc, BenchError) else repr(exc)
            print(f"  {case}: run {attempt} failed: {error}")
            results.fail(case, error)
            results.save()
            return
        shown = ", ".join(f"{k} {v:,.1f}" for k, v in figures.items())
        print(f"  {case} run {attempt}: {shown} ({time.monotonic() - started:.0f} s)")
        for metric, value in figures.items():
            results.add(f"{row}/{metric}", value)
        results.save()


def summary(samples: list[float]) -> tuple[float, float, float]:
    """Return the median, the lowest and the highest sample."""
    return statistics.median(samples), min(samples), max(samples)


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile: the value ``fraction`` of them reach."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]
