"""Sessions that mirror CI: ``nox -s tests``, ``lint``, ``types``, ``demo``,
``docs`` and ``bench``."""

from __future__ import annotations

import os
import shutil
import subprocess

import nox

nox.options.sessions = ["tests", "lint", "types"]
nox.options.reuse_existing_virtualenvs = True


def _expose_pyenv_pythons() -> None:
    # pyenv's shims answer for the versions PYENV_VERSION names, and a shim
    # that runs nox sets it to one; adding every installed version lets
    # nox find python3.12 beside the default.
    if shutil.which("pyenv") is None:
        return
    installed = subprocess.run(
        ["pyenv", "versions", "--bare", "--skip-aliases"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    named = [v for v in os.environ.get("PYENV_VERSION", "").split(":") if v]
    versions = named + [v for v in installed if v not in named]
    if versions:
        os.environ["PYENV_VERSION"] = ":".join(versions)


_expose_pyenv_pythons()

#: The supported Django lines, each on the Python it is tested with.
DJANGO_LINES = [("3.11", "5.2"), ("3.12", "6.1")]

TEST_REQUIREMENTS = ["pytest>=8", "pytest-django>=4.8", "psycopg[binary]>=3.1"]


#: Tests that need PostgreSQL itself; the SQLite pass leaves them out.
POSTGRES_ONLY = "tests/test_postgres.py"


@nox.session
@nox.parametrize("python,django", DJANGO_LINES, ids=["django5.2", "django6.1"])
def tests(session: nox.Session, django: str) -> None:
    """Run the suite on SQLite, then its ``postgres`` tests on PostgreSQL.

    Both passes use the in-memory transport, RabbitMQ and Redis. The fault
    tests kill and restart brokers for minutes and exercise the service,
    not Django, so they run in the PostgreSQL pass of the first line only.
    Arguments after ``--`` go to both passes, for example ``-k worker``.
    """
    session.install("-e", ".[redis]", f"django~={django}.0", *TEST_REQUIREMENTS)
    # A selection given after -- may leave a pass with nothing to run (5).
    codes = [0, 5] if session.posargs else [0]
    marker = "postgres or faults" if django == DJANGO_LINES[0][1] else "postgres"
    passes = {
        "SQLite": (["-m", "not faults", "--ignore", POSTGRES_ONLY], {}),
        "PostgreSQL": (["-m", marker], {"CARROT_TEST_DATABASE": "postgres"}),
    }

    # Both passes run even when the first fails, so one CI run shows all.
    failed = []
    for name, (selection, env) in passes.items():
        try:
            session.run(
                "pytest", *selection, *session.posargs, env=env, success_codes=codes
            )
        except nox.command.CommandFailed:
            failed.append(name)
    if failed:
        session.error(f"tests failed on {' and '.join(failed)}")


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """Check formatting and lint with ruff."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.11")
def types(session: nox.Session) -> None:
    """Type-check the package with mypy and django-stubs."""
    session.install("-e", ".[redis]", "mypy", "django-stubs", *TEST_REQUIREMENTS)
    session.run("mypy")


@nox.session(python="3.11")
def demo(session: nox.Session) -> None:
    """Run the example shop: RabbitMQ on localhost if it answers, else memory."""
    session.install("-e", ".")
    session.run("python", "demo/manage.py", "rundemo", *session.posargs)


@nox.session(python="3.11")
def docs(session: nox.Session) -> None:
    """Build the HTML documentation; any warning fails the build."""
    session.install("-e", ".", "sphinx")
    session.run("sphinx-build", "-W", "-b", "html", "docs", "docs/_build/html")


#: What the benchmark compares carrot with; installed in its session only.
BENCH_REQUIREMENTS = [
    "psycopg[binary]>=3.1",
    "celery>=5.3,<6",
    "django-celery-results>=2.5",
    "dramatiq[rabbitmq]>=2",
    "huey>=3",
    "redis>=5",
    "matplotlib>=3.8",
]


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Measure carrot beside kombu, Celery, Dramatiq and Huey.

    Needs RabbitMQ, Redis and PostgreSQL on 127.0.0.1. Pass ``--quick``
    for a short run, ``--only carrot`` for one system; see bench/README.md.
    """
    session.install("-e", ".", *BENCH_REQUIREMENTS)
    session.run("python", "-m", "bench", *session.posargs)
