"""``manage.py carrot-workers``: run the workers, or find or stop them.

In the foreground by default, for systemd, Docker or supervisor;
``--detach`` runs them as a daemon that ``status`` and ``stop`` find
through its pid file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from carrot.core import CarrotError, daemon
from carrot.running import LOG_LEVELS, RunOptions, start

#: How long ``stop`` waits by default for running tasks to finish.
STOP_TIMEOUT_SECONDS = 60.0


class Command(BaseCommand):
    help = (
        "Run carrot's workers until SIGTERM or SIGINT (the first finishes "
        "the running tasks, the second stops at once); or, with a pid file, "
        "report or stop detached workers."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "action",
            nargs="?",
            choices=["start", "status", "stop"],
            default="start",
            help="What to do (default: start).",
        )
        parser.add_argument(
            "--worker",
            dest="workers",
            action="append",
            default=[],
            metavar="NAME",
            help="Run only this worker; repeat for more (default: every enabled one).",
        )
        parser.add_argument(
            "--broker", metavar="URL", help="Override CARROT_BROKER_URL."
        )
        parser.add_argument(
            "--loglevel", choices=LOG_LEVELS, default="info", help="Default: info."
        )
        parser.add_argument(
            "--detach", action="store_true", help="Run in the background as a daemon."
        )
        parser.add_argument(
            "--pidfile", type=Path, help="Where to write the process id."
        )
        parser.add_argument(
            "--logfile", type=Path, help="Where a detached worker writes its log."
        )
        parser.add_argument(
            "--now",
            action="store_true",
            help="With stop: stop at once, without finishing running tasks.",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=STOP_TIMEOUT_SECONDS,
            metavar="SECONDS",
            help="With stop: how long to wait for the worker to exit "
            "(default: %(default)s).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["action"] == "status":
                self._status(options["pidfile"])
            elif options["action"] == "stop":
                self._stop(options["pidfile"], options["timeout"], options["now"])
            else:
                self._start(options)
        except CarrotError as exc:
            raise CommandError(str(exc)) from exc

    def _start(self, options: dict[str, Any]) -> None:
        pid = start(
            RunOptions(
                workers=tuple(options["workers"]),
                broker_url=options["broker"],
                loglevel=options["loglevel"],
                detach=options["detach"],
                pidfile=options["pidfile"],
                logfile=options["logfile"],
            )
        )
        if pid is not None:
            self.stdout.write(
                f"carrot started as pid {pid}, logging to {options['logfile']}"
            )

    def _status(self, pidfile: Path | None) -> None:
        current = daemon.status(self._required(pidfile))
        if current.state is not daemon.State.RUNNING:
            # The exit statuses of an init script's status action.
            stale = current.state is daemon.State.STALE
            raise CommandError(str(current), returncode=1 if stale else 3)
        self.stdout.write(str(current))

    def _stop(self, pidfile: Path | None, timeout: float, now: bool) -> None:
        pid = daemon.stop(self._required(pidfile), timeout, immediate=now)
        self.stdout.write(f"carrot (pid {pid}) stopped")

    def _required(self, pidfile: Path | None) -> Path:
        if pidfile is None:
            raise CommandError("name the pid file of the workers with --pidfile")
        return pidfile
