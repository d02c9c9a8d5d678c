"""Write claims and outcomes to the store in batches, on one thread.

Every task costs two writes, a claim before it runs and its outcome after.
Committed one by one they would cost a disk flush each; the recorder
gathers whatever the pool threads asked for meanwhile and commits it in
one transaction. A pool thread waits for its claim, because a task must
not run before its claim is committed; it does not wait for its outcome,
whose message is acknowledged once the outcome is committed.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .batching import next_batch
from .store import Claim, ClaimState, Outcome, Runner, TaskStore

__all__ = ["Recorder"]

logger = logging.getLogger(__name__)

#: Requests written in one transaction at the most.
_MAX_BATCH = 500
#: How long a batch waits for the next request of the threads its last
#: write answered. Woken together, they finish short tasks one after
#: another, as each gets its turn at the interpreter; without the wait
#: each would cost a transaction of its own. A request later than this
#: after the one before, as after a task that does real work, is not
#: waited for.
_LINGER_SECONDS = 0.0003
#: The longest a batch waits for such requests in all.
_MAX_LINGER_SECONDS = 0.002


class _Request:
    """Something a pool thread asked the recorder to write."""


@dataclass
class _ClaimRequest(_Request):
    task_id: str
    done: threading.Event = field(default_factory=threading.Event)
    claim: Claim | None = None
    error: BaseException | None = None


@dataclass
class _OutcomeRequest(_Request):
    outcome: Outcome
    #: Called on the recorder's thread once committed, or with the error.
    on_recorded: Callable[[BaseException | None], None]


class Recorder:
    """The thread that writes every claim and outcome of a service."""

    def __init__(self, store: TaskStore, runner: Runner) -> None:
        self._store = store
        self._runner = runner
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        #: Requests due soon: an outcome, and often the next claim, from
        #: each thread whose claim the last write answered.
        self._expected = 0

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name="carrot-recorder", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Write what was asked so far, then end the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def claim(self, task_id: str) -> Claim:
        """Claim the row ``task_id``; returns once the claim is committed."""
        request = _ClaimRequest(task_id)
        self._queue.put(request)
        request.done.wait()
        if request.error is not None:
            raise request.error
        assert request.claim is not None
        return request.claim

    def settle(
        self, outcome: Outcome, on_recorded: Callable[[BaseException | None], None]
    ) -> None:
        """Store ``outcome`` soon; ``on_recorded`` says when it is committed."""
        self._queue.put(_OutcomeRequest(outcome, on_recorded))

    def _run(self) -> None:
        while batch := next_batch(
            self._queue,
            _MAX_BATCH,
            expected=self._expected,
            linger_seconds=_LINGER_SECONDS,
            max_linger_seconds=_MAX_LINGER_SECONDS,
        ):
            self._write(batch)

    def _write(self, batch: list[_Request]) -> None:
        claims = [r for r in batch if isinstance(r, _ClaimRequest)]
        outcomes = [r for r in batch if isinstance(r, _OutcomeRequest)]
        try:
            result = self._store.record(
                [request.outcome for request in outcomes],
                [request.task_id for request in claims],
                self._runner,
            )
        except Exception as exc:
            logger.exception(
                "could not write %d outcome(s) and %d claim(s); their "
                "messages go back to the queue",
                len(outcomes),
                len(claims),
            )
            self._answer(claims, outcomes, None, exc)
        else:
            self._answer(claims, outcomes, result, None)

    def _answer(
        self,
        claims: list[_ClaimRequest],
        outcomes: list[_OutcomeRequest],
        result: Mapping[str, Claim] | None,
        error: BaseException | None,
    ) -> None:
        for outcome in outcomes:
            outcome.on_recorded(error)
        self._expected = 0
        for request in claims:
            if result is not None:
                request.claim = result[request.task_id]
                if request.claim.state is ClaimState.CLAIMED:
                    self._expected += 2
            request.error = error
            request.done.set()
