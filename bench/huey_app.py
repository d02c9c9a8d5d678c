"""The Huey app of the benchmark: ``huey_consumer bench.huey_app.huey``."""

from __future__ import annotations

from huey import RedisHuey

from . import probe, services

huey = RedisHuey(services.HUEY_NAME, url=services.REDIS_URL)
noop = huey.task(name="noop")(probe.done)
stamp = huey.task(name="stamp")(probe.latency)
