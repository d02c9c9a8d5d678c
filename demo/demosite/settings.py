"""Settings of the demo site: a shop whose slow work runs as carrot tasks.

``manage.py rundemo`` chooses the database and the broker when it starts;
see its module. ``CARROT_BROKER_URL`` in the environment makes it use that
broker, for example ``CARROT_BROKER_URL=memory://``.
"""

SECRET_KEY = "carrot-demo-not-secret"
DEBUG = True
USE_TZ = True
ROOT_URLCONF = "demosite.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "carrot",
    "shop",
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        # rundemo replaces the name with a file in a fresh temporary directory.
        "NAME": "demo.sqlite3",
        # The service's threads write while the command reads; wait for the
        # lock rather than fail with "database is locked".
        "OPTIONS": {"timeout": 30},
    }
}

#: The demo's exchange and queues, apart from any other project's on the
#: same RabbitMQ; rundemo adds a suffix per run.
CARROT_QUEUE_PREFIX = "carrot-demo"
