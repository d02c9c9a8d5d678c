"""Creating a task one at a time with the INSERT compiled once.

Each test compares with the ORM's own INSERT, or checks that what the
ORM does around an insert (signals, transactions) still happens.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models import Value
from django.db.models.functions import Lower
from django.db.models.signals import post_save, pre_save

from carrot import sql
from carrot.core import InvalidTask
from carrot.models import Task
from carrot.publishing import flush
from tests.conftest import queue_size

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

ADD = "tests.examples.tasks.add"
NOON = datetime.datetime(2024, 1, 1, 12, tzinfo=datetime.timezone.utc)


class Rollback(Exception):
    pass


def every_column(task_id: uuid.UUID) -> dict[str, object]:
    """The row of ``task_id`` as the database holds it, by column."""
    task_id_stored = Task._meta.get_field("id").get_db_prep_value(task_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT * FROM "{Task._meta.db_table}" WHERE "id" = %s', [task_id_stored]
        )
        names = [column[0] for column in cursor.description]
        (row,) = cursor.fetchall()
    return dict(zip(names, row, strict=True))


def full_task(**values: object) -> dict[str, object]:
    """Values for every field, so that each column's conversion shows."""
    return {
        "kallable": ADD,
        "args": [1, "two", 3.5, None, [True, {"é": "ü"}]],
        "kwargs": {"when": "2024-01-01", "nested": {"list": [1, 2]}},
        "status": Task.Status.WAITING,
        "result": {"total": 3},
        "error": "ValueError: nope",
        "traceback": "Traceback ...\n",
        "attempts": 2,
        "host": "host-1",
        "pid": 1234,
        "runner": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "created_at": NOON,
        "published_at": NOON + datetime.timedelta(seconds=1),
        "started_at": NOON + datetime.timedelta(seconds=2),
        "finished_at": NOON + datetime.timedelta(seconds=3),
        **values,
    }


def test_a_task_created_with_the_compiled_insert_stores_what_the_orm_stores(
    orm_inserts: list[object], monkeypatch: pytest.MonkeyPatch
):
    fast = Task.objects.create(**full_task())
    assert orm_inserts == []

    monkeypatch.setattr(sql, "insert_task", lambda *args: False)
    slow = Task.objects.create(**full_task())
    assert orm_inserts == [slow]

    fast_row, slow_row = every_column(fast.pk), every_column(slow.pk)
    assert fast_row.pop("id") != slow_row.pop("id")
    assert fast_row == slow_row


def test_a_task_with_only_defaults_stores_what_the_orm_stores(
    orm_inserts: list[object], monkeypatch: pytest.MonkeyPatch
):
    fast = Task.objects.create(kallable=ADD, created_at=NOON)
    monkeypatch.setattr(sql, "insert_task", lambda *args: False)
    slow = Task.objects.create(kallable=ADD, created_at=NOON)

    assert orm_inserts == [slow]
    fast_row, slow_row = every_column(fast.pk), every_column(slow.pk)
    assert fast_row.pop("id") != slow_row.pop("id")
    assert fast_row == slow_row
    assert fast_row["args"] in ([], "[]")


def test_saving_a_new_task_fires_pre_save_and_post_save(orm_inserts: list[object]):
    seen: list[tuple[str, bool, str]] = []

    def before(instance: Task, using: str, **kwargs: Any) -> None:
        seen.append(("pre_save", Task.objects.filter(pk=instance.pk).exists(), using))

    def after(instance: Task, created: bool, using: str, **kwargs: Any) -> None:
        stored = Task.objects.filter(pk=instance.pk).exists()
        seen.append(("post_save", created and stored, using))

    pre_save.connect(before, sender=Task)
    post_save.connect(after, sender=Task)
    try:
        Task.objects.create(kallable=ADD)
    finally:
        pre_save.disconnect(before, sender=Task)
        post_save.disconnect(after, sender=Task)

    assert orm_inserts == []
    assert seen == [("pre_save", False, "default"), ("post_save", True, "default")]


def test_a_rolled_back_transaction_stores_and_publishes_nothing(
    orm_inserts: list[object],
):
    with pytest.raises(Rollback), transaction.atomic():
        Task.objects.create(kallable=ADD, args=[1, 2])
        raise Rollback

    assert orm_inserts == []
    assert flush(10)
    assert queue_size() == 0
    assert not Task.objects.exists()


def test_a_committed_task_is_published(orm_inserts: list[object]):
    Task.objects.create(kallable=ADD, args=[1, 2])

    assert orm_inserts == []
    assert flush(10)
    assert queue_size() == 1


def test_what_pre_save_gives_is_what_is_stored(
    orm_inserts: list[object], monkeypatch: pytest.MonkeyPatch
):
    # As a field with auto_now does, pre_save() sets the attribute too.
    field = Task._meta.get_field("host")

    def stamped(instance: Task, add: bool) -> str:
        instance.host = f"stamped on {'add' if add else 'change'}"
        return instance.host

    monkeypatch.setattr(field, "pre_save", stamped)
    task = Task.objects.create(kallable=ADD)

    assert orm_inserts == []
    assert task.host == "stamped on add"
    assert every_column(task.pk)["host"] == "stamped on add"


def test_a_task_saved_with_using_and_force_insert_takes_the_compiled_insert(
    orm_inserts: list[object],
):
    task = Task(kallable=ADD, args=[5])
    task.save(using="default", force_insert=True)

    assert orm_inserts == []
    assert Task.objects.using("default").get(pk=task.pk).args == [5]


def test_a_value_given_as_an_expression_is_inserted_by_django(
    orm_inserts: list[object],
):
    task = Task.objects.create(kallable=ADD, host=Lower(Value("HOST-1")))

    assert orm_inserts == [task]
    assert every_column(task.pk)["host"] == "host-1"


def test_a_raw_save_is_inserted_by_django(orm_inserts: list[object]):
    task = Task(kallable=ADD)
    task.save_base(raw=True)

    assert orm_inserts == [task]
    assert Task.objects.filter(pk=task.pk).exists()


def test_other_databases_are_inserted_by_django(
    orm_inserts: list[object], monkeypatch: pytest.MonkeyPatch
):
    with monkeypatch.context() as patched:
        patched.setattr(connection, "vendor", "oracle")
        task = Task.objects.create(kallable=ADD)

    assert orm_inserts == [task]
    assert Task.objects.filter(pk=task.pk).exists()


def test_bulk_create_on_other_databases_is_left_to_django(
    orm_inserts: list[object], monkeypatch: pytest.MonkeyPatch
):
    with monkeypatch.context() as patched:
        patched.setattr(connection, "vendor", "oracle")
        tasks = Task.objects.bulk_create([Task(kallable=ADD), Task(kallable=ADD)])

    assert orm_inserts == tasks
    assert Task.objects.count() == 2


# -- the kallable, checked once ---------------------------------------------------


@pytest.mark.parametrize(
    ("kallable", "complaint"),
    [
        ("tests.examples.tasks.Dog.not_callable", "cannot be called"),
        ("tests.examples.nowhere.run", "does not exist"),
        (["tests", "examples"], "kallable must be a dotted path"),
        (None, "kallable must be a dotted path"),
    ],
)
def test_a_bad_kallable_is_refused_after_a_good_one_was_remembered(
    kallable: object, complaint: str
):
    Task.objects.create(kallable=ADD)

    for _ in range(2):
        with pytest.raises(InvalidTask, match=complaint):
            Task.objects.create(kallable=kallable)
    assert Task.objects.count() == 1


def test_a_remembered_kallable_is_checked_again_when_the_allowed_modules_change(
    settings: Any,
):
    Task.objects.create(kallable=ADD)
    settings.CARROT_ALLOWED_MODULES = ["shop.tasks"]

    with pytest.raises(InvalidTask, match="add its module to CARROT_ALLOWED_MODULES"):
        Task.objects.create(kallable=ADD)

    settings.CARROT_ALLOWED_MODULES = ["tests.examples"]
    Task.objects.create(kallable=ADD)
    assert Task.objects.count() == 2
