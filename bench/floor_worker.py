"""The floor's worker: the least a worker keeping carrot's promises does.

``python -m bench.floor_worker [CLAIMS]`` consumes the floor's queue with
py-amqp alone, on one thread. Whatever one read of the socket brought, at
most a prefetch's worth, it claims ``CLAIMS`` rows at a time and calls
the no-op for each row claimed. A claim committed before the call is
what keeps a duplicate message from starting a second copy of a running
task. One statement stores the outcomes of the rows just called and
claims the next ones, as carrot's recorder does; the messages are
acknowledged with one frame once every outcome is committed.

With ``CLAIMS`` at carrot's concurrency this is carrot's rule, which
claims a row only when a thread is free to run it; with ``CLAIMS`` at
the prefetch, the whole batch is claimed ahead of its calls, which
carrot does not do. Either way it does less than carrot must: see
`bench.run_floor`.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import uuid
from collections.abc import Sequence

import amqp
import psycopg

from . import probe, services
from .tasks import noop

#: Messages the broker sends before any is acknowledged: carrot's default
#: prefetch for a worker of concurrency 4.
PREFETCH = 16
#: The runner recorded on the rows this worker claims.
_RUNNER = uuid.uuid4()
#: How long a read of the socket waits when nothing has arrived.
_POLL_SECONDS = 0.5

_FINISH = (
    "UPDATE carrot_task SET status = 'succeeded', result = 'null', "
    "finished_at = now() WHERE id = ANY(%s)"
)
_CLAIM = (
    "UPDATE carrot_task SET status = 'running', attempts = attempts + 1, "
    "runner = %s, host = %s, pid = %s, started_at = now(), "
    "published_at = COALESCE(published_at, now()) "
    "WHERE id = ANY(%s) AND status = 'waiting' RETURNING id, args"
)
#: Outcomes and claims in one statement: one round trip, one commit.
_FINISH_AND_CLAIM = f"WITH finished AS ({_FINISH}) {_CLAIM}"

Database = psycopg.Connection[tuple[object, ...]]


def main() -> None:
    claims_at_once = int(sys.argv[1]) if len(sys.argv) > 1 else PREFETCH
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    durable, relaxed = _connect(), _connect()
    # A claim alone is committed without waiting for the disk, as carrot
    # commits it; an outcome always waits.
    relaxed.execute("SET synchronous_commit = off")
    connection = amqp.Connection("127.0.0.1:5672", userid="guest", password="guest")
    connection.connect()
    channel = connection.channel()
    channel.queue_declare(services.FLOOR_QUEUE, durable=True, auto_delete=False)
    channel.basic_qos(0, PREFETCH, False)

    received: list[amqp.Message] = []
    channel.basic_consume(services.FLOOR_QUEUE, callback=received.append)
    print("ready", flush=True)

    while not stopping.is_set():
        try:
            connection.drain_events(timeout=_POLL_SECONDS)
        except TimeoutError:
            continue
        _take_the_rest(connection, received)
        _run(durable, relaxed, received, claims_at_once)
        channel.basic_ack(received[-1].delivery_tag, multiple=True)
        received.clear()

    connection.close()
    relaxed.close()
    durable.close()


def _connect() -> Database:
    return psycopg.connect(
        host=services.PG_HOST,
        user=services.PG_USER,
        dbname=services.PG_DATABASE,
        autocommit=True,
    )


def _take_the_rest(connection: amqp.Connection, received: list[amqp.Message]) -> None:
    # Whatever the socket already holds, without waiting.
    while len(received) < PREFETCH:
        try:
            connection.drain_events(timeout=0)
        except TimeoutError:
            return


def _run(
    durable: Database,
    relaxed: Database,
    received: list[amqp.Message],
    claims_at_once: int,
) -> None:
    ids = [json.loads(message.body)["task_id"] for message in received]
    finished: list[object] = []
    for start in range(0, len(ids), claims_at_once):
        claimed = _record(
            durable, relaxed, finished, ids[start : start + claims_at_once]
        )
        for _task_id, args in claimed:
            if args:
                probe.latency(args[0])  # type: ignore[index]
            noop()
        finished = [task_id for task_id, _ in claimed]
    _record(durable, relaxed, finished, [])


def _record(
    durable: Database, relaxed: Database, finished: Sequence[object], ids: Sequence[str]
) -> list[tuple[object, ...]]:
    """Store ``finished`` outcomes and claim ``ids`` in one statement."""
    claim = [_RUNNER, "floor", os.getpid(), ids]
    if not finished:
        return relaxed.execute(_CLAIM, claim).fetchall()
    if not ids:
        durable.execute(_FINISH, [finished])
        return []
    return durable.execute(_FINISH_AND_CLAIM, [finished, *claim]).fetchall()


if __name__ == "__main__":
    sys.exit(main())
