"""The ``carrot`` command: run the service, and find or stop a daemon.

The commands only read options and report; `carrot.running` and
`carrot.core.daemon` do the work.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from .core import CarrotError, daemon

__all__ = ["carrot", "main"]

#: How long ``carrot stop`` waits by default for running tasks to finish.
STOP_TIMEOUT_SECONDS = 60.0

_PIDFILE = click.Path(dir_okay=False, path_type=Path)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def carrot() -> None:
    """Run carrot's workers, and find or stop them when detached."""


@carrot.command()
@click.option(
    "--settings",
    envvar="DJANGO_SETTINGS_MODULE",
    metavar="MODULE",
    help="The Django settings module, such as mysite.settings "
    "(default: $DJANGO_SETTINGS_MODULE).",
)
@click.option(
    "--pythonpath",
    type=click.Path(exists=True, file_okay=False),
    help="A directory to add to the Python path.",
)
@click.option(
    "--worker",
    "workers",
    multiple=True,
    metavar="NAME",
    help="Run only this worker; repeat for more (default: every enabled one).",
)
@click.option("--broker", metavar="URL", help="Override CARROT_BROKER_URL.")
@click.option(
    "--loglevel",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="info",
    show_default=True,
)
@click.option("--detach", is_flag=True, help="Run in the background as a daemon.")
@click.option("--pidfile", type=_PIDFILE, help="Where to write the process id.")
@click.option(
    "--logfile",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where a detached worker writes its log.",
)
def worker(
    settings: str | None,
    pythonpath: str | None,
    workers: tuple[str, ...],
    broker: str | None,
    loglevel: str,
    detach: bool,
    pidfile: Path | None,
    logfile: Path | None,
) -> None:
    """Run the workers until SIGTERM or SIGINT.

    The first signal finishes the running tasks, the second stops at once.
    """
    _setup_django(settings, pythonpath)
    from . import running

    options = running.RunOptions(
        workers=workers,
        broker_url=broker,
        loglevel=loglevel.lower(),
        detach=detach,
        pidfile=pidfile,
        logfile=logfile,
    )
    with _reported(running.InvalidOption):
        pid = running.start(options)
    if pid is not None:
        click.echo(f"carrot started as pid {pid}, logging to {logfile}")


@carrot.command()
@click.option("--pidfile", type=_PIDFILE, required=True)
def status(pidfile: Path) -> None:
    """Tell whether a detached worker runs.

    Exits with 0 when it runs, 1 when the pid file is stale and 3 when
    there is no pid file.
    """
    with _reported():
        current = daemon.status(pidfile)
    click.echo(str(current))
    codes = {daemon.State.RUNNING: 0, daemon.State.STALE: 1}
    sys.exit(codes.get(current.state, 3))


@carrot.command()
@click.option("--pidfile", type=_PIDFILE, required=True)
@click.option(
    "--now", is_flag=True, help="Stop at once, without finishing running tasks."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=STOP_TIMEOUT_SECONDS,
    show_default=True,
    help="Seconds to wait for the worker to exit.",
)
def stop(pidfile: Path, now: bool, timeout: float) -> None:
    """Stop a detached worker, letting its running tasks finish."""
    with _reported():
        pid = daemon.stop(pidfile, timeout, immediate=now)
    click.echo(f"carrot (pid {pid}) stopped")


def main() -> None:
    """The ``carrot`` console script."""
    carrot(prog_name="carrot")


def _setup_django(settings: str | None, pythonpath: str | None) -> None:
    """Set Django up as ``manage.py`` would from the current directory."""
    if not settings:
        raise click.UsageError(
            "name the Django settings module with --settings=mysite.settings "
            "or DJANGO_SETTINGS_MODULE"
        )
    for directory in (os.getcwd(), pythonpath):
        if directory and os.path.abspath(directory) not in sys.path:
            sys.path.insert(0, os.path.abspath(directory))
    try:
        importlib.import_module(settings)
    except ImportError as exc:
        raise click.UsageError(
            f"cannot import the settings module {settings!r} ({exc}); run "
            "carrot from your project's directory or pass --pythonpath"
        ) from exc

    import django
    from django.core.exceptions import ImproperlyConfigured

    os.environ["DJANGO_SETTINGS_MODULE"] = settings
    try:
        django.setup()
    except ImproperlyConfigured as exc:
        raise click.ClickException(f"the Django settings are wrong: {exc}") from exc


@contextmanager
def _reported(*usage_errors: type[CarrotError]) -> Iterator[None]:
    """Turn carrot's errors into messages; ``usage_errors`` exit with 2."""
    try:
        yield
    except usage_errors as exc:
        raise click.UsageError(str(exc)) from exc
    except CarrotError as exc:
        raise click.ClickException(str(exc)) from exc
