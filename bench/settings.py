"""Django settings of the benchmark: Django's defaults and carrot's.

``CONN_MAX_AGE`` is left at Django's default (0, a connection per
request), as a project that never tuned it would have. The database is
``carrot_bench`` on the local PostgreSQL; `bench.services` creates it.
"""

import importlib.util

from bench import services

SECRET_KEY = "carrot-bench"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = ["carrot"]
if importlib.util.find_spec("django_celery_results") is not None:
    # Celery's result rows live in the same database as carrot's.
    INSTALLED_APPS.append("django_celery_results")

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": services.PG_DATABASE,
        "HOST": services.PG_HOST,
        "USER": services.PG_USER,
    }
}

CARROT_BROKER_URL = services.BROKER_URL
CARROT_QUEUE_PREFIX = services.CARROT_PREFIX
