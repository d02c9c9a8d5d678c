"""The transport-agnostic core: messages, publishing, consuming, running.

Nothing here imports Django. An adapter provides a `TaskStore`.
"""

from .broker import Broker
from .config import DEFAULT_BROKER_URL, Config
from .errors import CarrotError, InvalidMessage, InvalidTask, PublishError
from .kallable import resolve
from .message import TaskMessage
from .service import Service
from .store import Claim, ClaimState, Outcome, Runner, TaskCall, TaskStore

__all__ = [
    "DEFAULT_BROKER_URL",
    "Broker",
    "CarrotError",
    "Claim",
    "ClaimState",
    "Config",
    "InvalidMessage",
    "InvalidTask",
    "Outcome",
    "PublishError",
    "Runner",
    "Service",
    "TaskCall",
    "TaskMessage",
    "TaskStore",
    "resolve",
]
