"""Wake the service's thread, waiting on the broker's socket, from another.

The thread that owns an AMQP connection waits for the broker's next frame.
When a task's outcome is committed on another thread, its message should
be acknowledged at once; rather than have the owner poll for that, it
waits on the broker's socket and on one end of a socket pair together,
and any thread writes a byte to the other end to wake it.
"""

from __future__ import annotations

import contextlib
import selectors
import socket

import amqp
from kombu.connection import Connection

__all__ = ["Wakeup", "amqp_socket"]


def amqp_socket(connection: Connection) -> socket.socket | None:
    """The socket to wait on beside a `Wakeup`, or None.

    Only py-amqp reads no more from its socket than the frame it wants, so
    that a readable socket is the one sign of a frame to come. kombu's
    other transports read through pollers of their own.
    """
    raw = connection.connection
    return raw.sock if isinstance(raw, amqp.Connection) else None


class Wakeup:
    """A socket pair: `set` from any thread ends the owner's `wait`."""

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._reader, selectors.EVENT_READ)
        self._watched: socket.socket | None = None

    def set(self) -> None:
        """End the current or the next `wait`; safe from any thread."""
        # A full buffer means a wake is pending already; a closed pair, that
        # no one waits any more.
        with contextlib.suppress(OSError):
            self._writer.send(b"\0")

    def wait(self, sock: socket.socket, timeout_seconds: float) -> bool:
        """Wait until ``sock`` is readable, `set` is called, or the timeout.

        Returns whether ``sock`` has something to read.
        """
        # An SSL socket may hold decrypted bytes that select cannot see.
        pending = getattr(sock, "pending", None)
        if pending is not None and pending():
            return True

        self._watch(sock)
        events = self._selector.select(timeout_seconds)
        readable = {key.fileobj for key, _ in events}
        if self._reader in readable:
            self._clear()
        return sock in readable

    def close(self) -> None:
        self._selector.close()
        self._reader.close()
        self._writer.close()

    def _watch(self, sock: socket.socket) -> None:
        # A new connection brings a new socket; the old one may be closed,
        # which unregister allows.
        if sock is self._watched:
            return
        if self._watched is not None:
            self._selector.unregister(self._watched)
        self._selector.register(sock, selectors.EVENT_READ)
        self._watched = sock

    def _clear(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._reader.recv(4096):
                pass
