"""Create tasks one at a time under the profiler, in a process of its own.

``python -m bench.profile_enqueue COUNT FOLDER``: a fresh process, so that
every thread carrot starts to publish is profiled from its first call.
Writes the profile and ``timings.json`` to FOLDER.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main() -> None:
    count, folder = int(sys.argv[1]), Path(sys.argv[2])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    from .profiling import Capture
    from .run_carrot import time_creates

    capture = Capture()
    capture.start()
    returned, published = time_creates(count)
    capture.stop()

    capture.dump(folder)
    timings = {"create_seconds": returned, "publish_seconds": published}
    (folder / "timings.json").write_text(json.dumps(timings))


if __name__ == "__main__":
    main()
