"""Settings for the test suite.

``CARROT_TEST_DATABASE=postgres`` runs the suite on the local PostgreSQL;
the default is a SQLite file, which, unlike SQLite's shared in-memory
database, lets the service's threads write while the test reads.
"""

import os
import tempfile

SECRET_KEY = "carrot-tests"
DEBUG = False
USE_TZ = True
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "carrot",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

if os.environ.get("CARROT_TEST_DATABASE") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "test",
            "HOST": os.environ.get("CARROT_TEST_PGHOST", "127.0.0.1"),
            "USER": os.environ.get("CARROT_TEST_PGUSER", "postgres"),
            "TEST": {"NAME": f"carrot_test_{os.getpid()}"},
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(tempfile.gettempdir(), "carrot-tests.sqlite3"),
            "OPTIONS": {"timeout": 30},
            "TEST": {
                "NAME": os.path.join(
                    tempfile.gettempdir(), f"carrot-test-{os.getpid()}.sqlite3"
                )
            },
        }
    }

CARROT_BROKER_URL = "memory://localhost//"
CARROT_BROKER_TRANSPORT_OPTIONS = {"polling_interval": 0.01}
CARROT_REFRESH_SECONDS = 0.2

# Admin tests log users in; the default hasher is slow on purpose.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
