"""The floor's worker: the least a worker keeping carrot's promises does.

``python -m bench.floor_worker [CLAIMS]`` consumes the floor's queue with
py-amqp alone, on one thread. It claims the rows of the messages that
have arrived, ``CLAIMS`` at a time, and calls the no-op for each row
claimed. A claim committed before the call is what keeps a duplicate
message from starting a second copy of a running task. One statement
stores the outcomes of the rows just called and claims the next ones, as
carrot's recorder does; once it is committed, one frame acknowledges the
messages whose outcomes it stored, and the broker sends more.

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
from collections import deque
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

    waiting: deque[amqp.Message] = deque()
    channel.basic_consume(services.FLOOR_QUEUE, callback=waiting.append)
    print("ready", flush=True)

    finished: list[amqp.Message] = []
    while not stopping.is_set():
        _receive(connection, wait=not (waiting or finished))
        taken = [waiting.popleft() for _ in range(min(claims_at_once, len(waiting)))]
        finished = _run(durable, relaxed, channel, finished, taken)

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


def _receive(connection: amqp.Connection, *, wait: bool) -> None:
    """Take what the socket holds; with ``wait``, wait a while for it."""
    timeout = _POLL_SECONDS if wait else 0
    while True:
        try:
            connection.drain_events(timeout=timeout)
        except TimeoutError:
            return
        timeout = 0


def _run(
    durable: Database,
    relaxed: Database,
    channel: amqp.Channel,
    finished: list[amqp.Message],
    taken: list[amqp.Message],
) -> list[amqp.Message]:
    """Store the outcomes of ``finished``, claim and call ``taken``.

    Returns the messages called, whose outcomes the next call stores.
    """
    ids = [json.loads(message.body)["task_id"] for message in taken]
    claimed = _record(durable, relaxed, finished, ids)
    if finished:
        # Messages arrive and are called in order: one frame acknowledges
        # every message up to the last whose outcome was just committed.
        channel.basic_ack(finished[-1].delivery_tag, multiple=True)

    for _task_id, args in claimed:
        if args:
            probe.latency(args[0])  # type: ignore[index]
        noop()
    return taken


def _record(
    durable: Database,
    relaxed: Database,
    finished: Sequence[amqp.Message],
    ids: Sequence[str],
) -> list[tuple[object, ...]]:
    """Store the outcomes of ``finished`` and claim ``ids`` in one statement."""
    done = [json.loads(message.body)["task_id"] for message in finished]
    claim = [_RUNNER, "floor", os.getpid(), ids]
    if not done:
        return relaxed.execute(_CLAIM, claim).fetchall() if ids else []
    if not ids:
        durable.execute(_FINISH, [done])
        return []
    return durable.execute(_FINISH_AND_CLAIM, [done, *claim]).fetchall()


if __name__ == "__main__":
    sys.exit(main())
