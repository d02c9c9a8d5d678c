"""Where the time goes: cProfile on every thread, and the SQL each sends.

`Capture` runs inside the process it measures: the carrot service (see
`bench.carrot_service`) or the benchmark while it creates tasks. Threads
started after `Capture.start` get a profiler of their own; their
statistics are merged by role (the main thread, a worker's pool) and
written beside a count of SQL statements by kind, timed where Django
sends them.
"""

from __future__ import annotations

import cProfile
import json
import pstats
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.db import connection as default_connection
from django.db.backends.signals import connection_created

#: Matches the table an INSERT, UPDATE or SELECT reads or writes.
_TABLE = re.compile(r'(?:\bFROM|\bINTO|^UPDATE)\s+"?(\w+)"?', re.IGNORECASE)
#: Matches the table the main statement after a WITH clause writes.
_WRITE = re.compile(
    r'\b(UPDATE|INSERT\s+INTO|DELETE\s+FROM)\s+"?(\w+)"?', re.IGNORECASE
)


class SqlCounter:
    """A Django execute wrapper: statements and seconds, by kind."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.kinds: dict[str, list[float]] = {}
        self.connections = 0

    def __call__(
        self,
        execute: Callable[..., Any],
        sql: str,
        params: Any,
        many: bool,
        context: dict[str, Any],
    ) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = time.perf_counter() - started
            kind = _kind(sql)
            with self._lock:
                entry = self.kinds.setdefault(kind, [0, 0.0])
                entry[0] += 1
                entry[1] += elapsed

    def on_connection_created(
        self, sender: Any, connection: Any, **kwargs: Any
    ) -> None:
        with self._lock:
            self.connections += 1
        connection.execute_wrappers.append(self)

    def as_dict(self) -> dict[str, Any]:
        return {"connections": self.connections, "kinds": self.kinds}


class Capture:
    """Profile this process's threads and count its SQL until `stop`."""

    def __init__(self) -> None:
        self.sql = SqlCounter()
        self._profiles: list[tuple[str, cProfile.Profile]] = []
        self._main = cProfile.Profile()
        self._original_run = threading.Thread.run
        self._lock = threading.Lock()

    def start(self, *, threads: bool = True) -> None:
        connection_created.connect(self.sql.on_connection_created, weak=False)
        if default_connection.connection is not None:
            default_connection.execute_wrappers.append(self.sql)
        if threads:
            self._profile_new_threads()
        self._main.enable()

    def stop(self) -> None:
        self._main.disable()
        threading.Thread.run = self._original_run  # type: ignore[method-assign]
        connection_created.disconnect(self.sql.on_connection_created)
        if self.sql in default_connection.execute_wrappers:
            default_connection.execute_wrappers.remove(self.sql)

    def dump(self, directory: Path) -> None:
        """Write ``<role>.prof`` for each role and ``sql.json``."""
        directory.mkdir(parents=True, exist_ok=True)
        by_role: dict[str, pstats.Stats] = {"MainThread": pstats.Stats(self._main)}
        with self._lock:
            profiles = list(self._profiles)
        for name, profile in profiles:
            # The threads of one pool share a role: carrot-default_0, _1...
            role = re.sub(r"_\d+$", "", name)
            if role in by_role:
                by_role[role].add(profile)
            else:
                by_role[role] = pstats.Stats(profile)
        for role, stats in by_role.items():
            name = re.sub(r"[^\w.-]+", "-", role).strip("-")
            stats.dump_stats(str(directory / f"{name}.prof"))
        (directory / "sql.json").write_text(json.dumps(self.sql.as_dict()))

    def _profile_new_threads(self) -> None:
        original = self._original_run
        capture = self

        def run(thread: threading.Thread) -> None:
            profile = cProfile.Profile()
            # Listed at once: a thread that lives as long as the process,
            # such as a publishing thread, is read while it still runs.
            with capture._lock:
                capture._profiles.append((thread.name, profile))
            profile.enable()
            try:
                original(thread)
            finally:
                profile.disable()

        threading.Thread.run = run  # type: ignore[method-assign]


def _kind(sql: str) -> str:
    verb = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "?"
    if verb == "WITH":
        # Name a statement with a common table expression by what it writes.
        write = _WRITE.search(sql)
        if write:
            return f"WITH ... {write.group(1).upper()} {write.group(2)}"
    match = _TABLE.search(sql)
    return f"{verb} {match.group(1)}" if match else verb
