"""Fixtures shared by the suite: brokers, a running service, waiting."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from carrot.utils import WorkerService

#: The real brokers, by name: URL and the address to probe.
BROKERS = {
    "memory": ("memory://localhost//", None),
    "rabbitmq": ("amqp://guest:guest@127.0.0.1:5672//", ("127.0.0.1", 5672)),
    "redis": ("redis://127.0.0.1:6379/0", ("127.0.0.1", 6379)),
}


def wait_for(condition: Callable[[], object], timeout: float = 15.0,
             what: str = "the condition") -> None:
    """Poll ``condition`` until it is true; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


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
