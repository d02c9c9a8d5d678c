"""Run one task: claim its row, call its kallable, hand on the outcome."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Collection
from datetime import datetime, timezone

from .errors import InvalidTask
from .kallable import resolve
from .payload import check_json
from .recorder import Recorder
from .store import ClaimState, Outcome, TaskCall

__all__ = ["execute"]

logger = logging.getLogger(__name__)

#: Pauses before asking again for a row that is not there: a message can
#: arrive before a database replica has the commit that created its row.
_MISSING_ROW_PAUSES_SECONDS = (0.1, 0.4, 1.5)


def execute(
    recorder: Recorder,
    task_id: str,
    on_recorded: Callable[[BaseException | None], None],
    allowed_modules: Collection[str] | None = None,
) -> ClaimState:
    """Run the task row ``task_id`` if it can be claimed.

    Returns the state of the claim. When it is ``CLAIMED`` the task has run
    and ``on_recorded`` is called once its outcome is committed (or could
    not be); only then may the message be acknowledged.
    """
    claim = recorder.claim(task_id)
    for pause in _MISSING_ROW_PAUSES_SECONDS:
        if claim.state is not ClaimState.MISSING:
            break
        time.sleep(pause)
        claim = recorder.claim(task_id)

    if claim.call is None:
        _log_unclaimed(task_id, claim.state)
        return claim.state

    recorder.settle(_call(claim.call, allowed_modules), on_recorded)
    return ClaimState.CLAIMED


def _call(call: TaskCall, allowed_modules: Collection[str] | None) -> Outcome:
    extra = {"action": "run", "task_id": call.task_id}
    logger.info(
        "task %s started: %s (attempt %d)",
        call.task_id,
        call.kallable,
        call.attempt,
        extra=extra,
    )
    started_at = _now()
    started = time.monotonic()

    try:
        function = resolve(call.kallable, allowed_modules)
        result = function(*call.args, **call.kwargs)
        check_json(result, "the return value")
    except BaseException as exc:
        # A task's failure is data: it is stored, and the worker goes on.
        logger.exception(
            "task %s failed: %s",
            call.task_id,
            call.kallable,
            extra={**extra, "action": "fail"},
        )
        return Outcome(
            call.task_id,
            succeeded=False,
            error=_describe(exc),
            traceback=traceback.format_exc(),
            started_at=started_at,
            finished_at=_now(),
        )

    logger.info(
        "task %s succeeded in %.3f s",
        call.task_id,
        time.monotonic() - started,
        extra={**extra, "action": "succeed"},
    )
    return Outcome(
        call.task_id,
        succeeded=True,
        result=result,
        started_at=started_at,
        finished_at=_now(),
    )


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, InvalidTask):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _log_unclaimed(task_id: str, state: ClaimState) -> None:
    extra = {"action": "skip", "task_id": task_id}
    if state is ClaimState.FINISHED:
        logger.info(
            "task %s already finished; duplicate message dropped",
            task_id,
            extra=extra,
        )
    elif state is ClaimState.BUSY:
        logger.warning(
            "task %s is running in another process; not starting a second copy",
            task_id,
            extra=extra,
        )
    else:
        logger.warning("task %s has no row; message dropped", task_id, extra=extra)
