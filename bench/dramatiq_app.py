"""The Dramatiq app of the benchmark: ``dramatiq bench.dramatiq_app``.

``CARROT_BENCH_DRAMATIQ_CONFIRM=1`` turns ``confirm_delivery`` on. The
benchmark sends messages by name through `make_broker`, so one process
can send with and without confirms.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from . import probe, services

#: pika spells the default virtual host ``%2F``, where kombu takes ``/``.
BROKER_URL = services.BROKER_URL.removesuffix("//") + "/%2F"


def make_broker(confirm: bool) -> RabbitmqBroker:
    broker = RabbitmqBroker(url=BROKER_URL, confirm_delivery=confirm)
    broker.declare_queue(services.DRAMATIQ_QUEUE)
    return broker


def send(broker: RabbitmqBroker, name: str, *args: object) -> None:
    """Enqueue a call of the Dramatiq function ``name`` with ``args``."""
    broker.enqueue(
        dramatiq.Message(
            queue_name=services.DRAMATIQ_QUEUE,
            actor_name=name,
            args=args,
            kwargs={},
            options={},
        )
    )


broker = make_broker(os.environ.get("CARROT_BENCH_DRAMATIQ_CONFIRM") == "1")
dramatiq.set_broker(broker)
noop = dramatiq.actor(
    probe.done, actor_name="noop", queue_name=services.DRAMATIQ_QUEUE, max_retries=0
)
stamp = dramatiq.actor(
    probe.latency, actor_name="stamp", queue_name=services.DRAMATIQ_QUEUE, max_retries=0
)
