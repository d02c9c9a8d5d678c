"""Run the service from a command: checks, logging, daemon, exit.

``carrot worker`` and ``manage.py carrot-workers`` share this module; it
needs Django set up. Mistakes in the options are found here, before
anything detaches, so that they reach the terminal.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from django.db import DatabaseError, connections
from kombu.connection import Connection
from kombu.utils.url import maybe_sanitize_url

from .conf import get_config
from .core import CarrotError
from .core.daemon import PidFile, detach
from .models import Worker
from .utils import WorkerService

__all__ = [
    "LOG_FORMAT",
    "LOG_LEVELS",
    "InvalidOption",
    "RunOptions",
    "SetupError",
    "check",
    "configure_logging",
    "start",
]

logger = logging.getLogger(__name__)

#: Time, level, logger and message: enough to follow a task through a log.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: The levels ``--loglevel`` accepts.
LOG_LEVELS = ("debug", "info", "warning", "error")


class InvalidOption(CarrotError):
    """An option names a worker, broker or file that cannot be used."""


class SetupError(CarrotError):
    """The project cannot run workers yet: its settings or its database."""


@dataclass(frozen=True)
class RunOptions:
    """What a command asks of the service, as given on its command line."""

    #: Run only these workers; empty runs every enabled worker.
    workers: tuple[str, ...] = ()
    #: Overrides the ``CARROT_BROKER_URL`` setting.
    broker_url: str | None = None
    loglevel: str = "info"
    detach: bool = False
    pidfile: Path | None = None
    #: Where a detached service writes its output.
    logfile: Path | None = None


def start(options: RunOptions) -> int | None:
    """Run the service until it is stopped, here or as a daemon.

    With ``options.detach`` the calling process gets the daemon's pid
    back at once. Otherwise, and in the daemon, this returns None once the
    service has stopped after finishing its tasks; when it was stopped at
    once, the process exits with status 1 instead.
    """
    check(options)
    pidfile = PidFile(options.pidfile) if options.pidfile else None

    if options.detach:
        assert pidfile is not None and options.logfile is not None
        # The daemon must open its own database connections.
        connections.close_all()
        pid = detach(pidfile, options.logfile)
        if pid is not None:
            return pid
    elif pidfile is not None:
        pidfile.acquire()

    configure_logging(options.loglevel)
    try:
        interrupted = _run(options)
    finally:
        if pidfile is not None:
            pidfile.release()
    if interrupted:
        _exit_at_once()
    return None


def check(options: RunOptions) -> None:
    """Raise `InvalidOption` or `SetupError` for options that cannot work."""
    _check_files(options)
    _check_broker(options.broker_url)
    _check_workers(options.workers)


def configure_logging(level: str) -> None:
    """Log at ``level`` to standard error, unless logging is set up already.

    Handlers from the project's ``LOGGING`` setting are kept; the level
    applies to every logger that does not set its own.
    """
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)
    root.setLevel(level.upper())


def _check_files(options: RunOptions) -> None:
    if options.detach and (options.pidfile is None or options.logfile is None):
        raise InvalidOption(
            "--detach needs --pidfile and --logfile, so that the daemon can "
            "be found, stopped and followed"
        )
    if options.logfile is not None and not options.detach:
        raise InvalidOption(
            "--logfile applies only with --detach; in the foreground carrot "
            "logs to standard error"
        )


def _check_broker(broker_url: str | None) -> None:
    try:
        config = get_config()
    except (TypeError, ValueError) as exc:
        raise SetupError(
            f"carrot settings are not valid: {exc}; run 'manage.py check' for details"
        ) from exc

    url = broker_url or config.broker_url
    try:
        Connection(url).transport  # noqa: B018 - loads the transport
    except Exception as exc:
        source = "--broker" if broker_url else "CARROT_BROKER_URL"
        error = InvalidOption if broker_url else SetupError
        raise error(
            f"{source} {maybe_sanitize_url(url)!r} names a transport kombu "
            f"cannot load ({type(exc).__name__}: {exc}); use amqp://, "
            "redis:// or memory://, such as amqp://guest:guest@localhost:5672//"
        ) from exc


def _check_workers(names: Sequence[str]) -> None:
    try:
        known = dict(Worker.objects.values_list("name", "enabled"))
    except DatabaseError as exc:
        raise SetupError(
            f"cannot read the workers from the database ({exc}); check "
            "DATABASES and run 'manage.py migrate carrot'"
        ) from exc

    enabled = sorted(name for name, on in known.items() if on)
    for name in names:
        if name not in known:
            raise InvalidOption(
                f"no worker is named {name!r}; the enabled workers are "
                f"{', '.join(enabled) or 'none'}. Create it first, such as "
                f"with Worker.objects.create(name={name!r})"
            )
        if not known[name]:
            raise InvalidOption(
                f"worker {name!r} is disabled; set its 'enabled' field to run its tasks"
            )
    if not enabled:
        logger.warning(
            "no worker is enabled; the service waits until one is",
            extra={"action": "start"},
        )


def _run(options: RunOptions) -> bool:
    """Run the service; return whether it was stopped at once."""
    service = WorkerService(options.workers or None, broker_url=options.broker_url)
    service.start()
    return service.interrupted


def _exit_at_once() -> NoReturn:
    # The threads of the unfinished tasks still run and an ordinary exit
    # would wait for them: leave without waiting, after the last log line.
    logger.warning(
        "stopped at once; the tasks that were running did not finish",
        extra={"action": "stop"},
    )
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)
