"""Run carrot's service as the benchmark's worker process.

``python -m bench.carrot_service`` sets Django up with `bench.settings`,
prints ``ready`` once every worker's queue is consumed and runs until
SIGTERM. With ``CARROT_BENCH_PROFILE`` set to a folder it profiles
itself and writes the profile there on the way out.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    # Like ``carrot worker --loglevel warning``: every system under test
    # logs its warnings only.
    logging.basicConfig(level=logging.WARNING)
    django.setup()
    from carrot.utils import WorkerService

    from .profiling import Capture

    profile_dir = os.environ.get("CARROT_BENCH_PROFILE")
    capture = Capture() if profile_dir else None
    if capture is not None:
        capture.start()

    service = WorkerService()
    announce = threading.Thread(
        target=_announce, args=(service.service.ready,), name="bench-announce"
    )
    announce.daemon = True
    announce.start()
    service.start()

    if capture is not None:
        capture.stop()
        capture.dump(Path(profile_dir))  # type: ignore[arg-type]
    if service.interrupted:
        os._exit(1)


def _announce(ready: threading.Event) -> None:
    ready.wait()
    print("ready", flush=True)


if __name__ == "__main__":
    main()
