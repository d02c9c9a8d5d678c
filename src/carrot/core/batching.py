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
) -> list[T]:
    """Wait for an item, then take those already queued, up to ``limit``.

    When ``expected`` items are known to be on their way, wait up to
    ``linger_seconds`` after the first for that many in all, so that they
    share a batch. ``None`` on the queue means stop: it ends the batch,
    and the next call returns an empty list.
    """
    first = source.get()
    if first is None:
        return []

    batch = [first]
    deadline = time.monotonic() + linger_seconds
    while len(batch) < limit:
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
    return batch
