"""Read carrot's Django settings into a core `Config`.

Settings are read when first needed, never at import, and read again
after ``override_settings`` changes one of them.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from .core import DEFAULT_BROKER_URL, Broker, Config

__all__ = ["broker_url", "get_broker", "get_config"]

#: The environment variable that names the broker when the setting does not.
BROKER_URL_ENV = "CARROT_BROKER_URL"


def broker_url() -> str:
    """The ``CARROT_BROKER_URL`` setting, else the environment, else RabbitMQ."""
    return (
        _setting("BROKER_URL", None)
        or os.environ.get(BROKER_URL_ENV)
        or DEFAULT_BROKER_URL
    )


@functools.cache
def get_config() -> Config:
    """Return the `Config` that the ``CARROT_*`` settings describe."""
    allowed = _setting("ALLOWED_MODULES", None)
    return Config(
        broker_url=broker_url(),
        transport_options=_setting("BROKER_TRANSPORT_OPTIONS", {}),
        queue_prefix=_setting("QUEUE_PREFIX", "carrot"),
        publish_timeout_seconds=_setting("PUBLISH_TIMEOUT_SECONDS", 2.0),
        prefetch_multiplier=_setting("PREFETCH_MULTIPLIER", 4),
        refresh_seconds=_setting("REFRESH_SECONDS", 2.0),
        max_payload_bytes=_setting("MAX_PAYLOAD_BYTES", 1_000_000),
        allowed_modules=tuple(allowed) if allowed is not None else None,
        runner_timeout_seconds=_setting("RUNNER_TIMEOUT_SECONDS", 30.0),
        outbox_grace_seconds=_setting("OUTBOX_GRACE_SECONDS", 10.0),
        republish_seconds=_setting("REPUBLISH_SECONDS", 3600.0),
        max_attempts=_setting("MAX_ATTEMPTS", 3),
        shutdown_grace_seconds=_setting("SHUTDOWN_GRACE_SECONDS", None),
    )


@functools.cache
def get_broker() -> Broker:
    """Return the `Broker` this process publishes to."""
    return Broker(get_config())


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, f"CARROT_{name}", default)


@receiver(setting_changed)
def _reset(setting: str, **kwargs: Any) -> None:
    if not setting.startswith("CARROT_"):
        return
    from .publishing import get_relay

    if get_relay.cache_info().currsize:
        get_relay().close(timeout_seconds=get_config().publish_timeout_seconds)
        get_relay.cache_clear()
    get_config.cache_clear()
    get_broker.cache_clear()
