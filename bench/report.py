"""Write the results: ``docs/bench/results.md``, ``.rst`` and ``.png``.

``python -m bench.report`` rewrites them from the figures of the last
run (``bench/results/raw/latest.json``) without measuring again.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .results import RAW_PATH, summary

DOCS = Path(__file__).parent.parent / "docs" / "bench"

#: The rows of the main table: figure prefix and what was measured.
ROWS = (
    ("kombu", "kombu alone: publish with confirms / consume with acks (ceiling)"),
    ("floor", "floor: psycopg and py-amqp alone, carrot's claim rule"),
    ("floor.ahead", "floor, claiming a whole prefetch ahead of the calls"),
    ("carrot.1x4", "carrot, 1 process x 4 (confirms, a row per task)"),
    ("carrot.2x4", "carrot, 2 processes x 4 (confirms, a row per task)"),
    ("carrot.1x16", "carrot, 1 process x 16 (confirms, a row per task)"),
    ("celery.plain", "Celery 5 threads x 4, no result store, no confirms"),
    ("celery.confirm", "Celery 5 threads x 4, confirm_publish"),
    ("celery.results", "Celery 5 threads x 4, django-celery-results"),
    ("dramatiq.1x4", "Dramatiq 2, 1 process x 4 threads, no confirms"),
    ("dramatiq.2x4", "Dramatiq 2, 2 processes x 4 threads, no confirms"),
    ("dramatiq.confirm", "Dramatiq 2, 1 process x 4 threads, confirm_delivery"),
    ("huey.1x4", "Huey 3 on Redis, 4 threads"),
)
#: The columns: metric and heading.
COLUMNS = (
    ("enqueue", "enqueue/s, idle"),
    ("enqueue_load", "enqueue/s, running"),
    ("e2e", "end to end/s"),
    ("drain", "drain/s"),
    ("p50", "p50 ms"),
    ("p99", "p99 ms"),
)
#: Ratios carrot must reach: name, carrot's figure, the peer's, at least.
RATIO_TARGETS = (
    (
        "end to end vs Dramatiq confirm_delivery",
        "carrot.1x4/e2e",
        "dramatiq.confirm/e2e",
        1.5,
    ),
    (
        "end to end vs Celery confirm_publish",
        "carrot.1x4/e2e",
        "celery.confirm/e2e",
        2.5,
    ),
    (
        "end to end vs Celery + django-celery-results",
        "carrot.1x4/e2e",
        "celery.results/e2e",
        10.0,
    ),
    (
        "drain, 1 process, vs Dramatiq 2 x 4",
        "carrot.1x4/drain",
        "dramatiq.2x4/drain",
        1.0,
    ),
    ("drain, 1 process, vs Huey", "carrot.1x4/drain", "huey.1x4/drain", 1.0),
    (
        "drain, 1 process, vs Celery without results",
        "carrot.1x4/drain",
        "celery.plain/drain",
        2.0,
    ),
)
#: RSS growth over the last 80 % of the largest drain that counts as flat.
FLAT_RSS_MIB = 10.0


def write(data: dict[str, Any]) -> None:
    """Write the Markdown and RST tables and the chart; print the table."""
    figures = {key: summary(value["samples"]) for key, value in data["figures"].items()}
    DOCS.mkdir(parents=True, exist_ok=True)
    markdown = _document(data, figures, _markdown_table)
    (DOCS / "results.md").write_text(markdown)
    # Sphinx reads every .rst file: the page that includes this one skips
    # the first two lines, which keep it out of the table of contents.
    rst = ":orphan:\n\n" + _document(data, figures, _rst_table)
    (DOCS / "results.rst").write_text(rst)
    _chart(figures, DOCS / "results.png")
    print(markdown)


def _document(
    data: dict[str, Any],
    figures: dict[str, tuple[float, float, float]],
    table: Callable[[list[str], list[list[str]]], str],
) -> str:
    parts = [
        _about(data),
        table(["system", *(title for _, title in COLUMNS)], _main_rows(figures)),
        table(["carrot", "median [range]"], _carrot_rows(figures)),
        table(
            ["carrot 1 x 4 compared with", "end to end", "drain"], _ratio_rows(figures)
        ),
        table(
            ["target", "measured", "needed", "the floor reaches", "verdict"],
            _target_rows(figures),
        ),
    ]
    errors = data.get("errors", {})
    if errors:
        failed = [
            [case, error["error"][:200]] for case, error in sorted(errors.items())
        ]
        parts.append(table(["case that failed", "why"], failed))
    return "\n\n".join(parts) + "\n"


def _about(data: dict[str, Any]) -> str:
    runs = data.get("runs", {})
    used = sorted({figure["run"] for figure in data["figures"].values()})
    lines = []
    for run in used:
        meta = runs.get(run, {})
        kind = (
            "quick run (1 repeat, small counts: not for comparison)"
            if meta.get("quick")
            else f"median of {meta.get('repeats', '?')} runs [lowest-highest]"
        )
        lines.append(
            f"Measured {run}, {kind}, in {meta.get('seconds', 0) / 60:.0f} min; "
            f"{meta.get('count', '?'):,} tasks sent one at a time, drains of "
            f"{meta.get('drain_count', '?'):,}; load average "
            f"{meta.get('load_before', '?')} before, {meta.get('load_after', '?')} "
            f"after; {meta.get('versions', '')}."
        )
    if len(used) > 1:
        lines.append("The figures come from several runs: compare with care.")
    return "\n\n".join(lines)


def _cell(figures: dict[str, tuple[float, float, float]], key: str) -> str:
    if key not in figures:
        return "-"
    median, low, high = figures[key]
    digits = 1 if median < 100 else 0
    if low == high:
        return f"{median:,.{digits}f}"
    return f"{median:,.{digits}f} [{low:,.{digits}f}-{high:,.{digits}f}]"


def _main_rows(figures: dict[str, tuple[float, float, float]]) -> list[list[str]]:
    return [
        [label, *(_cell(figures, f"{row}/{metric}") for metric, _ in COLUMNS)]
        for row, label in ROWS
    ]


def _carrot_rows(figures: dict[str, tuple[float, float, float]]) -> list[list[str]]:
    rows = [
        [
            "bulk_create, tasks/s, publishing included",
            _cell(figures, "carrot/bulk_create"),
        ],
        [
            "create() returns/s (publishing may go on)",
            _cell(figures, "carrot.1x4/create_returns"),
        ],
    ]
    counts = sorted(
        int(key.rsplit(".n", 1)[1])
        for key in figures
        if key.startswith("carrot.1x4/drain.n")
    )
    for count in counts:
        rows.append(
            [
                f"drain/s, 1 x 4, {count:,} tasks",
                _cell(figures, f"carrot.1x4/drain.n{count}"),
            ]
        )
        rows.append(
            [
                f"  peak RSS MiB, {count:,} tasks",
                _cell(figures, f"carrot.1x4/rss_peak_mib.n{count}"),
            ]
        )
        rows.append(
            [
                f"  RSS growth MiB, last 80 % of {count:,}",
                _cell(figures, f"carrot.1x4/rss_growth_mib.n{count}"),
            ]
        )
    return rows


def _ratio(
    figures: dict[str, tuple[float, float, float]], mine: str, theirs: str
) -> float | None:
    if mine not in figures or theirs not in figures or not figures[theirs][0]:
        return None
    return figures[mine][0] / figures[theirs][0]


def _ratio_rows(figures: dict[str, tuple[float, float, float]]) -> list[list[str]]:
    rows = []
    for row, label in ROWS:
        if row.startswith("carrot"):
            continue
        cells = []
        for metric in ("e2e", "drain"):
            theirs = f"{row}/{metric}"
            if row == "kombu":
                # The ceiling of what carrot does: publish, consume.
                theirs = "kombu/enqueue" if metric == "e2e" else "kombu/drain"
            ratio = _ratio(figures, f"carrot.1x4/{metric}", theirs)
            cells.append("-" if ratio is None else f"{ratio:.2f}x")
        if row == "kombu":
            label = "kombu alone (end to end vs publish, drain vs consume)"
        rows.append([label, *cells])
    return rows


def _target_rows(figures: dict[str, tuple[float, float, float]]) -> list[list[str]]:
    rows = []
    for name, mine, theirs, needed in RATIO_TARGETS:
        floor = "floor/" + mine.split("/", 1)[1]
        rows.append(
            _verdict(
                name,
                _ratio(figures, mine, theirs),
                needed,
                "x",
                _ratio(figures, floor, theirs),
            )
        )
    bulk = figures.get("carrot/bulk_create")
    floor = figures.get("floor/bulk_create")
    rows.append(
        _verdict(
            "bulk_create tasks/s", bulk and bulk[0], 5000, "/s", floor and floor[0]
        )
    )
    for metric in ("p50", "p99"):
        # Lower is better: Dramatiq's latency over carrot's must reach 1.
        theirs = f"dramatiq.1x4/{metric}"
        rows.append(
            _verdict(
                f"latency {metric}, Dramatiq's / carrot's",
                _ratio(figures, theirs, f"carrot.1x4/{metric}"),
                1.0,
                "x",
                _ratio(figures, theirs, f"floor/{metric}"),
            )
        )
    counts = sorted(
        int(key.rsplit(".n", 1)[1])
        for key in figures
        if key.startswith("carrot.1x4/drain.n")
    )
    if len(counts) >= 2:
        small, large = counts[0], counts[-1]
        ratio = _ratio(
            figures, f"carrot.1x4/drain.n{large}", f"carrot.1x4/drain.n{small}"
        )
        rows.append(_verdict(f"drain at {large:,} / at {small:,}", ratio, 0.9, "x"))
        growth = figures.get(f"carrot.1x4/rss_growth_mib.n{large}")
        verdict = (
            "-"
            if growth is None
            else ("met" if growth[0] <= FLAT_RSS_MIB else "not met")
        )
        shown = "-" if growth is None else f"{growth[0]:.1f} MiB"
        rows.append(
            [
                f"RSS flat over the {large:,} drain",
                shown,
                f"<= {FLAT_RSS_MIB:.0f} MiB",
                "-",
                verdict,
            ]
        )
    return rows


def _verdict(
    name: str,
    value: float | None,
    needed: float,
    unit: str,
    floor: float | None = None,
) -> list[str]:
    """A target's row; ``floor`` is the same ratio reached by the floor.

    A target the floor misses cannot be met by carrot on this machine: the
    floor does less than carrot must.
    """
    digits = 0 if unit == "/s" else 2
    reached = "-" if floor is None else f"{floor:,.{digits}f}{unit}"
    if value is None:
        return [name, "not measured", f">= {needed:g}{unit}", reached, "-"]
    if value >= needed:
        verdict = "met"
    elif floor is not None and floor < needed:
        verdict = "out of reach here"
    else:
        verdict = "not met"
    shown = f"{value:,.{digits}f}{unit}"
    return [name, shown, f">= {needed:g}{unit}", reached, verdict]


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _rst_table(header: list[str], rows: list[list[str]]) -> str:
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines.append(f"   * - {_rst_escape(row[0])}")
        lines += [f"     - {_rst_escape(cell)}" for cell in row[1:]]
    return "\n".join(lines)


def _rst_escape(text: str) -> str:
    # A lone "-" would start a bullet list; indentation, a block quote.
    text = text.strip().replace("*", "\\*").replace("_", "\\_")
    return "\\" + text if text.startswith("-") or not text else text


def _chart(figures: dict[str, tuple[float, float, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (
        ("e2e", "end to end, tasks/s"),
        ("drain", "drain, tasks/s"),
        ("p50", "latency p50, ms"),
    )
    figure, axes = plt.subplots(1, len(panels), figsize=(15, 5.5))
    for axis, (metric, title) in zip(axes, panels, strict=True):
        names, medians, errors, colours = [], [], [[], []], []
        for row, _ in ROWS:
            key = f"{row}/{metric}"
            if key not in figures or row == "kombu":
                continue
            median, low, high = figures[key]
            names.append(row)
            medians.append(median)
            errors[0].append(median - low)
            errors[1].append(high - median)
            colours.append("tab:orange" if row.startswith("carrot") else "tab:gray")
        axis.barh(names, medians, xerr=errors, color=colours, capsize=3)
        axis.invert_yaxis()
        axis.set_title(title)
        axis.grid(axis="x", alpha=0.3)
    figure.suptitle("carrot beside its peers (median, range of the repeats)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else RAW_PATH
    write(json.loads(path.read_text()))
