"""The Celery app of the benchmark: ``celery -A bench.celery_app worker``.

``CARROT_BENCH_CELERY`` picks the variant the worker runs:

- ``plain``: no result store and no publisher confirms, Celery's
  defaults (a task can be lost on publish);
- ``confirm``: ``confirm_publish`` in the broker transport options;
- ``results``: django-celery-results on the benchmark's PostgreSQL
  database, a row per task like carrot, with Django's default settings.
"""

from __future__ import annotations

import os

from celery import Celery

from . import probe, services

VARIANTS = ("plain", "confirm", "results")


def make_app(variant: str) -> Celery:
    """Return the Celery app of ``variant``, with its two tasks."""
    if variant == "results":
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
        import django

        django.setup()
    app = Celery("carrot_bench", set_as_current=False)
    app.conf.update(
        broker_url=services.BROKER_URL,
        task_default_queue=services.CELERY_QUEUE,
        task_ignore_result=variant != "results",
        result_backend="django-db" if variant == "results" else None,
        broker_transport_options=(
            {"confirm_publish": True} if variant == "confirm" else {}
        ),
        worker_hijack_root_logger=False,
    )
    app.task(name="bench.noop")(probe.done)
    app.task(name="bench.stamp")(probe.latency)
    return app


app = make_app(os.environ.get("CARROT_BENCH_CELERY", "plain"))
