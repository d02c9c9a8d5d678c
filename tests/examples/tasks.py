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
