"""SIGTERM and SIGINT, the signals that stop a service."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

__all__ = ["on_stop_signals"]

#: What a process manager or a terminal sends to stop a process.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def on_stop_signals(handler: Callable[[signal.Signals], None]) -> Callable[[], None]:
    """Call ``handler`` on SIGTERM and SIGINT until the returned function runs.

    Python lets only the main thread set signal handlers; in another
    thread nothing is installed, and the caller is stopped by its own code.
    The returned function puts back the handlers there were before.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handle(signum: int, frame: FrameType | None) -> None:
        handler(signal.Signals(signum))

    previous = {sig: signal.signal(sig, handle) for sig in STOP_SIGNALS}

    def restore() -> None:
        for sig, earlier in previous.items():
            signal.signal(sig, earlier)

    return restore
