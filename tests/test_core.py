"""The Django-free core: kallables, payloads, messages, configuration."""

from __future__ import annotations

import datetime
import math
import queue
import socket
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

import carrot.core
from carrot.core import (
    Broker,
    Claim,
    ClaimState,
    Config,
    InvalidMessage,
    InvalidTask,
    Outcome,
    Runner,
    Service,
    TaskCall,
    TaskMessage,
    TaskStore,
    resolve,
)
from carrot.core.acks import Acknowledgements
from carrot.core.batching import next_batch
from carrot.core.broker import speaks_amqp
from carrot.core.config import check_worker_name
from carrot.core.lane import Lane, Run
from carrot.core.payload import check_args, check_json, check_kwargs, check_size
from carrot.core.wakeup import Wakeup
from tests.conftest import wait_for
from tests.examples import tasks

# -- kallables ----------------------------------------------------------------


def test_a_module_function_resolves():
    assert resolve("tests.examples.tasks.add") is tasks.add


def test_a_method_of_a_class_in_a_module_resolves():
    bark = resolve("tests.examples.tasks.Dog.bark")

    assert bark(times=2, loud=True) == "WOOF WOOF"


@pytest.mark.parametrize(
    ("path", "complaint"),
    [
        ("", "dotted path"),
        ("add", "is not a dotted path"),
        ("tests.examples.tasks.not-a-name", "is not a dotted path"),
        ("tests.examples.tasks.missing", "has no attribute 'missing'"),
        ("tests.examples.missing_module.add", "has no attribute 'missing_module'"),
        ("carrot_no_such_package.tasks.add", "does not name an importable module"),
        ("tests.examples.tasks.Dog.not_callable", "of type int, which cannot be"),
    ],
)
def test_a_path_that_names_no_callable_is_refused_with_the_reason(path, complaint):
    with pytest.raises(InvalidTask, match=complaint):
        resolve(path)


def test_a_module_that_fails_to_import_is_reported_with_its_own_error(
    tmp_path, monkeypatch
):
    (tmp_path / "carrot_broken_tasks.py").write_text(
        "import carrot_missing_dependency\n\ndef run():\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(InvalidTask, match="No module named 'carrot_missing_depend"):
        resolve("carrot_broken_tasks.run")


def test_only_allowed_modules_resolve():
    allowed = ["tests.examples"]

    assert resolve("tests.examples.tasks.add", allowed) is tasks.add
    with pytest.raises(InvalidTask, match="outside the allowed modules"):
        resolve("tests.examples.tasks.add", ["tests.other"])


def test_an_allowed_module_does_not_allow_a_module_that_merely_shares_its_prefix():
    with pytest.raises(InvalidTask, match="CARROT_ALLOWED_MODULES"):
        resolve("tests.examples.tasks.add", ["tests.examples.task"])


def test_a_module_outside_the_allowed_ones_is_never_imported(tmp_path, monkeypatch):
    (tmp_path / "carrot_forbidden_tasks.py").write_text(
        "raise SystemExit('imported')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(InvalidTask, match="outside the allowed modules"):
        resolve("carrot_forbidden_tasks.run", ["tests.examples"])
    assert "carrot_forbidden_tasks" not in sys.modules


# -- payloads -------------------------------------------------------------------


def test_plain_json_arguments_pass_and_tuples_become_lists():
    args = check_args((1, 2.5, "x", None, True, [1, {"a": []}]))
    kwargs = check_kwargs({"when": "2024-01-01", "ids": (1, 2)})

    assert args == [1, 2.5, "x", None, True, [1, {"a": []}]]
    assert kwargs == {"when": "2024-01-01", "ids": (1, 2)}
    assert check_args(None) == []
    assert check_kwargs(None) == {}


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        ("text", "args must be a list, not str"),
        ({"a": 1}, "args must be a list, not dict"),
        ([{1, 2}], r"args\[0\] is a set, which is not JSON"),
        ([datetime.date(2024, 1, 1)], r"args\[0\] is a date"),
        ([math.nan], r"args\[0\] is nan, which JSON cannot hold"),
        ([math.inf], r"args\[0\] is inf"),
        ([1, {"a": [b"x"]}], r"args\[1\]\['a'\]\[0\] is a bytes"),
        ([{1: "one"}], r"args\[0\] has the key 1; JSON object keys must be strings"),
    ],
)
def test_args_that_are_not_a_json_list_are_refused_where_they_are_wrong(
    args, complaint
):
    with pytest.raises(InvalidTask, match=complaint):
        check_args(args)


@pytest.mark.parametrize(
    ("kwargs", "complaint"),
    [
        ([1], "kwargs must be an object"),
        ({1: "one"}, "kwargs key 1 is not a valid keyword argument name"),
        ({"not valid": 1}, "kwargs key 'not valid'"),
        ({"when": datetime.datetime(2024, 1, 1)}, r"kwargs\['when'\] is a datetime"),
    ],
)
def test_kwargs_that_are_not_a_json_object_of_names_are_refused(kwargs, complaint):
    with pytest.raises(InvalidTask, match=complaint):
        check_kwargs(kwargs)


def test_values_nested_too_deep_are_refused():
    value: list[Any] = []
    for _ in range(100):
        value = [value]

    with pytest.raises(InvalidTask, match="nested more than 64 levels"):
        check_json(value, "args")


def test_the_payload_limit_admits_its_own_size_and_refuses_one_byte_more():
    args = ["x" * 10]
    size = len('[["xxxxxxxxxx"],{}]')

    check_size(args, {}, size)
    with pytest.raises(InvalidTask, match=f"{size} bytes of JSON, over the limit"):
        check_size(args, {}, size - 1)


# -- messages -------------------------------------------------------------------


def test_a_message_names_only_its_task_row():
    message = TaskMessage("5f2c1d3e-0000-4000-8000-000000000000")

    body = message.to_body()

    assert body == {"carrot": 1, "task_id": "5f2c1d3e-0000-4000-8000-000000000000"}
    assert TaskMessage.from_body(body) == message


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ("text", "not a carrot task message"),
        ({"task_id": "x"}, "not a carrot task message"),
        ({"carrot": 2, "task_id": "x"}, "version 2 is not supported"),
        ({"carrot": 1}, "no valid task_id"),
        ({"carrot": 1, "task_id": 7}, "no valid task_id"),
        ({"carrot": 1, "task_id": ""}, "no valid task_id"),
        ({"carrot": 1, "task_id": "x" * 65}, "no valid task_id"),
    ],
)
def test_a_body_that_is_not_a_carrot_message_is_refused(body, complaint):
    with pytest.raises(InvalidMessage, match=complaint):
        TaskMessage.from_body(body)


# -- configuration --------------------------------------------------------------


def test_the_defaults_reach_rabbitmq_on_localhost():
    config = Config()

    assert config.broker_url == "amqp://guest:guest@localhost:5672//"
    assert config.queue_prefix == "carrot"
    assert config.prefetch_multiplier == 4
    assert config.max_payload_bytes == 1_000_000
    assert config.allowed_modules is None


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"publish_timeout_seconds": 0}, "publish_timeout_seconds must be positive"),
        ({"prefetch_multiplier": 0}, "prefetch_multiplier must be at least 1"),
        ({"refresh_seconds": 0}, "refresh_seconds must be positive"),
        ({"queue_prefix": "has space"}, "queue_prefix 'has space' is not a valid"),
        ({"queue_prefix": ""}, "queue_prefix '' is not a valid name"),
    ],
)
def test_a_config_that_cannot_work_is_refused(options, complaint):
    with pytest.raises(ValueError, match=complaint):
        Config(**options)


@pytest.mark.parametrize("name", ["default", "emails", "a.b-c_d", "9", "x" * 100])
def test_a_worker_name_fit_for_a_queue_is_accepted(name):
    check_worker_name(name)


@pytest.mark.parametrize("name", ["", "has space", "-dash", ".dot", "é", "x" * 101])
def test_a_worker_name_unfit_for_a_queue_is_refused_with_the_rule(name):
    with pytest.raises(ValueError, match="use up to 100 letters, digits"):
        check_worker_name(name)


def test_every_worker_has_its_own_durable_queue_under_the_prefix():
    broker = Broker(Config(broker_url="memory://", queue_prefix="shop"))

    queue = broker.queue("emails")

    assert queue.name == "shop.emails"
    assert queue.routing_key == "emails"
    assert queue.durable
    assert queue.exchange.name == "shop"
    assert queue.exchange.durable


def test_the_broker_url_fit_for_logs_hides_the_password():
    broker = Broker(Config(broker_url="amqp://carrot:Sup3rSecret@rabbit:5672//"))

    assert "Sup3rSecret" not in broker.safe_url
    assert "rabbit" in broker.safe_url


# -- batches ----------------------------------------------------------------------


def _queue_of(*items: str | None) -> queue.SimpleQueue[str | None]:
    source: queue.SimpleQueue[str | None] = queue.SimpleQueue()
    for item in items:
        source.put(item)
    return source


def test_a_batch_takes_what_is_queued_up_to_its_limit():
    source = _queue_of("a", "b", "c")

    assert next_batch(source, 2) == ["a", "b"]
    assert next_batch(source, 2) == ["c"]


def test_a_batch_expecting_more_waits_for_an_item_still_on_its_way():
    source = _queue_of("a")
    late = threading.Timer(0.05, source.put, args=("b",))
    late.start()

    batch = next_batch(source, 10, expected=2, linger_seconds=30)

    late.join()
    assert batch == ["a", "b"]


def test_a_batch_expecting_nothing_does_not_wait():
    source = _queue_of("a")
    late = threading.Timer(0.05, source.put, args=("b",))
    late.start()

    batch = next_batch(source, 10, linger_seconds=30)

    late.join()
    assert batch == ["a"]
    assert next_batch(source, 10) == ["b"]


class _Arrivals:
    """A queue whose items arrive at set moments of a clock of its own.

    Stands for both the queue and ``time.monotonic`` in `next_batch`, so
    that waiting costs the test no time.
    """

    def __init__(self, *arrivals: tuple[float, str]) -> None:
        self.now = 0.0
        self._arrivals = list(arrivals)

    def monotonic(self) -> float:
        return self.now

    def get(self, block: bool = True, timeout: float | None = None) -> str:
        if not self._arrivals:
            raise queue.Empty
        at, item = self._arrivals[0]
        if at > self.now + (timeout or 0.0):
            self.now += timeout or 0.0
            raise queue.Empty
        self._arrivals.pop(0)
        self.now = max(self.now, at)
        return item

    def get_nowait(self) -> str:
        return self.get(timeout=0.0)


def _batch_of(
    arrivals: _Arrivals, monkeypatch: pytest.MonkeyPatch, **options: Any
) -> list[Any]:
    monkeypatch.setattr("carrot.core.batching.time.monotonic", arrivals.monotonic)
    return next_batch(arrivals, 10, **options)  # type: ignore[arg-type]


def test_a_batch_waits_for_expected_items_that_come_one_after_another(
    monkeypatch: pytest.MonkeyPatch,
):
    # Each comes within the gap of the one before, the last well after
    # the first gap has passed.
    arrivals = _Arrivals((0.0, "a"), (0.4, "b"), (0.8, "c"), (1.2, "d"))

    batch = _batch_of(
        arrivals, monkeypatch, expected=4, linger_seconds=0.5, max_linger_seconds=5
    )

    assert batch == ["a", "b", "c", "d"]


def test_a_batch_does_not_wait_for_an_item_later_than_the_gap(
    monkeypatch: pytest.MonkeyPatch,
):
    arrivals = _Arrivals((0.0, "a"), (0.4, "b"), (1.0, "c"))

    batch = _batch_of(
        arrivals, monkeypatch, expected=3, linger_seconds=0.5, max_linger_seconds=5
    )

    assert batch == ["a", "b"]
    assert arrivals.now == pytest.approx(0.9)


def test_a_batch_waits_no_longer_than_its_longest_linger(
    monkeypatch: pytest.MonkeyPatch,
):
    arrivals = _Arrivals((0.0, "a"), (0.4, "b"), (0.8, "c"), (1.2, "d"))

    batch = _batch_of(
        arrivals, monkeypatch, expected=4, linger_seconds=0.5, max_linger_seconds=1
    )

    assert batch == ["a", "b", "c"]
    assert arrivals.now == pytest.approx(1.0)


def test_a_stop_while_a_batch_waits_hands_out_the_batch_then_ends():
    source = _queue_of("a", None)

    assert next_batch(source, 10, expected=5, linger_seconds=30) == ["a"]
    assert next_batch(source, 10) == []


# -- acknowledgements -------------------------------------------------------------


class _Message:
    """Stands for a kombu message: records what is sent for it, in order."""

    def __init__(self, tag: int, sent: list[tuple[str, int]]) -> None:
        self.delivery_tag = tag
        self._sent = sent

    def ack(self, multiple: bool = False) -> None:
        self._sent.append(("ack many" if multiple else "ack", self.delivery_tag))

    def requeue(self) -> None:
        self._sent.append(("requeue", self.delivery_tag))


def _held(acks: Acknowledgements, count: int) -> tuple[list[Any], list[Any]]:
    sent: list[tuple[str, int]] = []
    messages = [_Message(tag, sent) for tag in range(1, count + 1)]
    for message in messages:
        acks.hold(message)  # type: ignore[arg-type]
    return messages, sent


def test_acks_in_the_order_of_delivery_go_out_as_one_frame():
    acks = Acknowledgements(multiple=True)
    messages, sent = _held(acks, 3)

    for message in messages:
        acks.ack(message)
    acks.flush()

    assert sent == [("ack many", 3)]


def test_a_message_still_held_is_never_covered_by_the_acks_after_it():
    acks = Acknowledgements(multiple=True)
    (first, second, third), sent = _held(acks, 3)

    acks.ack(second)
    acks.ack(third)
    acks.flush()
    assert sent == [("ack", 2), ("ack", 3)]

    acks.ack(first)
    acks.flush()
    assert sent[2:] == [("ack many", 1)]


def test_acks_below_the_lowest_held_message_share_a_frame_and_the_rest_do_not():
    acks = Acknowledgements(multiple=True)
    messages, sent = _held(acks, 5)

    for message in messages[:2] + messages[3:]:
        acks.ack(message)
    acks.flush()

    assert sorted(sent) == [("ack", 4), ("ack", 5), ("ack many", 2)]


def test_a_requeue_goes_out_at_once_and_releases_the_acks_above_it():
    acks = Acknowledgements(multiple=True)
    (first, second), sent = _held(acks, 2)

    acks.ack(second)
    acks.requeue(first)
    assert sent == [("requeue", 1)]

    acks.flush()
    assert sent == [("requeue", 1), ("ack many", 2)]


def test_a_transport_that_acks_one_tag_at_a_time_gets_one_frame_per_ack():
    acks = Acknowledgements(multiple=False)
    messages, sent = _held(acks, 3)

    for message in messages:
        acks.ack(message)
    assert sent == []
    acks.flush()

    assert sent == [("ack", 1), ("ack", 2), ("ack", 3)]


def test_messages_a_lane_hands_back_no_longer_hold_back_the_acks_after_them():
    lane = Lane("default", Broker(Config()).queue("default"), lambda run: None)
    lane.acks = Acknowledgements(multiple=True)
    sent: list[tuple[str, int]] = []
    waiting, second, third = (_Message(tag, sent) for tag in (1, 2, 3))
    deliveries = [lane.hold(m, generation=0) for m in (waiting, second, third)]
    lane.add(Run("waiting", [deliveries[0]]))

    assert [run.task_id for run in lane.stop_consuming()] == ["waiting"]
    lane.acks.ack(second)
    lane.acks.ack(third)
    lane.acks.flush()

    assert sent == [("requeue", 1), ("ack many", 3)]


@pytest.mark.parametrize(
    "url, amqp",
    [
        ("amqp://guest:guest@localhost//", True),
        ("pyamqp://localhost//", True),
        ("amqps://localhost//", True),
        ("redis://localhost:6379/0", False),
        ("memory://localhost//", False),
    ],
)
def test_only_amqp_brokers_confirm_and_acknowledge_up_to_a_tag(url, amqp):
    config = Config(broker_url=url)
    assert speaks_amqp(Broker(config).connection()) is amqp


# -- waking the service thread ------------------------------------------------------


@pytest.fixture
def wakeup():
    woken = Wakeup()
    yield woken
    woken.close()


@pytest.fixture
def quiet_socket():
    """A socket that nothing is ever written to, standing for a broker's."""
    ends = socket.socketpair()
    yield ends[0]
    for end in ends:
        end.close()


def test_a_wait_on_a_quiet_socket_ends_when_another_thread_sets_the_wakeup(
    wakeup, quiet_socket
):
    answers: list[bool] = []
    waiting = threading.Thread(
        target=lambda: answers.append(wakeup.wait(quiet_socket, 600))
    )
    waiting.start()

    wakeup.set()

    waiting.join(15)
    assert not waiting.is_alive(), "the wait did not end"
    assert answers == [False]


def test_a_wakeup_set_before_the_wait_ends_it_and_is_then_used_up(wakeup, quiet_socket):
    for _ in range(3):
        wakeup.set()

    assert wakeup.wait(quiet_socket, 600) is False
    assert wakeup.wait(quiet_socket, 0) is False


def test_a_wait_says_when_the_socket_has_something_to_read(wakeup):
    broker, peer = socket.socketpair()
    peer.sendall(b"frame")

    assert wakeup.wait(broker, 600) is True

    broker.close()
    peer.close()


def test_a_wait_follows_the_socket_of_a_new_connection(wakeup, quiet_socket):
    wakeup.wait(quiet_socket, 0)
    quiet_socket.close()
    broker, peer = socket.socketpair()
    peer.sendall(b"frame")

    assert wakeup.wait(broker, 600) is True

    broker.close()
    peer.close()


def test_setting_the_wakeup_never_blocks_nor_fails_even_once_closed(wakeup):
    # Far more wakes than a socket buffer holds, none of them waited for.
    for _ in range(100_000):
        wakeup.set()
    wakeup.close()

    wakeup.set()


# -- the core alone ---------------------------------------------------------------

#: Imports every module of ``carrot.core`` while any import of Django fails.
_IMPORT_CORE_WITHOUT_DJANGO = textwrap.dedent(
    """
    import importlib
    import pkgutil
    import sys


    class NoDjango:
        def find_spec(self, name, path=None, target=None):
            if name == "django" or name.startswith("django."):
                raise ImportError(f"{name} imported while Django is forbidden")
            return None


    sys.meta_path.insert(0, NoDjango())
    try:
        import django  # noqa: F401
    except ImportError:
        print("django blocked")

    import carrot.core

    for module in pkgutil.iter_modules(carrot.core.__path__, "carrot.core."):
        importlib.import_module(module.name)
        print("imported", module.name)
    print("django loaded:", any(name.startswith("django") for name in sys.modules))
    """
)


def test_every_core_module_imports_without_django():
    finished = subprocess.run(
        [sys.executable, "-c", _IMPORT_CORE_WITHOUT_DJANGO],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr
    lines = finished.stdout.splitlines()
    assert lines[0] == "django blocked"
    core = Path(carrot.core.__file__).parent
    expected = {
        f"imported carrot.core.{path.stem}"
        for path in core.glob("*.py")
        if path.stem != "__init__"
    }
    assert expected <= set(lines)
    assert lines[-1] == "django loaded: False"


class _MemoryStore:
    """A `TaskStore` in a dict, to run the core without Django."""

    def __init__(self, calls: dict[str, TaskCall]) -> None:
        self.calls = calls
        self.results: dict[str, Any] = {}
        self.lock = threading.Lock()

    def enabled_workers(self) -> Mapping[str, int]:
        return {"default": 2}

    def record(
        self, outcomes: Sequence[Outcome], claims: Sequence[str], runner: Runner
    ) -> Mapping[str, Claim]:
        for outcome in outcomes:
            self.results[outcome.task_id] = (
                outcome.result if outcome.succeeded else outcome.error
            )
        with self.lock:
            calls = {task_id: self.calls.pop(task_id, None) for task_id in claims}
        return {
            task_id: Claim(ClaimState.MISSING)
            if call is None
            else Claim(ClaimState.CLAIMED, call)
            for task_id, call in calls.items()
        }

    def close(self) -> None:
        pass

    def register(self, runner: Runner) -> None:
        pass

    def unregister(self, runner: Runner) -> None:
        pass

    def recover(self, timeout_seconds: float, max_attempts: int) -> int:
        return 0

    def publish_due(
        self,
        grace_seconds: float,
        republish_seconds: float | None,
        limit: int,
        publish: Any,
    ) -> int:
        return 0


def _publish(config: Config, task_ids: list[str]) -> None:
    broker = Broker(config)
    with broker.connection() as connection:
        producer = connection.Producer(exchange=broker.exchange)
        for task_id in task_ids:
            producer.publish(
                TaskMessage(task_id).to_body(),
                routing_key="default",
                declare=[broker.queue("default")],
                serializer="json",
            )


def test_the_store_for_core_tests_implements_the_whole_protocol():
    wanted = {name for name in vars(TaskStore) if not name.startswith("_")}

    assert wanted <= set(vars(_MemoryStore))


def _memory_config(**options: Any) -> Config:
    return Config(
        broker_url="memory://",
        queue_prefix=f"carrot-core-{uuid.uuid4().hex[:12]}",
        transport_options={"polling_interval": 0.01},
        refresh_seconds=0.2,
        **options,
    )


def _serve(config: Config, store: _MemoryStore, task_ids: list[str]) -> None:
    """Publish ``task_ids`` to a running service; return once all are stored."""
    service = Service(store, config)
    thread = threading.Thread(target=service.start)
    thread.start()
    try:
        assert service.ready.wait(15)
        _publish(config, task_ids)

        wait_for(lambda: len(store.results) == len(task_ids), what="every task")
    finally:
        service.stop()
        thread.join(30)
    assert not thread.is_alive()


def test_the_core_service_runs_tasks_from_any_store():
    calls = {
        "one": TaskCall("one", "tests.examples.tasks.add", [1, 2]),
        "two": TaskCall("two", "tests.examples.tasks.fail", ["no"]),
    }
    store = _MemoryStore(dict(calls))

    _serve(_memory_config(), store, list(calls))

    assert store.results == {"one": 3, "two": "ValueError: no"}


def test_a_service_whose_prefetch_is_always_full_still_runs_every_task():
    # A prefetch of one message per thread: the broker sends the next only
    # once a message is acknowledged, so every task waits on an outcome.
    numbers = range(20)
    calls = {
        f"t{n}": TaskCall(f"t{n}", "tests.examples.tasks.add", [n, 1]) for n in numbers
    }
    store = _MemoryStore(dict(calls))

    _serve(_memory_config(prefetch_multiplier=1), store, list(calls))

    assert store.results == {f"t{n}": n + 1 for n in numbers}
