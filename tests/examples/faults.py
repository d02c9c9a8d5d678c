"""Kallables for the fault tests: they keep their own ledger.

A service under test runs in another process and may be killed at any
moment, so these tasks report what they did by appending lines to a
ledger file rather than by anything kept in memory. Each line is written
with one ``write`` on a file opened with ``O_APPEND``, which the kernel
keeps whole even when several processes append at once.

A line is ``<event> <token> <pid>``: ``start`` when a run begins, ``end``
when it has done its work and is about to return.
"""

from __future__ import annotations

import os
import signal
import time

#: How often `hold` looks for its release file.
_HOLD_POLL_SECONDS = 0.02


def _note(ledger: str, event: str, token: str) -> None:
    line = f"{event} {token} {os.getpid()}\n".encode()
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def work(ledger: str, token: str, milliseconds: int = 0) -> str:
    """Take ``milliseconds``, then note the run in ``ledger``."""
    _note(ledger, "start", token)
    time.sleep(milliseconds / 1000)
    _note(ledger, "end", token)
    return token


def hold(ledger: str, token: str, release: str, max_seconds: float = 60.0) -> str:
    """Run until the file ``release`` exists, or for ``max_seconds``."""
    _note(ledger, "start", token)
    deadline = time.monotonic() + max_seconds
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(_HOLD_POLL_SECONDS)
    _note(ledger, "end", token)
    return token


def kill_own_process(ledger: str, token: str) -> None:
    """Note the run, then kill the process running it, every time."""
    _note(ledger, "start", token)
    os.kill(os.getpid(), signal.SIGKILL)
