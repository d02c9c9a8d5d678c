"""Take work off a queue in batches, for the threads that write in bulk."""

from __future__ import annotations

import queue
from typing import TypeVar

__all__ = ["next_batch"]

T = TypeVar("T")


def next_batch(source: queue.SimpleQueue[T | None], limit: int) -> list[T]:
    """Wait for an item, then take those already queued, up to ``limit``.

    ``None`` on the queue means stop: it ends the batch, and the next call
    returns an empty list.
    """
    first = source.get()
    if first is None:
        return []
    batch = [first]
    while len(batch) < limit:
        try:
            item = source.get_nowait()
        except queue.Empty:
            break
        if item is None:
            # Hand out this batch first; the next call sees the stop.
            source.put(None)
            break
        batch.append(item)
    return batch
