"""``python -m bench``: measure, then write the tables and the chart.

Options: ``--quick`` for small counts and one repeat while developing;
``--only carrot celery`` to measure some systems (the others keep the
figures of their last run); ``--profile`` to profile carrot as well.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import socket
import sys
import time
import traceback

from . import services
from .cases import Sizes
from .results import Results

SYSTEMS = ("kombu", "floor", "carrot", "celery", "dramatiq", "huey", "profile")


#: The full run: every figure the median of 3.
FULL = Sizes(3, 5_000, 10_000, (1_000, 10_000, 50_000), 10_000, 300, 3_000)
#: A quick run to try changes: figures to read, not to compare.
QUICK = Sizes(1, 500, 1_000, (200, 1_000), 2_000, 30, 300)


def main(argv: list[str] | None = None) -> int:
    options = _parse(argv)
    sizes = QUICK if options.quick else FULL
    if options.repeats:
        sizes = dataclasses.replace(sizes, repeats=options.repeats)
    only = set(options.only or SYSTEMS[:-1])
    if options.profile:
        only.add("profile")

    _check_servers()
    _set_up_django()
    results = Results()
    results.start_run(
        {
            "quick": options.quick,
            "systems": sorted(only),
            "versions": services.versions(),
            "load_before": _load(),
            **dataclasses.asdict(sizes),
        }
    )
    started = time.monotonic()
    try:
        _measure(results, only, sizes)
    finally:
        services.purge_queues(services.QUEUES, delete=True)
        services.clear_redis()
        elapsed = time.monotonic() - started
        run = results.data["runs"][results.run]
        run["seconds"] = round(elapsed)
        run["load_after"] = _load()
        results.save()

    from . import report

    report.write(results.data)
    print(f"measured in {elapsed / 60:.1f} min")
    return 0


def _measure(results: Results, only: set[str], sizes: Sizes) -> None:
    for system in SYSTEMS:
        if system not in only:
            continue
        if system != "profile":  # which writes no figure
            results.forget(system)
        try:
            _measure_one(system, results, sizes)
        except Exception as exc:
            traceback.print_exc()
            results.fail(system, repr(exc))


def _measure_one(system: str, results: Results, sizes: Sizes) -> None:
    from . import run_carrot, run_kombu

    if system == "kombu":
        run_kombu.run(results, sizes)
    elif system == "floor":
        from . import run_floor

        run_floor.run(results, sizes)
    elif system == "carrot":
        run_carrot.run(results, sizes)
    elif system == "celery":
        from . import run_celery

        run_celery.run(results, sizes)
    elif system == "dramatiq":
        from . import run_dramatiq

        run_dramatiq.run(results, sizes)
    elif system == "huey":
        from . import run_huey

        run_huey.run(results, sizes)
    elif system == "profile":
        from . import profile_carrot

        profile_carrot.run(sizes.profile_count)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts, 1 repeat")
    parser.add_argument(
        "--only", nargs="+", choices=SYSTEMS, metavar="SYSTEM", help=", ".join(SYSTEMS)
    )
    parser.add_argument("--profile", action="store_true", help="profile carrot too")
    parser.add_argument("--repeats", type=int, help="repeats of every figure")
    return parser.parse_args(argv)


def _load() -> str:
    # Other work on the machine skews every figure; the report says how much.
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def _check_servers() -> None:
    for name, port in (("RabbitMQ", 5672), ("Redis", 6379), ("PostgreSQL", 5432)):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError as exc:
            sys.exit(f"{name} is not answering on 127.0.0.1:{port} ({exc}); start it")


def _set_up_django() -> None:
    services.ensure_database()
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    # Queues left by an earlier run may have been declared differently.
    services.purge_queues(services.QUEUES, delete=True)


if __name__ == "__main__":
    sys.exit(main())
