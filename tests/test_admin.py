from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from carrot.models import Task, Worker
from carrot.publishing import flush

pytestmark = pytest.mark.django_db

TASK_CHANGELIST = reverse("admin:carrot_task_changelist")
TASK_ADD = reverse("admin:carrot_task_add")
WORKER_CHANGELIST = reverse("admin:carrot_worker_changelist")

#: A password no page has any other reason to contain.
BROKER_PASSWORD = "Zx9-carrot-broker-pw-41q"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # The admin user's password is hashed for every test; the default
    # hasher is slow on purpose, which only slows the suite down.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def make_task(kallable: str = "tests.examples.tasks.add", **fields: object) -> Task:
    """Store a task, then set the fields the service would set."""
    task = Task.objects.create(kallable=kallable, args=[1, 2])
    if fields:
        Task.objects.filter(pk=task.pk).update(**fields)
        task.refresh_from_db()
    return task


def make_failed_task() -> Task:
    started = timezone.now()
    return make_task(
        "tests.examples.tasks.fail",
        status=Task.Status.FAILED,
        attempts=1,
        error="ValueError: the <b>cheese</b> ran out",
        traceback=(
            "Traceback (most recent call last):\n"
            '  File "tests/examples/tasks.py", line 27, in fail\n'
            "    raise ValueError(message)\n"
            "ValueError: the <b>cheese</b> ran out"
        ),
        started_at=started,
        finished_at=started + timedelta(seconds=1.5),
    )


def change_url(obj: Task | Worker) -> str:
    return reverse(f"admin:carrot_{obj._meta.model_name}_change", args=[obj.pk])


def cell(row: str, field: str) -> str:
    """The text of the changelist cell of ``field`` in the HTML ``row``."""
    found = re.search(rf'<td class="field-{field}">(.*?)</td>', row, re.DOTALL)
    assert found is not None, f"no {field} cell in {row}"
    return re.sub(r"<[^>]+>", "", found[1]).strip()


def page(client, url: str, **params: str) -> str:
    response = client.get(url, params)
    assert response.status_code == 200, response.content[:2000]
    return response.content.decode()


def add_task(client, **data: str):
    form = {"kallable": "", "args": "[]", "kwargs": "{}", "worker": "default"}
    form.update(data)
    return client.post(TASK_ADD, form)


def run_again(client, *tasks: Task):
    return client.post(
        TASK_CHANGELIST,
        {"action": "run_again", "_selected_action": [str(t.pk) for t in tasks]},
        follow=True,
    )


def test_the_worker_changelist_counts_each_workers_waiting_and_running_tasks(
    admin_client,
):
    Worker.objects.create(name="mail", description="Sends the newsletters")
    make_task()
    make_task()
    make_task(status=Task.Status.RUNNING)
    Task.objects.update(worker="mail")
    make_task()

    content = page(admin_client, WORKER_CHANGELIST)

    rows = content.split("<tr")
    mail = next(row for row in rows if ">mail</a>" in row)
    default = next(row for row in rows if ">default</a>" in row)
    assert cell(mail, "waiting_tasks") == "2"
    assert cell(mail, "running_tasks") == "1"
    assert cell(mail, "short_description") == "Sends the newsletters"
    assert cell(default, "waiting_tasks") == "1"
    assert cell(default, "running_tasks") == "0"


def test_a_workers_waiting_count_links_to_its_waiting_tasks(admin_client):
    Worker.objects.create(name="mail")
    waiting = make_task(worker="mail")
    running = make_task(worker="mail", status=Task.Status.RUNNING)
    elsewhere = make_task()

    rows = page(admin_client, WORKER_CHANGELIST).split("<tr")
    mail = next(row for row in rows if ">mail</a>" in row)
    link = re.search(r'field-waiting_tasks"><a href="([^"]+)"', mail)
    assert link is not None
    content = page(admin_client, html.unescape(link[1]))

    assert str(waiting.pk)[:8] in content
    assert str(running.pk)[:8] not in content
    assert str(elsewhere.pk)[:8] not in content


def test_the_worker_changelist_makes_as_many_queries_for_many_rows_as_for_one(
    admin_client,
):
    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            page(admin_client, WORKER_CHANGELIST)
        return len(queries)

    one_row = count_queries()
    for n in range(10):
        Worker.objects.create(name=f"worker-{n}")
        make_task(worker=f"worker-{n}")
    assert count_queries() == one_row


def test_the_worker_changelist_filters_by_enabled(admin_client):
    Worker.objects.create(name="paused", enabled=False)

    content = page(admin_client, WORKER_CHANGELIST, enabled__exact="0")

    assert ">paused</a>" in content
    assert ">default</a>" not in content


def test_the_worker_changelist_edits_concurrency_and_enabled_in_place(admin_client):
    worker = Worker.objects.get(name="default")

    response = admin_client.post(
        WORKER_CHANGELIST,
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": str(worker.pk),
            "form-0-concurrency": "9",
            # An unticked box is left out of the form: the worker is disabled.
            "_save": "Save",
        },
    )

    assert response.status_code == 302
    worker.refresh_from_db()
    assert worker.concurrency == 9
    assert worker.enabled is False


def test_a_workers_name_is_read_only_once_created(admin_client):
    worker = Worker.objects.create(name="mail")

    content = page(admin_client, change_url(worker))
    admin_client.post(
        change_url(worker),
        {"name": "renamed", "description": "", "concurrency": "2", "enabled": "on"},
    )

    assert 'name="name"' not in content
    worker.refresh_from_db()
    assert worker.name == "mail"
    assert worker.concurrency == 2


def test_a_worker_is_added_with_its_name(admin_client):
    admin_client.post(
        reverse("admin:carrot_worker_add"),
        {"name": "reports", "description": "", "concurrency": "3", "enabled": "on"},
    )

    assert Worker.objects.get(name="reports").concurrency == 3


def test_the_task_changelist_filters_by_status_worker_and_created_date(
    admin_client,
):
    failed = make_failed_task()
    waiting = make_task()
    old = make_failed_task()
    Task.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=30)
    )
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)

    content = page(
        admin_client,
        TASK_CHANGELIST,
        status__exact="failed",
        worker__name__exact="default",
        created_at__gte=today.isoformat(),
        created_at__lt=(today + timedelta(days=1)).isoformat(),
    )

    assert str(failed.pk)[:8] in content
    assert str(waiting.pk)[:8] not in content
    assert str(old.pk)[:8] not in content
    assert "1.50 s" in content


def test_the_task_changelist_finds_a_task_by_its_short_id(admin_client):
    wanted = make_task()
    other = make_task()

    content = page(admin_client, TASK_CHANGELIST, q=str(wanted.pk)[:8])

    assert str(wanted.pk)[:8] in content
    assert str(other.pk)[:8] not in content


def test_the_task_changelist_finds_tasks_by_kallable(admin_client):
    dog = make_task("tests.examples.tasks.Dog.bark")
    add = make_task()

    content = page(admin_client, TASK_CHANGELIST, q="Dog.bark")

    assert str(dog.pk)[:8] in content
    assert str(add.pk)[:8] not in content


def test_the_task_changelist_makes_as_many_queries_for_many_rows_as_for_one(
    admin_client,
):
    Worker.objects.create(name="mail")
    make_task()

    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            page(admin_client, TASK_CHANGELIST)
        return len(queries)

    one_row = count_queries()
    for _ in range(10):
        make_task(worker="mail")
    assert count_queries() == one_row


def test_a_failed_tasks_page_shows_its_error_and_traceback(admin_client):
    task = make_failed_task()

    content = page(admin_client, change_url(task))

    escaped_error = html.escape("ValueError: the <b>cheese</b> ran out")
    assert f'<pre style="white-space: pre-wrap">{escaped_error}</pre>' in content
    assert html.escape('  File "tests/examples/tasks.py", line 27') in content
    assert "<b>cheese</b>" not in content


def test_a_tasks_page_shows_its_call_and_result_as_pretty_json(admin_client):
    task = Task.objects.create(
        kallable="tests.examples.tasks.Dog.bark", kwargs={"times": 2, "loud": True}
    )
    Task.objects.filter(pk=task.pk).update(
        status=Task.Status.SUCCEEDED, result={"said": "WOOF WOOF"}
    )

    content = page(admin_client, change_url(task))

    assert html.escape('{\n  "loud": true,\n  "times": 2\n}') in content
    assert html.escape('{\n  "said": "WOOF WOOF"\n}') in content


def test_a_tasks_page_is_read_only(admin_client):
    task = make_task()

    content = page(admin_client, change_url(task))
    response = admin_client.post(
        change_url(task), {"kallable": "tests.examples.tasks.fail"}
    )

    assert 'name="_save"' not in content
    assert 'name="kallable"' not in content
    assert response.status_code == 403
    task.refresh_from_db()
    assert task.kallable == "tests.examples.tasks.add"


def test_adding_a_task_with_a_bad_kallable_shows_the_error_and_stores_nothing(
    admin_client,
):
    response = add_task(admin_client, kallable="tests.examples.tasks.nowhere")

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["kallable"]
    assert "has no attribute 'nowhere'" in errors[0]
    assert html.escape("has no attribute 'nowhere'") in response.content.decode()
    assert not Task.objects.exists()


def test_adding_a_task_with_args_that_are_not_a_list_stores_nothing(admin_client):
    response = add_task(
        admin_client, kallable="tests.examples.tasks.add", args='{"a": 1}'
    )

    assert response.status_code == 200
    assert "args must be a list" in response.content.decode()
    assert not Task.objects.exists()


def test_adding_a_task_outside_the_allowed_modules_stores_nothing(
    admin_client, settings
):
    settings.CARROT_ALLOWED_MODULES = ["tests.elsewhere"]

    response = add_task(admin_client, kallable="tests.examples.tasks.add")

    assert "CARROT_ALLOWED_MODULES" in response.content.decode()
    assert not Task.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_adding_a_good_task_stores_and_publishes_it(admin_client):
    response = add_task(
        admin_client, kallable="tests.examples.tasks.add", args="[2, 3]"
    )

    assert response.status_code == 302
    assert flush(10), "the task was not published"
    task = Task.objects.get()
    assert task.kallable == "tests.examples.tasks.add"
    assert task.args == [2, 3]
    assert task.kwargs == {}
    assert task.worker_id == "default"
    assert task.status == Task.Status.WAITING
    assert task.published_at is not None


@pytest.mark.django_db(transaction=True)
def test_run_again_adds_new_waiting_tasks_with_the_same_calls(admin_client):
    Worker.objects.create(name="mail")
    failed = make_failed_task()
    Task.objects.filter(pk=failed.pk).update(kwargs={"message": "again"})
    succeeded = make_task(status=Task.Status.SUCCEEDED, result=3, worker="mail")
    assert flush(10)

    response = run_again(admin_client, failed, succeeded)

    assert "Added 2 new tasks" in response.content.decode()
    assert flush(10), "the new tasks were not published"
    new = Task.objects.exclude(pk__in=[failed.pk, succeeded.pk])
    calls = {(t.kallable, tuple(t.args), str(t.kwargs), t.worker_id) for t in new}
    assert calls == {
        ("tests.examples.tasks.fail", (1, 2), "{'message': 'again'}", "default"),
        ("tests.examples.tasks.add", (1, 2), "{}", "mail"),
    }
    assert all(t.status == Task.Status.WAITING and t.attempts == 0 for t in new)
    assert all(t.published_at is not None for t in new)
    failed.refresh_from_db()
    assert failed.status == Task.Status.FAILED


def test_run_again_reports_a_task_its_settings_now_refuse(admin_client, settings):
    task = make_failed_task()
    settings.CARROT_ALLOWED_MODULES = ["tests.elsewhere"]

    response = run_again(admin_client, task)

    content = response.content.decode()
    assert f"Task {task.pk} was not run again" in content
    assert "Added" not in content
    assert Task.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_no_admin_page_shows_the_broker_password(admin_client, settings):
    settings.CARROT_BROKER_URL = f"memory://carrot:{BROKER_PASSWORD}@localhost//"
    add_task(admin_client, kallable="tests.examples.tasks.add")
    task = Task.objects.get()
    pages = [
        reverse("admin:index"),
        reverse("admin:app_list", args=["carrot"]),
        TASK_CHANGELIST,
        TASK_ADD,
        change_url(task),
        WORKER_CHANGELIST,
        reverse("admin:carrot_worker_add"),
        change_url(Worker.objects.get(name="default")),
    ]

    contents = [page(admin_client, url) for url in pages]
    contents.append(run_again(admin_client, task).content.decode())

    assert flush(10)
    assert Task.objects.filter(published_at__isnull=False).count() == 2
    for url, content in zip([*pages, "run again"], contents, strict=True):
        assert BROKER_PASSWORD not in content, url


@pytest.mark.django_db(transaction=True)
def test_no_admin_page_shows_the_password_of_a_broker_that_is_down(
    admin_client, settings
):
    # Nothing listens on port 1, so every publish fails and is reported.
    settings.CARROT_BROKER_URL = f"amqp://carrot:{BROKER_PASSWORD}@127.0.0.1:1//"
    settings.CARROT_PUBLISH_TIMEOUT_SECONDS = 0.2

    response = add_task(admin_client, kallable="tests.examples.tasks.add")
    assert flush(10), "the publish did not give up"
    added = admin_client.get(response["Location"]).content.decode()
    again = run_again(admin_client, Task.objects.get()).content.decode()
    assert flush(10), "the publish did not give up"

    assert Task.objects.filter(published_at__isnull=True).count() == 2
    assert BROKER_PASSWORD not in added
    assert BROKER_PASSWORD not in again
