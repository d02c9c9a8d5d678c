"""The interface between the core and wherever task rows are kept.

The core never touches a database. A `TaskStore` claims a task row before
it runs and records its outcome after; the Django adapter implements it
on the ``Task`` and ``Worker`` models. Every method is called from a
single thread at a time per call, but from many threads overall, so an
implementation keeps no shared mutable state without a lock.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Claim", "ClaimState", "Runner", "TaskCall", "TaskStore"]


@dataclass(frozen=True)
class Runner:
    """The process that runs a task: recorded on the row it claims."""

    host: str
    pid: int


@dataclass(frozen=True)
class TaskCall:
    """What a claimed row says to run."""

    task_id: str
    kallable: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1


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

    def claim(self, task_id: str, runner: Runner) -> Claim:
        """Mark a waiting row as running on ``runner``, atomically.

        A row already running on this very ``runner`` is claimed again:
        the process asking knows it is not running it, so an earlier
        process of the same host and pid died with it.
        """

    def succeed(self, task_id: str, result: Any) -> None:
        """Record a return value; committed before this returns."""

    def fail(self, task_id: str, error: str, traceback: str) -> None:
        """Record a failure; committed before this returns."""
