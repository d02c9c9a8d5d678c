"""Check that a task's arguments and result are plain JSON."""

from __future__ import annotations

import json
import math
from typing import Any

from .errors import InvalidTask

__all__ = ["check_args", "check_json", "check_kwargs", "check_size"]

#: How deep nested lists and objects may go before they are refused.
_MAX_DEPTH = 64


def check_args(args: object) -> list[Any]:
    """Return ``args`` as a list, or raise `InvalidTask`."""
    if args is None:
        return []
    if not isinstance(args, (list, tuple)):
        raise InvalidTask(
            f"args must be a list, not {type(args).__name__}; "
            "pass positional arguments as args=[...]"
        )
    check_json(args, "args")
    return list(args)


def check_kwargs(kwargs: object) -> dict[str, Any]:
    """Return ``kwargs`` as a dict with string keys, or raise `InvalidTask`."""
    if kwargs is None:
        return {}
    if not isinstance(kwargs, dict):
        raise InvalidTask(
            f"kwargs must be an object (a dict), not {type(kwargs).__name__}; "
            "pass keyword arguments as kwargs={...}"
        )
    for key in kwargs:
        if not isinstance(key, str) or not key.isidentifier():
            raise InvalidTask(
                f"kwargs key {key!r} is not a valid keyword argument name"
            )
    check_json(kwargs, "kwargs")
    return dict(kwargs)


def check_json(value: object, where: str, _depth: int = 0) -> None:
    """Raise `InvalidTask` unless ``value`` survives JSON unchanged.

    Tuples are accepted as lists. ``where`` names the value in the error,
    for example ``kwargs['when']``.
    """
    if _depth > _MAX_DEPTH:
        raise InvalidTask(f"{where} is nested more than {_MAX_DEPTH} levels deep")

    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidTask(f"{where} is {value!r}, which JSON cannot hold")
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_json(item, f"{where}[{index}]", _depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidTask(
                    f"{where} has the key {key!r}; JSON object keys must be strings"
                )
            check_json(item, f"{where}[{key!r}]", _depth + 1)
        return

    raise InvalidTask(
        f"{where} is a {type(value).__name__}, which is not JSON; "
        "pass plain values (str, int, float, bool, None, list, dict), "
        "for example an id or an ISO date string"
    )


def check_size(args: list[Any], kwargs: dict[str, Any], limit_bytes: int) -> None:
    """Refuse arguments whose JSON is larger than ``limit_bytes``."""
    size = len(json.dumps([args, kwargs], separators=(",", ":")).encode())
    if size > limit_bytes:
        raise InvalidTask(
            f"the task's arguments are {size} bytes of JSON, over the limit of "
            f"{limit_bytes}; store large data elsewhere and pass its id, or "
            "raise CARROT_MAX_PAYLOAD_BYTES"
        )
