"""Acknowledge a channel's messages, many with one frame where that is safe.

AMQP's ``basic.ack`` with ``multiple`` acknowledges every message of the
channel up to a delivery tag, and a channel numbers its deliveries in
order. One frame may thus stand for many acks, but only up to the lowest
message still held for an outcome not yet committed: acknowledging that
one early would lose its task if the process died now.
"""

from __future__ import annotations

from kombu.message import Message

__all__ = ["Acknowledgements"]


class Acknowledgements:
    """The messages of one channel that wait for their task's outcome.

    `hold` a message when it is handed on, then `ack` or `requeue` it once
    its outcome is known, and `flush` to send the acks. With ``multiple``
    false every ack is its own frame.
    """

    def __init__(self, *, multiple: bool) -> None:
        self._multiple = multiple
        self._held: set[int] = set()
        self._acks: list[Message] = []

    def hold(self, message: Message) -> None:
        """Keep ``message`` unacknowledged until it is acked or requeued."""
        self._held.add(message.delivery_tag)

    def requeue(self, message: Message) -> None:
        """Hand ``message`` back to the queue now."""
        message.requeue()
        self._held.discard(message.delivery_tag)

    def ack(self, message: Message) -> None:
        """Acknowledge ``message`` with the next `flush`."""
        self._acks.append(message)
        self._held.discard(message.delivery_tag)

    def flush(self) -> None:
        """Send the acks given since the last flush."""
        acks, self._acks = self._acks, []
        if not self._multiple:
            for message in acks:
                message.ack()
            return

        # Everything below the lowest held tag is settled: acked now, or
        # acked or requeued before, which a multiple ack leaves alone.
        floor = min(self._held, default=None)
        covered: list[Message] = []
        for message in acks:
            if floor is None or message.delivery_tag < floor:
                covered.append(message)
            else:
                message.ack()
        if covered:
            max(covered, key=lambda m: m.delivery_tag).ack(multiple=True)
