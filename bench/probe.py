"""How tasks report back to the benchmark, whatever system runs them.

A finished no-op task counts itself in memory; a thread per process
writes the count and the first and last finish times to Redis every few
milliseconds, so that counting costs a task almost nothing. A latency
task pushes how long it waited since it was sent, once, at its start.
"""

from __future__ import annotations

import os
import threading
import time

import redis

from . import services

#: How often a process writes its counts to Redis.
_FLUSH_SECONDS = 0.02
#: Where latency samples are pushed, oldest first.
LATENCY_KEY = f"{services.REDIS_PREFIX}latency"

_lock = threading.Lock()
#: Per tag: finished count, first and last finish (epoch seconds).
_counts: dict[str, list[float]] = {}
_dirty: set[str] = set()
_flusher_pid: int | None = None
_client: redis.Redis | None = None
_client_pid: int | None = None


def done(tag: str) -> None:
    """Count one finished task of the run ``tag``."""
    now = time.time()
    with _lock:
        entry = _counts.get(tag)
        if entry is None:
            _counts[tag] = [1, now, now]
        else:
            entry[0] += 1
            entry[2] = now
        _dirty.add(tag)
        _start_flusher()


def latency(sent_at: float) -> None:
    """Push the seconds since ``sent_at``, read at the task's start."""
    waited = time.time() - sent_at
    _redis().rpush(LATENCY_KEY, repr(waited))


def counts_key(tag: str) -> str:
    return f"{services.REDIS_PREFIX}done:{tag}"


def _start_flusher() -> None:
    global _flusher_pid
    # A forked worker process inherits the module but not the thread.
    if _flusher_pid == os.getpid():
        return
    _flusher_pid = os.getpid()
    threading.Thread(target=_flush_forever, name="bench-probe", daemon=True).start()


def _flush_forever() -> None:
    while True:
        time.sleep(_FLUSH_SECONDS)
        with _lock:
            changed = {tag: list(_counts[tag]) for tag in _dirty}
            _dirty.clear()
        if not changed:
            continue
        pipeline = _redis().pipeline(transaction=False)
        for tag, (count, first, last) in changed.items():
            pipeline.hset(counts_key(tag), str(os.getpid()), f"{count} {first} {last}")
        pipeline.execute()


def _redis() -> redis.Redis:
    global _client, _client_pid
    if _client is None or _client_pid != os.getpid():
        _client = redis.Redis.from_url(services.REDIS_URL)
        _client_pid = os.getpid()
    return _client
