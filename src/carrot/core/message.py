"""The message protocol: what travels on the broker for a task.

A message carries only the id of a task row. What a worker runs always
comes from the row, so a message forged on the broker can at most ask for
a task that already exists to be run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import InvalidMessage

__all__ = ["CONTENT_TYPE", "PROTOCOL_VERSION", "TaskMessage"]

#: The version of the body; a worker rejects a version it does not know.
PROTOCOL_VERSION = 1

#: The only content type carrot publishes or decodes.
CONTENT_TYPE = "application/json"

#: Longest task id accepted in a message; a UUID needs 36 characters.
_MAX_ID_LENGTH = 64


@dataclass(frozen=True)
class TaskMessage:
    """A request to run the task row ``task_id``."""

    task_id: str

    def to_body(self) -> dict[str, Any]:
        """Return the JSON body to publish."""
        return {"carrot": PROTOCOL_VERSION, "task_id": self.task_id}

    @classmethod
    def from_body(cls, body: object) -> TaskMessage:
        """Read a decoded body, or raise `InvalidMessage` saying why not."""
        if not isinstance(body, dict) or "carrot" not in body:
            raise InvalidMessage("the body is not a carrot task message")

        version = body["carrot"]
        if version != PROTOCOL_VERSION:
            raise InvalidMessage(
                f"message protocol version {version!r} is not supported; "
                f"this worker reads version {PROTOCOL_VERSION}"
            )

        task_id = body.get("task_id")
        if not isinstance(task_id, str) or not 0 < len(task_id) <= _MAX_ID_LENGTH:
            raise InvalidMessage("the message has no valid task_id")
        return cls(task_id=task_id)
