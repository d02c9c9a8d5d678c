"""The interface between the core and wherever task rows are kept.

The core never touches a database. A `TaskStore` claims a task row before
it runs and records its outcome after; the Django adapter implements it
on the ``Task`` and ``Worker`` models. Every method is called from a
single thread at a time per call, but from many threads overall, so an
implementation keeps no shared mutable state without a lock.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

__all__ = [
    "Claim",
    "ClaimState",
    "Outcome",
    "Publish",
    "Runner",
    "TaskCall",
    "TaskStore",
]

#: Publishes ``(task id, worker name)`` pairs; raises when the broker fails.
Publish = Callable[[Sequence[tuple[str, str]]], None]


@dataclass(frozen=True)
class Runner:
    """A service process: recorded on the rows it claims.

    ``id`` tells apart processes that reuse a host name and pid, such as
    pid 1 in a restarted container.
    """

    host: str
    pid: int
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass(frozen=True)
class TaskCall:
    """What a claimed row says to run."""

    task_id: str
    kallable: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1


@dataclass(frozen=True)
class Outcome:
    """How a task ended: its return value, or its error and traceback."""

    task_id: str
    succeeded: bool
    result: Any = None
    error: str = ""
    traceback: str = ""
    #: When the call began and ended, where known. The claim may come a
    #: little before the call, and the write a little after its end.
    started_at: datetime | None = None
    finished_at: datetime | None = None


class ClaimState(enum.Enum):
    """What became of an attempt to claim a row."""

    #: The row was waiting and is now running here.
    CLAIMED = "claimed"
    #: The row already has an outcome; the message is a duplicate.
    FINISHED = "finished"
    #: Another live process is running the row.
    BUSY = "busy"
    #: No row has this id.
    MISSING = "missing"


@dataclass(frozen=True)
class Claim:
    """The result of `TaskStore.claim`; ``call`` is set when claimed."""

    state: ClaimState
    call: TaskCall | None = None


class TaskStore(Protocol):
    """Where the core reads workers and claims and settles task rows."""

    def enabled_workers(self) -> Mapping[str, int]:
        """Return the concurrency of every enabled worker, by name."""

    def record(
        self, outcomes: Sequence[Outcome], claims: Sequence[str], runner: Runner
    ) -> Mapping[str, Claim]:
        """Store ``outcomes``, then claim the rows ``claims``, in one transaction.

        A claim marks a waiting row as running on ``runner``. A row already
        running on this very ``runner`` is claimed again: the runner asking
        knows it is not running it any more. Everything is committed before
        this returns; on an error nothing is, and the error propagates.
        Returns the claim of each id in ``claims``.
        """

    def close(self) -> None:
        """Release what the store holds; the service has stopped."""

    def register(self, runner: Runner) -> None:
        """Record that ``runner`` is alive, now and at every later call."""

    def unregister(self, runner: Runner) -> None:
        """Forget ``runner``: it stopped and runs nothing any more."""

    def recover(self, timeout_seconds: float, max_attempts: int) -> int:
        """Hand back the rows of runners silent for ``timeout_seconds``.

        A row that has been started ``max_attempts`` times is marked failed;
        any other goes back to waiting, unpublished, for `publish_due`.
        Returns how many rows were handed back or failed.
        """

    def publish_due(
        self,
        grace_seconds: float,
        republish_seconds: float | None,
        limit: int,
        publish: Publish,
    ) -> int:
        """Publish the waiting rows whose message may be missing.

        Those are rows left unpublished for ``grace_seconds`` and, unless
        ``republish_seconds`` is None, rows published that long ago.
        Calls ``publish`` with at most ``limit`` rows and marks them
        published now once it returns. Returns how many were published.
        """
