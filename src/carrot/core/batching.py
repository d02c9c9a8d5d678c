"""Take work off a queue in batches, for the threads that write in bulk."""

from __future__ import annotations

import queue
import time
from typing import TypeVar

__all__ = ["next_batch"]

T = TypeVar("T")


def next_batch(
    source: queue.SimpleQueue[T | None],
    limit: int,
    *,
    expected: int = 0,
    linger_seconds: float = 0.0,
    max_linger_seconds: float | None = None,
) -> list[T]:
    """Wait for an item, then take those already queued, up to ``limit``.

    When ``expected`` items are known to be on their way, wait for that
    many in all, as long as each comes within ``linger_seconds`` of the
    one before and all within ``max_linger_seconds`` of the first (by
    default, ``linger_seconds``). Items that come one after another join
    the batch; an item that is late ends the wait after one gap. ``None``
    on the queue means stop: it ends the batch, and the next call returns
    an empty list.
    """
    first = source.get()
    if first is None:
        return []

    batch = [first]
    arrived = time.monotonic()
    if max_linger_seconds is None:
        max_linger_seconds = linger_seconds
    last_chance = arrived + max_linger_seconds
    while len(batch) < limit:
        deadline = min(arrived + linger_seconds, last_chance)
        wait = deadline - time.monotonic() if len(batch) < expected else 0.0
        try:
            item = source.get(timeout=wait) if wait > 0 else source.get_nowait()
        except queue.Empty:
            break
        if item is None:
            # Hand out this batch first; the next call sees the stop.
            source.put(None)
            break
        batch.append(item)
        arrived = time.monotonic()
    return batch
