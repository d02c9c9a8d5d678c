"""Publish a task when its row is created, including from the admin."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from .models import Task
from .publishing import publish_on_commit


@receiver(post_save, sender=Task, dispatch_uid="carrot.publish_created_task")
def publish_created_task(
    sender: type[Task], instance: Task, created: bool, using: str, **kwargs: Any
) -> None:
    if created:
        publish_on_commit([instance], using)
