from django.apps import AppConfig


class CarrotConfig(AppConfig):
    name = "carrot"
    verbose_name = "Carrot task queue"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Importing registers the system checks and signal receivers; neither
        # reads settings nor connects to the broker.
        from . import checks, signals  # noqa: F401
