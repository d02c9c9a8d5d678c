"""The floor: the least work that carrot's design and promises require.

Every task costs at least a row inserted with a durable commit, one at a
time as a web app creates it; a persistent message published with a
confirmation; a claim committed before the call, so that a duplicate
message cannot start a second copy; the call; and its outcome, committed
durably before the message is acknowledged. The floor does just that
with psycopg and py-amqp, in carrot's own table, with none of Django,
kombu or carrot around them, and is measured the way carrot is
(`bench.cases`).

Its worker (`bench.floor_worker`) runs on one thread and shares every
statement among as many claims and outcomes as carrot's rule allows: a
row is claimed only when one of the worker's 4 threads is free to run
it. carrot does all of this and more, so it cannot beat the floor on the
same machine, and a target the floor itself misses cannot be met there;
the report says which. ``floor.ahead`` drains once more with the rule
relaxed, claiming a whole prefetch ahead of the calls, to show what that
rule costs.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from datetime import datetime, timezone

import amqp
import psycopg

from . import cases, floor_worker, services
from .cases import Sizes, System
from .process import Worker
from .results import Results, repeat
from .run_carrot import NOOP, WARMUP, wait_rows
from .services import BenchError

#: Publishes between two reads of the confirmations that have arrived.
_READ_CONFIRMS_EVERY = 100
#: How long the broker may take to confirm what was published.
_CONFIRM_TIMEOUT_SECONDS = 60.0

_INSERT = (
    "INSERT INTO carrot_task (id, kallable, args, kwargs, status, error, "
    "traceback, attempts, host, created_at, worker) VALUES "
    "(%s, %s, %s, '{}', 'waiting', '', '', 0, '', now(), 'default')"
)
#: Every column a new row sets, as ``_INSERT`` sets them.
_COPY = (
    "COPY carrot_task (id, kallable, args, kwargs, created_at, status, error, "
    "traceback, attempts, host, worker) FROM STDIN"
)
#: The values of the last six columns of ``_COPY``.
_NEW_ROW = ("waiting", "", "", 0, "", "default")
#: The concurrency of carrot's ``default`` worker in the benchmark.
CONCURRENCY = 4


class FloorSystem(System):
    """psycopg and py-amqp alone, around one `bench.floor_worker`.

    The worker claims ``claims_at_once`` rows at a time.
    """

    def __init__(self, row: str = "floor", claims_at_once: int = CONCURRENCY) -> None:
        self.row = row
        self.claims_at_once = claims_at_once
        self._database = psycopg.connect(
            host=services.PG_HOST,
            user=services.PG_USER,
            dbname=services.PG_DATABASE,
            autocommit=True,
        )
        self._broker = amqp.Connection(
            "127.0.0.1:5672", userid="guest", password="guest"
        )
        self._broker.connect()
        self._channel = self._broker.channel()
        self._channel.queue_declare(
            services.FLOOR_QUEUE, durable=True, auto_delete=False
        )
        # Confirm mode, without waiting for each confirmation in turn: they
        # are counted as they arrive, as carrot's publisher does.
        self._channel.confirm_select()
        self._channel.events["basic_ack"].add(self._on_ack)
        self._channel.events["basic_nack"].add(self._on_nack)
        self._published = 0
        self._confirmed = 0

    def workers(self) -> list[Worker]:
        return [
            Worker(
                self.row,
                ["-m", "bench.floor_worker", str(self.claims_at_once)],
                dict(os.environ),
                announces_ready=True,
            )
        ]

    def send(self, tag: str) -> None:
        kallable = WARMUP if tag.startswith("warmup") else NOOP
        self._create(kallable, "[]")

    def send_stamp(self, sent_at: float) -> None:
        self._create(NOOP, json.dumps([sent_at]))

    def flush(self) -> None:
        deadline = time.monotonic() + _CONFIRM_TIMEOUT_SECONDS
        while self._confirmed < self._published:
            if time.monotonic() > deadline:
                raise BenchError("floor: the broker did not confirm every message")
            with contextlib.suppress(TimeoutError):
                self._broker.drain_events(timeout=1)

    def wait_finished(self, tag: str, count: int) -> tuple[float, float]:
        return wait_rows(WARMUP if tag.startswith("warmup") else NOOP, count)

    def close(self) -> None:
        self._broker.close()
        self._database.close()

    def send_bulk(self, count: int) -> None:
        """Insert ``count`` rows with one COPY, then publish a message each."""
        ids = [str(uuid.uuid4()) for _ in range(count)]
        now = datetime.now(timezone.utc)
        with self._database.cursor() as cursor, cursor.copy(_COPY) as copy:
            for task_id in ids:
                copy.write_row([task_id, NOOP, "[]", "{}", now, *_NEW_ROW])
        for task_id in ids:
            self._publish(task_id)
        self.flush()

    def _create(self, kallable: str, args: str) -> None:
        task_id = str(uuid.uuid4())
        self._database.execute(_INSERT, [task_id, kallable, args])
        self._publish(task_id)

    def _publish(self, task_id: str) -> None:
        body = json.dumps({"carrot": 1, "task_id": task_id})
        message = amqp.Message(body, content_type="application/json", delivery_mode=2)
        self._channel.basic_publish(message, "", services.FLOOR_QUEUE)
        self._published += 1
        if self._published % _READ_CONFIRMS_EVERY == 0:
            self._read_confirms()

    def _read_confirms(self) -> None:
        # Without waiting: only what the socket holds already.
        with contextlib.suppress(TimeoutError):
            self._broker.drain_events(timeout=0)

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self._confirmed = delivery_tag if multiple else self._confirmed + 1

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        raise BenchError(f"floor: the broker refused message {delivery_tag}")


def run(results: Results, sizes: Sizes) -> None:
    print(f"floor: {sizes.count:,} tasks, drain of {sizes.drain_count:,}")
    system = FloorSystem()
    try:
        repeat(results, "floor/enqueue", sizes.repeats, lambda: _create(system, sizes))
        repeat(
            results,
            "floor/bulk",
            sizes.repeats,
            lambda: _bulk(system, sizes.bulk_count),
        )
        repeat(
            results,
            "floor/e2e",
            sizes.repeats,
            lambda: cases.end_to_end(system, sizes.count),
        )
        repeat(
            results,
            "floor/drain",
            sizes.repeats,
            lambda: {"drain": cases.drain(system, sizes.drain_count)[0]["drain"]},
        )
        repeat(
            results,
            "floor/latency",
            sizes.repeats,
            lambda: cases.latency(system, sizes.latency_samples),
        )
    finally:
        system.close()

    ahead = FloorSystem("floor.ahead", floor_worker.PREFETCH)
    try:
        repeat(
            results,
            "floor.ahead/drain",
            sizes.repeats,
            lambda: {"drain": cases.drain(ahead, sizes.drain_count)[0]["drain"]},
        )
    finally:
        ahead.close()


def _bulk(system: FloorSystem, count: int) -> dict[str, float]:
    services.reset()
    started = time.perf_counter()
    system.send_bulk(count)
    return {"bulk_create": count / (time.perf_counter() - started)}


def _create(system: FloorSystem, sizes: Sizes) -> dict[str, float]:
    services.reset()
    started = time.perf_counter()
    for _ in range(sizes.count):
        system.send("run")
    system.flush()
    return {"enqueue": sizes.count / (time.perf_counter() - started)}
