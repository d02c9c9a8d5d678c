"""The errors carrot raises, under one root."""

__all__ = ["CarrotError", "InvalidMessage", "InvalidTask", "PublishError"]


class CarrotError(Exception):
    """Root of every error carrot raises."""


class InvalidTask(CarrotError, ValueError):
    """A task that cannot be stored: its kallable, args or kwargs are wrong.

    The message names the part that is wrong and how to correct it.
    """


class InvalidMessage(CarrotError):
    """A message on a carrot queue that is not a carrot task message.

    Such a message is rejected without being requeued; the worker goes on.
    """


class PublishError(CarrotError):
    """The broker did not accept a message within the publish timeout.

    The task row stays unpublished; a running service publishes it once
    the broker answers again.
    """
