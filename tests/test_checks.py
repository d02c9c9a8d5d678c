from __future__ import annotations

import sys

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from carrot.checks import check_settings

#: A password no check message has any reason to contain.
PASSWORD = "Qm7-carrot-check-pw"

#: Each setting, a value it refuses, and the id of the error it reports.
WRONG_SETTINGS = [
    ("CARROT_BROKER_URL", ["amqp://localhost//"], "carrot.E001"),
    ("CARROT_BROKER_URL", "nosuchtransport://localhost//", "carrot.E002"),
    ("CARROT_ALLOWED_MODULES", "myapp.tasks", "carrot.E003"),
    ("CARROT_ALLOWED_MODULES", ["myapp.tasks", ""], "carrot.E003"),
    ("CARROT_ALLOWED_MODULES", ["myapp/tasks"], "carrot.E003"),
    ("CARROT_BROKER_TRANSPORT_OPTIONS", [("visibility_timeout", 60)], "carrot.E004"),
    ("CARROT_QUEUE_PREFIX", "my project", "carrot.E005"),
    ("CARROT_QUEUE_PREFIX", 7, "carrot.E005"),
    ("CARROT_PUBLISH_TIMEOUT_SECONDS", 0, "carrot.E006"),
    ("CARROT_PUBLISH_TIMEOUT_SECONDS", "2", "carrot.E006"),
    ("CARROT_PUBLISH_TIMEOUT_SECONDS", float("inf"), "carrot.E006"),
    ("CARROT_PREFETCH_MULTIPLIER", 0, "carrot.E007"),
    ("CARROT_PREFETCH_MULTIPLIER", 1.5, "carrot.E007"),
    ("CARROT_PREFETCH_MULTIPLIER", True, "carrot.E007"),
    ("CARROT_REFRESH_SECONDS", -1, "carrot.E008"),
    ("CARROT_REFRESH_SECONDS", None, "carrot.E008"),
    ("CARROT_MAX_PAYLOAD_BYTES", "1MB", "carrot.E009"),
    ("CARROT_MAX_PAYLOAD_BYTES", 0, "carrot.E009"),
    ("CARROT_RUNNER_TIMEOUT_SECONDS", 0, "carrot.E010"),
    ("CARROT_OUTBOX_GRACE_SECONDS", -0.5, "carrot.E011"),
    ("CARROT_OUTBOX_GRACE_SECONDS", "10", "carrot.E011"),
    ("CARROT_MAX_ATTEMPTS", 0, "carrot.E012"),
    ("CARROT_MAX_ATTEMPTS", 2.0, "carrot.E012"),
    ("CARROT_SHUTDOWN_GRACE_SECONDS", -1, "carrot.E013"),
    ("CARROT_SHUTDOWN_GRACE_SECONDS", float("nan"), "carrot.E013"),
    ("CARROT_REPUBLISH_SECONDS", 0, "carrot.E015"),
    ("CARROT_REPUBLISH_SECONDS", "1h", "carrot.E015"),
]

#: Every setting at a value that works, other than the defaults.
GOOD_SETTINGS = {
    "CARROT_BROKER_URL": "redis://127.0.0.1:6379/3",
    "CARROT_ALLOWED_MODULES": ("tests.examples", "myapp.tasks"),
    "CARROT_BROKER_TRANSPORT_OPTIONS": {"visibility_timeout": 3600},
    "CARROT_QUEUE_PREFIX": "my-project.tasks_1",
    "CARROT_PUBLISH_TIMEOUT_SECONDS": 0.5,
    "CARROT_PREFETCH_MULTIPLIER": 1,
    "CARROT_REFRESH_SECONDS": 5,
    "CARROT_MAX_PAYLOAD_BYTES": 10_000,
    "CARROT_RUNNER_TIMEOUT_SECONDS": 60,
    "CARROT_OUTBOX_GRACE_SECONDS": 0,
    "CARROT_MAX_ATTEMPTS": 1,
    "CARROT_SHUTDOWN_GRACE_SECONDS": 0.0,
    "CARROT_REPUBLISH_SECONDS": None,
}


@pytest.mark.parametrize(("setting", "value", "check_id"), WRONG_SETTINGS)
def test_a_wrong_setting_fails_its_check_with_a_hint(
    settings, setting, value, check_id
):
    setattr(settings, setting, value)

    errors = check_settings()

    assert [error.id for error in errors] == [check_id]
    assert setting in errors[0].msg
    assert errors[0].hint


def test_the_test_settings_pass_every_check():
    assert check_settings() == []


def test_good_values_of_every_setting_pass_every_check(settings):
    for setting, value in GOOD_SETTINGS.items():
        setattr(settings, setting, value)

    assert check_settings() == []


def test_no_setting_at_all_passes_every_check(settings, monkeypatch):
    monkeypatch.delenv("CARROT_BROKER_URL", raising=False)
    for setting in GOOD_SETTINGS:
        if hasattr(settings, setting):
            delattr(settings, setting)

    assert check_settings() == []


def test_a_shutdown_grace_of_none_passes_its_check(settings):
    settings.CARROT_SHUTDOWN_GRACE_SECONDS = None

    assert check_settings() == []


def test_settings_that_do_not_work_together_fail_their_check(settings):
    settings.CARROT_REFRESH_SECONDS = 20
    settings.CARROT_RUNNER_TIMEOUT_SECONDS = 30

    errors = check_settings()

    assert [error.id for error in errors] == ["carrot.E014"]
    assert "runner_timeout_seconds" in errors[0].msg
    assert "CARROT_RUNNER_TIMEOUT_SECONDS" in errors[0].hint


@pytest.mark.parametrize("value", [None, ""])
def test_an_empty_broker_url_leaves_the_choice_to_the_environment(
    settings, monkeypatch, value
):
    settings.CARROT_BROKER_URL = value
    monkeypatch.setenv("CARROT_BROKER_URL", "nosuchtransport://localhost//")

    assert [error.id for error in check_settings()] == ["carrot.E002"]


def test_every_wrong_setting_is_reported_in_one_run(settings):
    settings.CARROT_PREFETCH_MULTIPLIER = 0
    settings.CARROT_REFRESH_SECONDS = 0
    settings.CARROT_QUEUE_PREFIX = ""

    ids = [error.id for error in check_settings()]

    assert ids == ["carrot.E005", "carrot.E007", "carrot.E008"]


def test_a_transport_with_a_missing_client_library_fails_its_check(
    settings, monkeypatch
):
    # None in sys.modules makes an import fail as if the library were not
    # installed; the sqs transport needs boto3 and botocore.
    for module in ("boto3", "botocore", "kombu.transport.SQS"):
        monkeypatch.setitem(sys.modules, module, None)
    settings.CARROT_BROKER_URL = "sqs://localhost"

    errors = check_settings()

    assert [error.id for error in errors] == ["carrot.E002"]
    assert "'sqs'" in errors[0].msg
    assert "ModuleNotFoundError" in errors[0].msg


def test_a_check_never_shows_the_broker_password(settings):
    settings.CARROT_BROKER_URL = f"nosuchtransport://carrot:{PASSWORD}@localhost//"
    settings.CARROT_BROKER_TRANSPORT_OPTIONS = [("password", PASSWORD)]

    errors = check_settings()

    assert sorted(error.id for error in errors) == ["carrot.E002", "carrot.E004"]
    for error in errors:
        assert PASSWORD not in f"{error.msg} {error.hint}"


def test_a_url_password_in_a_setting_of_the_wrong_type_is_not_shown(settings):
    settings.CARROT_BROKER_URL = {"url": f"amqp://carrot:{PASSWORD}@localhost//"}

    errors = check_settings()

    assert [error.id for error in errors] == ["carrot.E001"]
    assert PASSWORD not in errors[0].msg
    assert "a dict value" in errors[0].msg


@pytest.mark.django_db
def test_manage_py_check_fails_on_a_wrong_setting(settings):
    # On Django 6.1 the model checks read the database's features.
    settings.CARROT_PREFETCH_MULTIPLIER = "2"

    with pytest.raises(SystemCheckError, match=r"carrot\.E007"):
        call_command("check")
