"""Kallables the tests enqueue; plain functions in a plain module."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

#: Names of the calls made so far, for tests that count runs.
calls: list[tuple[Any, ...]] = []
_lock = threading.Lock()
_running = 0
#: The most calls of `slow` that overlapped.
peak_running = 0


def add(a: int, b: int) -> int:
    return a + b


def record(*args: Any, **kwargs: Any) -> None:
    with _lock:
        calls.append((args, kwargs))


def fail(message: str) -> None:
    raise ValueError(message)


def slow(seconds: float) -> float:
    global _running, peak_running
    with _lock:
        _running += 1
        peak_running = max(peak_running, _running)
    try:
        time.sleep(seconds)
    finally:
        with _lock:
            _running -= 1
    return seconds


def pid() -> int:
    return os.getpid()


def unserializable() -> object:
    return {1, 2}


class Dog:
    @staticmethod
    def bark(times: int = 1, loud: bool = False) -> str:
        word = "WOOF" if loud else "woof"
        return " ".join([word] * times)

    not_callable = 3


def reset() -> None:
    global peak_running
    with _lock:
        calls.clear()
        peak_running = 0


def noop() -> None:
    """Do nothing: for tests that count what running costs."""


#: For each gate name: (reached, opened).
_gates: dict[str, tuple[threading.Event, threading.Event]] = {}


def _gate(name: str) -> tuple[threading.Event, threading.Event]:
    with _lock:
        return _gates.setdefault(name, (threading.Event(), threading.Event()))


def wait_at_gate(name: str, timeout_seconds: float = 30.0) -> str:
    """Block until `open_gate` opens the gate ``name``; return the name."""
    reached, opened = _gate(name)
    reached.set()
    if not opened.wait(timeout_seconds):
        raise TimeoutError(f"nobody opened the gate {name!r}")
    return name


def gate_reached(name: str) -> bool:
    """Whether a call of `wait_at_gate` has reached the gate ``name``."""
    return _gate(name)[0].is_set()


def open_gate(name: str) -> None:
    _gate(name)[1].set()


#: For each group of `meet`: [calls running now, most calls running at once].
_meetings: dict[str, list[int]] = {}
_meeting = threading.Condition()


def meet(group: str, parties: int, timeout_seconds: float = 15.0) -> int:
    """Wait until ``parties`` calls of ``group`` have run at once.

    Returns the most calls of ``group`` seen running at once, which stays
    below ``parties`` only if they never overlapped before the timeout.
    """
    with _meeting:
        state = _meetings.setdefault(group, [0, 0])
        state[0] += 1
        state[1] = max(state[1], state[0])
        _meeting.notify_all()
        _meeting.wait_for(lambda: state[1] >= parties, timeout_seconds)
        state[0] -= 1
        return state[1]


def met(group: str) -> int:
    """The most calls of `meet` for ``group`` that ran at once."""
    with _meeting:
        return _meetings.get(group, [0, 0])[1]
