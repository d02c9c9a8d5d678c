"""Run one task: claim its row, call its kallable, store the outcome."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Collection

from .errors import InvalidTask
from .kallable import resolve
from .payload import check_json
from .store import ClaimState, Runner, TaskCall, TaskStore

__all__ = ["execute"]

logger = logging.getLogger(__name__)

#: Pauses before asking again for a row that is not there: a message can
#: arrive before a database replica has the commit that created its row.
_MISSING_ROW_PAUSES_SECONDS = (0.1, 0.4, 1.5)


def execute(
    store: TaskStore,
    task_id: str,
    runner: Runner,
    allowed_modules: Collection[str] | None = None,
) -> ClaimState:
    """Run the task row ``task_id`` if it can be claimed.

    Returns the state of the claim. When it is ``CLAIMED`` the outcome has
    been stored, so the message may be acknowledged.
    """
    claim = store.claim(task_id, runner)
    for pause in _MISSING_ROW_PAUSES_SECONDS:
        if claim.state is not ClaimState.MISSING:
            break
        time.sleep(pause)
        claim = store.claim(task_id, runner)

    if claim.call is None:
        _log_unclaimed(task_id, claim.state)
        return claim.state

    _call(store, claim.call, allowed_modules)
    return ClaimState.CLAIMED


def _call(
    store: TaskStore, call: TaskCall, allowed_modules: Collection[str] | None
) -> None:
    extra = {"action": "run", "task_id": call.task_id}
    logger.info(
        "task %s started: %s (attempt %d)",
        call.task_id,
        call.kallable,
        call.attempt,
        extra=extra,
    )
    started = time.monotonic()

    try:
        function = resolve(call.kallable, allowed_modules)
        result = function(*call.args, **call.kwargs)
        check_json(result, "the return value")
    except BaseException as exc:
        logger.exception(
            "task %s failed: %s",
            call.task_id,
            call.kallable,
            extra={**extra, "action": "fail"},
        )
        store.fail(call.task_id, _describe(exc), traceback.format_exc())
        return

    store.succeed(call.task_id, result)
    logger.info(
        "task %s succeeded in %.3f s",
        call.task_id,
        time.monotonic() - started,
        extra={**extra, "action": "succeed"},
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, InvalidTask):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _log_unclaimed(task_id: str, state: ClaimState) -> None:
    extra = {"action": "skip", "task_id": task_id}
    if state is ClaimState.FINISHED:
        logger.info(
            "task %s already finished; duplicate message dropped", task_id, extra=extra
        )
    elif state is ClaimState.BUSY:
        logger.warning(
            "task %s is running in another process; not starting a second copy",
            task_id,
            extra=extra,
        )
    else:
        logger.warning("task %s has no row; message dropped", task_id, extra=extra)
