"""Record a service alive from a thread of its own.

Other services hand back the running tasks of a service that has been
silent for ``runner_timeout_seconds``. The heartbeat must therefore go on
while the service waits for a broker that does not answer, or for its
tasks to finish after SIGTERM: it does not share the service's thread.
"""

from __future__ import annotations

import logging
import threading

from .store import Runner, TaskStore

__all__ = ["Heartbeat"]

logger = logging.getLogger(__name__)


class Heartbeat:
    """Calls ``store.register(runner)`` every ``interval_seconds``."""

    def __init__(self, store: TaskStore, runner: Runner, interval_seconds: float):
        self._store = store
        self._runner = runner
        self._interval = interval_seconds
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        """Record the runner alive now; raises if the store fails."""
        self._store.register(self._runner)

    def start(self) -> None:
        self._stopped.clear()
        self._thread = threading.Thread(
            target=self._run, name="carrot-heartbeat", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop beating; the runner goes silent from now on."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self.beat()
            except Exception:
                logger.exception(
                    "could not record this service alive; it is taken for "
                    "dead if this lasts"
                )
