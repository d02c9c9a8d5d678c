"""The floor's worker: the least a worker storing outcomes could do.

``python -m bench.floor_worker`` consumes the floor's queue with py-amqp
alone. Whatever one read of the socket brought, at most a prefetch's
worth, it calls the no-op for each message, stores every outcome with
one durable UPDATE and acknowledges them all with one frame. It claims
nothing before a call and reads nothing from the rows, so it does less
than any queue that keeps carrot's guarantees: see `bench.run_floor`.
"""

from __future__ import annotations

import json
import signal
import sys
import threading

import amqp
import psycopg

from . import probe, services
from .tasks import noop

#: Messages the broker sends before any is acknowledged.
PREFETCH = 64
#: How long a read of the socket waits when nothing has arrived.
_POLL_SECONDS = 0.5

_FINISH = (
    "UPDATE carrot_task SET status = 'succeeded', result = 'null', "
    "attempts = attempts + 1, started_at = now(), finished_at = now() "
    "WHERE id = ANY(%s)"
)


def main() -> None:
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    database = psycopg.connect(
        host=services.PG_HOST,
        user=services.PG_USER,
        dbname=services.PG_DATABASE,
        autocommit=True,
    )
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
        _settle(connection, channel, database, received)
        received.clear()

    connection.close()
    database.close()


def _settle(
    connection: amqp.Connection,
    channel: amqp.Channel,
    database: psycopg.Connection[tuple[object, ...]],
    received: list[amqp.Message],
) -> None:
    # Take the rest of what the socket already holds, without waiting.
    while len(received) < PREFETCH:
        try:
            connection.drain_events(timeout=0)
        except TimeoutError:
            break

    ids = []
    for message in received:
        body = json.loads(message.body)
        if "sent_at" in body:
            probe.latency(body["sent_at"])
        noop()
        ids.append(body["task_id"])

    database.execute(_FINISH, [ids])
    channel.basic_ack(received[-1].delivery_tag, multiple=True)


if __name__ == "__main__":
    sys.exit(main())
