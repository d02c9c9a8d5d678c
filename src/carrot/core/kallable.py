"""Resolve a dotted path to the callable a task runs."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection
from typing import Any

from .errors import InvalidTask

__all__ = ["check_allowed", "resolve"]


def resolve(
    path: str, allowed_modules: Collection[str] | None = None
) -> Callable[..., Any]:
    """Import ``path`` and return the callable it names.

    The longest importable module prefix is imported, then the rest is
    read as attributes, so ``pkg.mod.Class.method`` works. Raises
    `InvalidTask` when the path does not name a callable.
    """
    if not isinstance(path, str) or not path:
        raise InvalidTask("kallable must be a dotted path such as 'app.tasks.send'")
    check_allowed(path, allowed_modules)

    parts = path.split(".")
    if len(parts) < 2 or not all(part.isidentifier() for part in parts):
        raise InvalidTask(
            f"kallable {path!r} is not a dotted path to a function; "
            "write it as 'package.module.function'"
        )

    target = _import_longest(parts, path)
    if not callable(target):
        raise InvalidTask(
            f"kallable {path!r} names an object of type {type(target).__name__}, "
            "which cannot be called"
        )
    return target


def check_allowed(path: str, allowed_modules: Collection[str] | None) -> None:
    """Refuse ``path`` unless it lies in one of ``allowed_modules``.

    ``None`` allows every module. A module allows its submodules too.
    """
    if allowed_modules is None:
        return
    for module in allowed_modules:
        if path.startswith(module + "."):
            return
    raise InvalidTask(
        f"kallable {path!r} is outside the allowed modules "
        f"({', '.join(sorted(allowed_modules)) or 'none'}); "
        "add its module to CARROT_ALLOWED_MODULES"
    )


def _import_longest(parts: list[str], path: str) -> object:
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # Only a missing module on the path itself means "try a shorter
            # prefix"; a module that fails to import something else is a bug
            # the user must see.
            if exc.name is not None and module_name.startswith(exc.name):
                continue
            raise InvalidTask(f"kallable {path!r} failed to import: {exc}") from exc
        except Exception as exc:
            raise InvalidTask(f"kallable {path!r} failed to import: {exc}") from exc
        return _get_attributes(module, parts[split:], path)

    raise InvalidTask(f"kallable {path!r} does not name an importable module")


def _get_attributes(target: object, names: list[str], path: str) -> object:
    for name in names:
        try:
            target = getattr(target, name)
        except AttributeError:
            raise InvalidTask(
                f"kallable {path!r} does not exist: "
                f"{type(target).__name__} has no attribute {name!r}"
            ) from None
    return target
