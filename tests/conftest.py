"""Fixtures shared by the suite: brokers, a running service, waiting."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from django.db import models
from kombu import Queue
from kombu.message import Message

from carrot.utils import WorkerService

#: The real brokers, by name: URL and the address to probe.
BROKERS = {
    "memory": ("memory://localhost//", None),
    "rabbitmq": ("amqp://guest:guest@127.0.0.1:5672//", ("127.0.0.1", 5672)),
    "redis": ("redis://127.0.0.1:6379/0", ("127.0.0.1", 6379)),
}


def wait_for(
    condition: Callable[[], object],
    timeout: float = 15.0,
    what: str = "the condition",
    interval_seconds: float = 0.01,
) -> None:
    """Poll ``condition`` until it is true; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval_seconds)


def require_server(name: str, address: tuple[str, int]) -> None:
    """Skip without the server locally; fail under CI, where it must run."""
    try:
        socket.create_connection(address, timeout=1).close()
    except OSError as exc:
        message = f"{name} is not answering on {address[0]}:{address[1]} ({exc})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(autouse=True)
def _isolated_queues(settings: pytest.FixtureRequest) -> None:
    # Each test gets its own exchange and queues, so that tests sharing a
    # broker, or one broker process, never see each other's messages.
    settings.CARROT_QUEUE_PREFIX = f"carrot-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(autouse=True)
def _default_worker(request: pytest.FixtureRequest) -> None:
    # A transactional test flushes the tables after it runs, taking the
    # default worker that the migrations created with them.
    if request.node.get_closest_marker("django_db") is None:
        return
    from carrot.models import DEFAULT_WORKER, Worker

    request.getfixturevalue("_django_db_helper")
    Worker.objects.get_or_create(name=DEFAULT_WORKER)


@pytest.fixture(params=list(BROKERS))
def broker(request: pytest.FixtureRequest, settings: object) -> str:
    """Run the test once per broker: in-memory, RabbitMQ and Redis."""
    name = request.param
    url, address = BROKERS[name]
    if address is not None:
        require_server(name, address)
        request.getfixturevalue("_delete_queues")
    settings.CARROT_BROKER_URL = url  # type: ignore[attr-defined]
    return name


@pytest.fixture
def run_service() -> Iterator[Callable[..., WorkerService]]:
    """Start a `WorkerService` in a thread; it is stopped after the test."""
    started: list[tuple[WorkerService, threading.Thread]] = []

    def start(*workers: str) -> WorkerService:
        service = WorkerService(workers or None)
        thread = threading.Thread(target=service.start, name="carrot-service")
        thread.start()
        started.append((service, thread))
        assert service.service.ready.wait(15), "the service did not start"
        return service

    yield start

    for service, thread in started:
        service.stop()
        thread.join(30)
        assert not thread.is_alive(), "the service did not stop"


@pytest.fixture(scope="session", autouse=True)
def _postgres_server() -> None:
    # Before the test database is created: without the server, skip
    # locally and fail under CI rather than error in every test.
    if os.environ.get("CARROT_TEST_DATABASE") == "postgres":
        host = os.environ.get("CARROT_TEST_PGHOST", "127.0.0.1")
        require_server("PostgreSQL", (host, 5432))


@pytest.fixture
def _delete_queues(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Queues on a real broker outlive the test that declared them: record
    # every worker whose queue is named, and delete them all afterwards.
    from carrot.conf import get_broker
    from carrot.core import Broker

    worker_names: set[str] = set()
    original = Broker.queue

    def queue(self: Broker, worker_name: str) -> Queue:
        worker_names.add(worker_name)
        return original(self, worker_name)

    monkeypatch.setattr(Broker, "queue", queue)
    yield

    broker = get_broker()
    entities = [original(broker, name) for name in worker_names]
    with broker.connection() as connection:
        for entity in [*entities, broker.exchange]:
            with (
                connection.channel() as channel,
                contextlib.suppress(*connection.channel_errors),
            ):
                bound = entity.bind(channel)
                # Redis forgets a queue's bindings only when it deletes a
                # queue declared on the same connection.
                bound.declare()
                bound.delete()


def queue_size(worker_name: str = "default") -> int:
    """Messages ready in the queue of ``worker_name`` on the broker in use.

    A message delivered to a service and not yet acknowledged is not
    counted; the broker counts it again once the service's channel closes.
    """
    from carrot.conf import get_broker

    broker = get_broker()
    with broker.connection() as connection:
        queue = broker.queue(worker_name).bind(connection.default_channel)
        return int(queue.queue_declare().message_count)


def get_message(worker_name: str = "default") -> Message | None:
    """Take the next message from the queue of ``worker_name``, if any."""
    from carrot.conf import get_broker

    broker = get_broker()
    with broker.connection() as connection:
        queue = broker.queue(worker_name).bind(connection.default_channel)
        queue.declare()
        return queue.get(no_ack=True)  # type: ignore[no-any-return]


def publish_raw(body: bytes, content_type: str, worker_name: str = "default") -> None:
    """Publish ``body`` as it is to the queue of ``worker_name``."""
    from carrot.conf import get_broker

    broker = get_broker()
    with broker.connection() as connection:
        connection.Producer().publish(
            body,
            exchange=broker.exchange,
            routing_key=worker_name,
            declare=[broker.queue(worker_name)],
            content_type=content_type,
            content_encoding="binary",
        )


@pytest.fixture
def acks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None]]:
    """Record every acknowledgement sent: its message's task id, and the
    row's status read when it is sent.

    One frame acknowledging many messages (``multiple``, on RabbitMQ) is
    recorded once, for its last message; tests that count acknowledgements
    have one message acknowledged at a time.
    """
    from carrot.models import Task

    recorded: list[tuple[str, str | None]] = []
    original = Message.ack

    def ack(self: Message, multiple: bool = False) -> None:
        task_id = str(json.loads(self.body).get("task_id"))
        try:
            uuid.UUID(task_id)
        except ValueError:
            status = None
        else:
            rows = Task.objects.filter(pk=task_id).values_list("status", flat=True)
            status = rows.first()
        recorded.append((task_id, status))
        original(self, multiple)

    monkeypatch.setattr(Message, "ack", ack)
    return recorded


class Refreshes:
    """Counts the times a service has read the workers' settings."""

    def __init__(self) -> None:
        self.count = 0

    def wait(self, refreshes: int = 2) -> None:
        """Wait for ``refreshes`` more reads.

        Two reads after a change guarantee that one whole refresh started,
        and ended, after it.
        """
        target = self.count + refreshes
        wait_for(lambda: self.count >= target, what=f"{refreshes} refreshes")


@pytest.fixture
def refreshes(monkeypatch: pytest.MonkeyPatch) -> Refreshes:
    """Count the refreshes of every service started in the test."""
    from carrot.store import DjangoTaskStore

    counter = Refreshes()
    original = DjangoTaskStore.enabled_workers

    def enabled_workers(self: DjangoTaskStore) -> Mapping[str, int]:
        counter.count += 1
        return original(self)

    monkeypatch.setattr(DjangoTaskStore, "enabled_workers", enabled_workers)
    return counter


@contextlib.contextmanager
def serve(*workers: str) -> Iterator[tuple[WorkerService, threading.Thread]]:
    """Run a `WorkerService` in a thread for the ``with`` block.

    Unlike `run_service`, this gives the thread, so that a test can stop
    the service itself and wait for it to end.
    """
    service = WorkerService(workers or None)
    thread = threading.Thread(target=service.start, name="carrot-service")
    thread.start()
    try:
        assert service.service.ready.wait(15), "the service did not start"
        yield service, thread
    finally:
        service.stop()
        thread.join(30)
        assert not thread.is_alive(), "the service did not stop"


@pytest.fixture
def orm_inserts(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """The objects Django's own INSERT stores, as the test goes on."""
    inserted: list[object] = []
    insert = models.QuerySet._insert

    def counted(self: models.QuerySet[Any], objs: list[object], **kwargs: Any) -> Any:
        inserted.extend(objs)
        return insert(self, objs, **kwargs)

    monkeypatch.setattr(models.QuerySet, "_insert", counted)
    yield inserted
