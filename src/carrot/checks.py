"""System checks: a wrong carrot setting fails ``manage.py check``.

Settings are read when the checks run, never at import. Each setting has
its own check id, so one run reports every wrong setting at once:

=========== ==================================================
carrot.E001 ``CARROT_BROKER_URL`` is not a URL string
carrot.E002 kombu cannot load the broker URL's transport
carrot.E003 ``CARROT_ALLOWED_MODULES`` is not a list of modules
carrot.E004 ``CARROT_BROKER_TRANSPORT_OPTIONS`` is not a dict
carrot.E005 ``CARROT_QUEUE_PREFIX`` is not a valid queue name
carrot.E006 ``CARROT_PUBLISH_TIMEOUT_SECONDS`` is not positive
carrot.E007 ``CARROT_PREFETCH_MULTIPLIER`` is not an integer >= 1
carrot.E008 ``CARROT_REFRESH_SECONDS`` is not positive
carrot.E009 ``CARROT_MAX_PAYLOAD_BYTES`` is not an integer >= 1
carrot.E010 ``CARROT_RUNNER_TIMEOUT_SECONDS`` is not positive
carrot.E011 ``CARROT_OUTBOX_GRACE_SECONDS`` is negative
carrot.E012 ``CARROT_MAX_ATTEMPTS`` is not an integer >= 1
carrot.E013 ``CARROT_SHUTDOWN_GRACE_SECONDS`` is negative
carrot.E014 settings that are each valid do not work together
carrot.E015 ``CARROT_REPUBLISH_SECONDS`` is not positive or None
=========== ==================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from kombu.connection import Connection

from .conf import broker_url, get_config
from .core.config import check_worker_name

__all__ = ["check_settings"]


def _is_url(value: object) -> bool:
    # Empty means unset, as in conf.broker_url: the environment decides.
    return value is None or isinstance(value, str)


def _is_mapping(value: object) -> bool:
    return isinstance(value, Mapping)


def _is_queue_name(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        check_worker_name(value)
    except ValueError:
        return False
    return True


def _is_positive_number(value: object) -> bool:
    return _is_non_negative_number(value) and value != 0


def _is_non_negative_number(value: object) -> bool:
    # bool is an int to Python, but True seconds is a mistake, not a number.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and value >= 0


def _is_optional_non_negative_number(value: object) -> bool:
    return value is None or _is_non_negative_number(value)


def _is_optional_positive_number(value: object) -> bool:
    return value is None or _is_positive_number(value)


def _is_positive_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _is_module_list(value: object) -> bool:
    # A lone string is the usual slip: it would be read as one module per
    # character, and then every kallable would be refused.
    if value is None:
        return True
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set)):
        return False
    return all(_is_module_name(module) for module in value)


def _is_module_name(value: object) -> bool:
    return isinstance(value, str) and all(
        part.isidentifier() for part in value.split(".")
    )


@dataclass(frozen=True)
class _Rule:
    setting: str
    is_valid: Callable[[object], bool]
    id: str
    #: What the setting must be, completing "CARROT_X must be ...".
    expected: str
    hint: str
    #: Whether the value may hold a password, and so must not be shown.
    secret: bool = False


#: One rule per setting, checked only when the project sets it.
_RULES = (
    _Rule(
        "CARROT_BROKER_URL",
        _is_url,
        "carrot.E001",
        "a broker URL string",
        "For example CARROT_BROKER_URL = 'amqp://guest:guest@localhost:5672//'.",
        secret=True,
    ),
    _Rule(
        "CARROT_ALLOWED_MODULES",
        _is_module_list,
        "carrot.E003",
        "a list of dotted module names, or None",
        "For example CARROT_ALLOWED_MODULES = ['myapp.tasks']; a single "
        "module still goes in a list.",
    ),
    _Rule(
        "CARROT_BROKER_TRANSPORT_OPTIONS",
        _is_mapping,
        "carrot.E004",
        "a dict of kombu transport options",
        "For example CARROT_BROKER_TRANSPORT_OPTIONS = {'visibility_timeout': "
        "3600}, or leave it out.",
        secret=True,
    ),
    _Rule(
        "CARROT_QUEUE_PREFIX",
        _is_queue_name,
        "carrot.E005",
        "a name of up to 100 letters, digits, '.', '_' or '-'",
        "For example CARROT_QUEUE_PREFIX = 'myproject'; it names the exchange "
        "and starts every queue name.",
    ),
    _Rule(
        "CARROT_PUBLISH_TIMEOUT_SECONDS",
        _is_positive_number,
        "carrot.E006",
        "a positive number of seconds",
        "For example CARROT_PUBLISH_TIMEOUT_SECONDS = 2.",
    ),
    _Rule(
        "CARROT_PREFETCH_MULTIPLIER",
        _is_positive_integer,
        "carrot.E007",
        "an integer of at least 1",
        "For example CARROT_PREFETCH_MULTIPLIER = 2; a worker holds this many "
        "messages per unit of concurrency.",
    ),
    _Rule(
        "CARROT_REFRESH_SECONDS",
        _is_positive_number,
        "carrot.E008",
        "a positive number of seconds",
        "For example CARROT_REFRESH_SECONDS = 2.",
    ),
    _Rule(
        "CARROT_MAX_PAYLOAD_BYTES",
        _is_positive_integer,
        "carrot.E009",
        "an integer number of bytes of at least 1",
        "For example CARROT_MAX_PAYLOAD_BYTES = 1_000_000.",
    ),
    _Rule(
        "CARROT_RUNNER_TIMEOUT_SECONDS",
        _is_positive_number,
        "carrot.E010",
        "a positive number of seconds",
        "For example CARROT_RUNNER_TIMEOUT_SECONDS = 30; a service silent "
        "this long is taken for dead.",
    ),
    _Rule(
        "CARROT_OUTBOX_GRACE_SECONDS",
        _is_non_negative_number,
        "carrot.E011",
        "a number of seconds of at least 0",
        "For example CARROT_OUTBOX_GRACE_SECONDS = 10.",
    ),
    _Rule(
        "CARROT_MAX_ATTEMPTS",
        _is_positive_integer,
        "carrot.E012",
        "an integer of at least 1",
        "For example CARROT_MAX_ATTEMPTS = 3; it counts the first attempt.",
    ),
    _Rule(
        "CARROT_SHUTDOWN_GRACE_SECONDS",
        _is_optional_non_negative_number,
        "carrot.E013",
        "a number of seconds of at least 0, or None",
        "For example CARROT_SHUTDOWN_GRACE_SECONDS = 60, or None to wait for "
        "running tasks however long they take.",
    ),
    _Rule(
        "CARROT_REPUBLISH_SECONDS",
        _is_optional_positive_number,
        "carrot.E015",
        "a positive number of seconds, or None",
        "For example CARROT_REPUBLISH_SECONDS = 3600, or None never to "
        "publish a waiting task a second time.",
    ),
)


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Report every carrot setting that cannot work, with the fix."""
    errors: list[CheckMessage] = [
        _error(rule)
        for rule in _RULES
        if hasattr(settings, rule.setting)
        and not rule.is_valid(getattr(settings, rule.setting))
    ]
    if not any(error.id == "carrot.E001" for error in errors):
        errors.extend(_check_transport(broker_url()))
    if not errors:
        errors.extend(_check_together())
    return errors


def _error(rule: _Rule) -> Error:
    value = getattr(settings, rule.setting)
    shown = f"a {type(value).__name__} value" if rule.secret else repr(value)
    return Error(
        f"{rule.setting} must be {rule.expected}, not {shown}",
        hint=rule.hint,
        id=rule.id,
    )


def _check_together() -> list[CheckMessage]:
    # Config holds the rules that span settings, such as the runner timeout
    # against the refresh interval; building one applies them.
    try:
        get_config()
    except (TypeError, ValueError) as exc:
        return [
            Error(
                f"the carrot settings do not work together: {exc}",
                hint="Change the settings the message names: "
                "runner_timeout_seconds is CARROT_RUNNER_TIMEOUT_SECONDS, "
                "and so on for each.",
                id="carrot.E014",
            )
        ]
    return []


def _check_transport(url: str) -> list[CheckMessage]:
    try:
        # Loading the transport class imports its client library; nothing
        # connects to the broker.
        Connection(url).transport  # noqa: B018
    except Exception as exc:
        return [
            Error(
                f"CARROT_BROKER_URL uses the transport {_scheme(url)!r}, which "
                f"kombu cannot load ({_reason(exc)})",
                hint="Use amqp://, redis:// or memory://, for example "
                "'amqp://guest:guest@localhost:5672//'; redis:// "
                "needs the 'redis' package.",
                id="carrot.E002",
            )
        ]
    return []


def _reason(exc: Exception) -> str:
    # An import error names the missing client library; other errors may
    # quote the URL, so only their type is shown.
    if isinstance(exc, ImportError):
        return f"{type(exc).__name__}: {exc}"
    return type(exc).__name__


def _scheme(url: str) -> str:
    # Only the scheme is shown: the rest of a URL may hold a password.
    scheme, separator, _ = url.partition("://")
    return scheme if separator else "amqp"
