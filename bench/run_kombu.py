"""The ceiling: kombu alone, with nothing stored and nothing run.

N persistent messages shaped like carrot's are published one at a time
with publisher confirms, then consumed with a manual ack each, at
carrot's default prefetch for a worker of concurrency 4.
"""

from __future__ import annotations

import time
import uuid

from kombu import Connection, Consumer, Exchange, Queue
from kombu.message import Message

from carrot.core import Config

from . import services
from .cases import STALL_SECONDS, Sizes
from .results import Results, repeat
from .services import BenchError

#: carrot's default prefetch for one worker: concurrency x multiplier.
PREFETCH = 4 * Config().prefetch_multiplier


def run(results: Results, sizes: Sizes) -> None:
    print(f"kombu alone: {sizes.count:,} messages")
    repeat(results, "kombu/ceiling", sizes.repeats, lambda: _measure(sizes.count))


def _measure(count: int) -> dict[str, float]:
    services.reset()
    exchange = Exchange(services.KOMBU_QUEUE, type="direct", durable=True)
    queue = Queue(
        services.KOMBU_QUEUE, exchange=exchange, routing_key="kombu", durable=True
    )
    options = {"confirm_publish": True}
    with Connection(services.BROKER_URL, transport_options=options) as connection:
        queue(connection.default_channel).declare()
        publish = _publish(connection, exchange, count)
        consume = _consume(connection, queue, count)
    return {"enqueue": publish, "drain": consume}


def _publish(connection: Connection, exchange: Exchange, count: int) -> float:
    producer = connection.Producer(serializer="json")
    started = time.perf_counter()
    for _ in range(count):
        body = {"carrot": 1, "task_id": str(uuid.uuid4())}
        producer.publish(body, exchange=exchange, routing_key="kombu", delivery_mode=2)
    return count / (time.perf_counter() - started)


def _consume(connection: Connection, queue: Queue, count: int) -> float:
    received = 0

    def on_message(message: Message) -> None:
        nonlocal received
        message.decode()
        message.ack()
        received += 1

    with Consumer(
        connection,
        queues=[queue],
        on_message=on_message,
        accept=["json"],
        prefetch_count=PREFETCH,
    ):
        started = time.perf_counter()
        while received < count:
            try:
                connection.drain_events(timeout=STALL_SECONDS)
            except TimeoutError:
                raise BenchError(
                    f"kombu: {received} of {count} messages came back"
                ) from None
    return count / (time.perf_counter() - started)
