"""The kallables carrot runs in the benchmark."""

from __future__ import annotations

from . import probe


def noop() -> None:
    """Do nothing: the benchmark measures the queue, not the work."""


def stamp(sent_at: float) -> None:
    """Report how long the task waited between being sent and starting."""
    probe.latency(sent_at)


#: Run before a measurement so that every pool thread is warm; a name of
#: its own keeps these rows out of the count.
warmup = noop
