"""Run a carrot service in this process, as the fault tests start it.

``python -m tests.faults.service_main`` with:

- ``CARROT_FAULTS_DATABASE``: the PostgreSQL database to use;
- ``CARROT_FAULTS_SETTINGS``: a JSON object of Django settings to apply,
  such as ``CARROT_BROKER_URL``;
- ``CARROT_FAULTS_READY``: a file written once the service consumes;
- ``CARROT_FAULTS_INSECURE``: if set, kombu's pickle serializers are
  enabled first, as another library in the process might do.

It logs everything at debug level to standard error, dumps the stacks of
its threads there on SIGUSR1, and exits 0 after a
graceful stop, or 1 at once after an immediate one, leaving the threads
of unfinished tasks behind as the ``carrot`` command does.
"""

from __future__ import annotations

import faulthandler
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

#: Process id and thread in every line: several services share a test.
LOG_FORMAT = (
    "%(asctime)s %(process)d %(threadName)s %(levelname)s %(name)s: %(message)s"
)


def configure() -> None:
    """Apply the settings from the environment, then set Django up."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    os.environ["CARROT_TEST_DATABASE"] = "postgres"
    from django.conf import settings

    settings.DATABASES["default"]["NAME"] = os.environ["CARROT_FAULTS_DATABASE"]
    overrides = json.loads(os.environ.get("CARROT_FAULTS_SETTINGS", "{}"))
    for name, value in overrides.items():
        setattr(settings, name, value)

    import django

    django.setup()


def announce_ready(ready: threading.Event, path: Path) -> None:
    """Write ``path`` once ``ready`` is set, from a daemon thread."""

    def wait() -> None:
        ready.wait()
        path.write_text(str(os.getpid()))

    threading.Thread(target=wait, name="announce-ready", daemon=True).start()


def main() -> None:
    logging.basicConfig(level=logging.DEBUG, format=LOG_FORMAT, stream=sys.stderr)
    # The tests ask for every thread's stack before they kill a service
    # that is still running, so that a hang shows in its log.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    configure()
    if os.environ.get("CARROT_FAULTS_INSECURE"):
        import kombu

        kombu.enable_insecure_serializers()
        logging.getLogger(__name__).warning("enabled kombu's insecure serializers")

    from carrot.utils import WorkerService

    service = WorkerService()
    ready = os.environ.get("CARROT_FAULTS_READY")
    if ready:
        announce_ready(service.service.ready, Path(ready))
    service.start()
    if service.interrupted:
        logging.shutdown()
        os._exit(1)


if __name__ == "__main__":
    main()
