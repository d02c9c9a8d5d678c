"""Where the servers are, and how each run starts from empty.

Everything talks to 127.0.0.1 only. Queue, key and table names are the
benchmark's own, so that a run never touches another project's data.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import subprocess
from pathlib import Path

import psycopg
import redis
from kombu import Connection

#: RabbitMQ, as every system reaches it.
BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
#: Redis: Huey's broker, and where peers report finished tasks.
REDIS_URL = "redis://127.0.0.1:6379/0"
#: PostgreSQL: carrot's rows and django-celery-results' rows.
PG_HOST = "127.0.0.1"
PG_USER = "postgres"
PG_DATABASE = "carrot_bench"

#: carrot's exchange and queue prefix; its one worker is ``default``.
CARROT_PREFIX = "carrot-bench"
KOMBU_QUEUE = "carrot-bench-kombu"
FLOOR_QUEUE = "carrot-bench-floor"
CELERY_QUEUE = "carrot-bench-celery"
DRAMATIQ_QUEUE = "carrot-bench-dramatiq"
#: Huey keeps letters and digits of its name in its Redis keys.
HUEY_NAME = "carrotbenchhuey"
#: Prefix of every Redis key the benchmark writes itself.
REDIS_PREFIX = "carrot-bench:"

#: Every queue the benchmark may leave on RabbitMQ; Dramatiq adds its
#: delay (DQ) and dead-letter (XQ) queues beside its own.
QUEUES = (
    f"{CARROT_PREFIX}.default",
    KOMBU_QUEUE,
    FLOOR_QUEUE,
    CELERY_QUEUE,
    DRAMATIQ_QUEUE,
    f"{DRAMATIQ_QUEUE}.DQ",
    f"{DRAMATIQ_QUEUE}.XQ",
)

#: Tables emptied before every run; a missing one is skipped.
TABLES = ("carrot_task", "django_celery_results_taskresult")


class BenchError(Exception):
    """A run that could not be measured; the message says why."""


def ensure_database() -> None:
    """Create the benchmark's PostgreSQL database unless it exists."""
    with psycopg.connect(
        host=PG_HOST, user=PG_USER, dbname="postgres", autocommit=True
    ) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [PG_DATABASE]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{PG_DATABASE}"')


def reset() -> None:
    """Empty the queues, the tables and the Redis keys of the benchmark."""
    purge_queues(QUEUES)
    truncate_tables()
    clear_redis()


def purge_queues(names: tuple[str, ...], *, delete: bool = False) -> None:
    """Purge (or delete) each queue that exists; skip the missing ones."""
    with Connection(BROKER_URL) as connection:
        for name in names:
            # A missing queue closes the channel, so each gets its own.
            channel = connection.channel()
            try:
                if delete:
                    channel.queue_delete(name)
                else:
                    channel.queue_purge(name)
            except connection.channel_errors:
                pass
            finally:
                _close_quietly(channel)


def truncate_tables() -> None:
    with _pg() as connection:
        present = {
            row[0]
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        }
        for table in TABLES:
            if table in present:
                connection.execute(f'TRUNCATE "{table}"')


def clear_redis() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(f"{REDIS_PREFIX}*"))
        keys += list(client.scan_iter(f"*{HUEY_NAME}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def versions() -> str:
    """Name the version of every system and server measured."""
    names = ("djangocarrot", "Django", "kombu", "celery", "dramatiq", "huey", "psycopg")
    found = [f"carrot at {git_describe()}"]
    for name in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found.append(f"{name} {importlib.metadata.version(name)}")
    with _pg() as connection:
        row = connection.execute("SHOW server_version").fetchone()
        found.append(f"PostgreSQL {row[0] if row else '?'}")
    with Connection(BROKER_URL) as connection:
        properties = connection.connection.server_properties
        found.append(f"RabbitMQ {properties.get('version', '?')}")
    client = redis.Redis.from_url(REDIS_URL)
    found.append(f"Redis {client.info('server').get('redis_version', '?')}")
    client.close()
    return ", ".join(found)


def git_describe() -> str:
    """The commit measured, with ``-dirty`` if the code differs from it.

    The benchmark measures the working tree. Its own earlier outputs in
    ``docs/bench`` change nothing it measures, so they are left out.
    """
    root = Path(__file__).parent.parent
    commit = _git(root, "rev-parse", "--short", "HEAD")
    if not commit:
        return "an unknown commit"
    changed = _git(root, "status", "--porcelain", "--", ".", ":(exclude)docs/bench")
    return f"{commit}-dirty" if changed else commit


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], capture_output=True, text=True, check=False, cwd=root
    )
    return done.stdout.strip()


def pg_stats() -> dict[str, int]:
    """Return PostgreSQL's counters for the benchmark database."""
    with _pg() as connection:
        connection.execute("SELECT pg_stat_force_next_flush()")
        connection.execute("SELECT pg_stat_clear_snapshot()")
        row = connection.execute(
            "SELECT xact_commit, xact_rollback, sessions, tup_inserted, "
            "tup_updated, tup_fetched, tup_returned "
            "FROM pg_stat_database WHERE datname = %s",
            [PG_DATABASE],
        ).fetchone()
    assert row is not None
    names = (
        "xact_commit",
        "xact_rollback",
        "sessions",
        "tup_inserted",
        "tup_updated",
        "tup_fetched",
        "tup_returned",
    )
    return dict(zip(names, (int(value) for value in row), strict=True))


def _pg() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host=PG_HOST, user=PG_USER, dbname=PG_DATABASE, autocommit=True
    )


def _close_quietly(channel: object) -> None:
    # A channel that a missing queue closed cannot be closed again.
    with contextlib.suppress(Exception):
        channel.close()  # type: ignore[attr-defined]
