"""System checks: a wrong carrot setting fails ``manage.py check``."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, register
from kombu.connection import Connection

from .conf import get_config

__all__ = ["check_settings"]


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Report carrot settings that cannot work, with the fix."""
    try:
        config = get_config()
    except (TypeError, ValueError) as exc:
        return [
            Error(
                f"carrot settings are not valid: {exc}",
                hint="See the settings page of the carrot documentation.",
                id="carrot.E001",
            )
        ]

    try:
        Connection(config.broker_url).transport  # noqa: B018 - loads the transport
    except Exception as exc:
        scheme = config.broker_url.partition("://")[0]
        return [
            Error(
                f"CARROT_BROKER_URL uses the transport {scheme!r}, which "
                f"kombu cannot load ({type(exc).__name__})",
                hint="Use amqp://, redis:// or memory://, for example "
                "'amqp://guest:guest@localhost:5672//'; redis:// "
                "needs the 'redis' package.",
                id="carrot.E002",
            )
        ]

    allowed = config.allowed_modules
    if allowed is not None and not all(isinstance(m, str) and m for m in allowed):
        return [
            Error(
                "CARROT_ALLOWED_MODULES must be a list of module names",
                hint="For example CARROT_ALLOWED_MODULES = ['myapp.tasks'].",
                id="carrot.E003",
            )
        ]
    return []
