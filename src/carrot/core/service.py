"""The service: consume every enabled worker's queue and run its tasks.

One thread, the one that calls `Service.start`, owns the broker
connection and is the only one to touch it (py-amqp is not thread-safe):
it receives messages, hands them to the worker's pool, acknowledges them
once the pool reports the outcome stored, and answers heartbeats while
tasks run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Collection, Iterator

from kombu.connection import Connection
from kombu.exceptions import OperationalError
from kombu.message import Message

from .acks import Acknowledgements
from .broker import Broker
from .config import Config
from .errors import InvalidMessage
from .execution import execute
from .heartbeat import Heartbeat
from .lane import Lane, Run
from .maintenance import Maintenance
from .message import CONTENT_TYPE, TaskMessage
from .recorder import Recorder
from .stop_signals import on_stop_signals
from .store import ClaimState, Runner, TaskStore
from .wakeup import Wakeup, amqp_socket

__all__ = ["Service"]

logger = logging.getLogger(__name__)

#: How long to wait on a broker other than AMQP while tasks run, so that
#: finished tasks are acknowledged promptly. On AMQP an outcome wakes the
#: service instead.
_BUSY_POLL_SECONDS = 0.001
#: How long to wait on the broker while nothing runs, or on AMQP at all.
_IDLE_POLL_SECONDS = 0.5
#: How long to wait for an outcome while every lane holds all the messages
#: its prefetch allows, before reading the socket again.
_FULL_WAIT_SECONDS = 0.05
#: Pause before requeueing a task whose outcome could not be stored, so a
#: database outage does not become a busy loop of redeliveries.
_STORE_ERROR_PAUSE_SECONDS = 1.0


class Service:
    """Consume the queues of the enabled workers until stopped.

    ``worker_names`` limits the service to those workers. ``start`` blocks;
    ``stop`` may be called from any thread or a signal handler.
    """

    def __init__(
        self,
        store: TaskStore,
        config: Config,
        *,
        worker_names: Collection[str] | None = None,
    ) -> None:
        self._store = store
        self._config = config
        self._broker = Broker(config)
        self._only = frozenset(worker_names) if worker_names else None
        # Made by `start`, in the process that runs: a detached service
        # forks after it is built.
        self._runner: Runner
        self._maintenance: Maintenance
        self._recorder: Recorder
        self._heartbeat: Heartbeat
        self._wakeup: Wakeup | None = None

        self._lanes: dict[str, Lane] = {}
        self._inflight: dict[str, Run] = {}
        self._completions: queue.SimpleQueue[Run] = queue.SimpleQueue()
        self._generation = 0
        self._stopping = threading.Event()
        self._immediate = False
        #: Set once the service consumes every enabled worker's queue.
        self.ready = threading.Event()

    def start(self) -> None:
        """Run until `stop` is called or SIGTERM or SIGINT arrives."""
        restore = on_stop_signals(self._on_stop_signal)
        self._wakeup = Wakeup()
        self._runner = Runner(host=socket.gethostname(), pid=os.getpid())
        self._maintenance = Maintenance(self._store, self._broker, self._runner)
        self._recorder = Recorder(self._store, self._runner)
        self._heartbeat = Heartbeat(
            self._store, self._runner, self._config.refresh_seconds
        )
        logger.info(
            "carrot service starting on %s",
            self._broker.safe_url,
            extra={"action": "start"},
        )
        try:
            self._register()
            self._heartbeat.start()
            self._recorder.start()
            while not self._stopping.is_set():
                self._serve()
        finally:
            self._close_lanes()
            self._heartbeat.stop()
            self._maintenance.close()
            if not self._immediate:
                self._recorder.stop()
                self._unregister()
                self._store.close()
                # Tasks left running after an immediate stop may still wake
                # it; the process is about to end anyway.
                self._wakeup.close()
            restore()
        logger.info("carrot service stopped", extra={"action": "stop"})

    def _register(self) -> None:
        # A service must be known alive before it claims a row, or another
        # service's recovery would take its rows for orphans.
        while not self._stopping.is_set():
            try:
                self._heartbeat.beat()
                return
            except Exception:
                logger.exception("cannot record this service in the database")
                self._stopping.wait(self._config.refresh_seconds)

    @property
    def interrupted(self) -> bool:
        """Whether the last stop was immediate, leaving tasks unfinished.

        Their threads still run; a caller that exits should exit at once
        (``os._exit``) rather than wait for them.
        """
        return self._immediate

    def stop(self, *, immediate: bool = False) -> None:
        """Stop taking tasks and return from `start` once running ones end.

        With ``immediate``, return without waiting; the broker redelivers
        the messages of the tasks that were running.
        """
        self._immediate = self._immediate or immediate
        self._stopping.set()
        if self._wakeup is not None:
            self._wakeup.set()

    def _serve(self) -> None:
        connection = self._broker.connection()
        try:
            connection.ensure_connection(
                errback=self._on_connect_error,
                max_retries=None,
                interval_start=0.5,
                interval_step=0.5,
                interval_max=5,
            )
            self._consume(connection)
        except (
            OperationalError,
            *connection.connection_errors,
            *connection.channel_errors,
        ) as exc:
            connection.collect()
            if self._stopping.is_set():
                # Stopped while the broker was away: nothing to hand back.
                return
            logger.warning(
                "lost the broker connection (%s: %s); reconnecting",
                type(exc).__name__,
                exc,
                extra={"action": "reconnect"},
            )
            self._forget_channels()
            self._stopping.wait(0.5)
        else:
            connection.release()

    def _on_connect_error(self, exc: BaseException, interval: float) -> None:
        logger.warning(
            "cannot reach the broker at %s (%s); next try in %.1f s",
            self._broker.safe_url,
            exc,
            interval,
            extra={"action": "connect"},
        )
        if self._stopping.is_set():
            raise exc

    def _consume(self, connection: Connection) -> None:
        self._refresh(connection)
        self.ready.set()
        next_refresh = time.monotonic() + self._config.refresh_seconds

        while not self._stopping.is_set():
            self._settle()
            if time.monotonic() >= next_refresh:
                self._refresh(connection)
                next_refresh = time.monotonic() + self._config.refresh_seconds
            self._drain(connection)

        self._shutdown(connection)

    def _refresh(self, connection: Connection) -> None:
        self._maintenance.run()
        self._sync_lanes(connection)

    def _drain(self, connection: Connection) -> None:
        connection.heartbeat_check()
        if self._prefetch_full():
            # The broker sends nothing more until a message is acknowledged,
            # so wait for an outcome first: its ack then goes out the moment
            # it is committed, and the next message follows.
            self._settle(timeout=_FULL_WAIT_SECONDS)

        sock = amqp_socket(connection)
        if sock is None:
            running = self._running()
            timeout = _BUSY_POLL_SECONDS if running else _IDLE_POLL_SECONDS
        else:
            timeout = _IDLE_POLL_SECONDS
            assert self._wakeup is not None
            if not self._wakeup.wait(sock, timeout):
                return
        with contextlib.suppress(TimeoutError):
            connection.drain_events(timeout=timeout)

    def _prefetch_full(self) -> bool:
        consuming = [lane.prefetch for lane in self._lanes.values() if lane.consuming]
        return bool(consuming) and self._running() >= sum(consuming)

    def _sync_lanes(self, connection: Connection) -> None:
        """Match the lanes to the enabled workers and their concurrency."""
        try:
            wanted = dict(self._store.enabled_workers())
        except Exception:
            logger.exception("could not read the workers; keeping the current ones")
            return
        if self._only is not None:
            wanted = {name: n for name, n in wanted.items() if name in self._only}

        for name, concurrency in wanted.items():
            self._open_lane(connection, name, concurrency)

        for name, lane in self._lanes.items():
            if name not in wanted and lane.consuming:
                logger.info("worker %s disabled; stop consuming", name)
                self._forget(lane.stop_consuming())
            lane.release_channel()

    def _open_lane(self, connection: Connection, name: str, concurrency: int) -> None:
        lane = self._lanes.get(name)
        if lane is None:
            lane = Lane(name, self._broker.queue(name), self._execute)
            self._lanes[name] = lane
        prefetch = concurrency * self._config.prefetch_multiplier
        lane.resize(concurrency, prefetch)
        if not lane.consuming:
            lane.consume(connection, prefetch, self._on_message)

    def _on_message(self, lane: Lane, message: Message) -> None:
        if self._stopping.is_set() or not lane.consuming:
            message.requeue()
            return

        task = self._decode(lane, message)
        if task is None:
            return
        logger.debug(
            "received task %s on %s",
            task.task_id,
            lane.queue.name,
            extra={"action": "receive", "task_id": task.task_id},
        )

        delivery = lane.hold(message, self._generation)
        run = self._inflight.get(task.task_id)
        if run is not None:
            # Already here: acknowledge this copy when that run ends rather
            # than running the task twice.
            run.deliveries.append(delivery)
            return

        run = self._inflight[task.task_id] = Run(task.task_id, [delivery])
        lane.add(run)

    def _decode(self, lane: Lane, message: Message) -> TaskMessage | None:
        try:
            if message.content_type != CONTENT_TYPE:
                raise InvalidMessage(
                    f"content type {message.content_type!r} is not {CONTENT_TYPE}"
                )
            return TaskMessage.from_body(message.decode())
        except Exception as exc:
            logger.warning(
                "rejected a message on %s that carrot cannot read: %s",
                lane.queue.name,
                exc,
                extra={"action": "reject"},
            )
            message.reject(requeue=False)
            return None

    def _execute(self, run: Run) -> None:
        """Run in a pool thread; the service thread acknowledges."""
        try:
            run.state = execute(
                self._recorder,
                run.task_id,
                lambda error: self._recorded(run, error),
                self._config.allowed_modules,
            )
        except Exception:
            logger.exception(
                "could not claim task %s; its message goes back to the queue",
                run.task_id,
                extra={"action": "requeue", "task_id": run.task_id},
            )
            run.error = True
            # A database outage must not become a busy loop of redeliveries.
            time.sleep(_STORE_ERROR_PAUSE_SECONDS)
        if run.state is not ClaimState.CLAIMED:
            self._complete(run)

    def _recorded(self, run: Run, error: BaseException | None) -> None:
        """Called by the recorder once the run's outcome is committed."""
        run.error = error is not None
        self._complete(run)

    def _complete(self, run: Run) -> None:
        # Any thread: hand the run to the service thread, which may be
        # waiting on the broker.
        self._completions.put(run)
        assert self._wakeup is not None
        self._wakeup.set()

    def _settle(self, timeout: float | None = None) -> None:
        """Acknowledge the messages of every run that has ended."""
        touched: set[Acknowledgements] = set()
        for run in self._ended(timeout):
            self._inflight.pop(run.task_id, None)
            for delivery in run.deliveries:
                # A message from an earlier connection cannot be acknowledged:
                # its channel is gone and the broker redelivers it.
                if delivery.generation != self._generation:
                    continue
                if run.error:
                    delivery.acks.requeue(delivery.message)
                else:
                    delivery.acks.ack(delivery.message)
                    touched.add(delivery.acks)

        for acks in touched:
            acks.flush()

    def _ended(self, timeout: float | None) -> Iterator[Run]:
        """The runs reported ended, waiting up to ``timeout`` for the first."""
        while True:
            try:
                yield self._completions.get(timeout is not None, timeout)
            except queue.Empty:
                return
            timeout = None

    def _shutdown(self, connection: Connection) -> None:
        """Requeue unstarted messages, then wait for the running tasks."""
        for lane in self._lanes.values():
            self._forget(lane.stop_consuming())
        running = self._running()
        if running:
            logger.info(
                "stopping: waiting for %d running task(s)",
                running,
                extra={"action": "stop"},
            )

        grace = self._config.shutdown_grace_seconds
        deadline = None if grace is None else time.monotonic() + grace
        while not self._immediate and self._running():
            if deadline is not None and time.monotonic() > deadline:
                logger.warning(
                    "shutdown grace of %.1f s is over; stopping at once",
                    grace,
                    extra={"action": "stop"},
                )
                self._immediate = True
                break
            self._settle(timeout=0.05)
            connection.heartbeat_check()
            with contextlib.suppress(TimeoutError):
                connection.drain_events(timeout=_BUSY_POLL_SECONDS)
        self._settle()

    def _running(self) -> int:
        # Runs not yet acknowledged: waiting, running, or waiting for their
        # outcome to be committed. Once consuming stops, the waiting ones
        # are handed back and forgotten, leaving the other two.
        return len(self._inflight)

    def _unregister(self) -> None:
        try:
            self._store.unregister(self._runner)
        except Exception:
            # Harmless: the runner's row goes stale and is ignored.
            logger.exception("could not remove this service from the database")

    def _forget(self, runs: list[Run]) -> None:
        for run in runs:
            self._inflight.pop(run.task_id, None)

    def _forget_channels(self) -> None:
        self._generation += 1
        for lane in self._lanes.values():
            self._forget(lane.drop_channel())
        self._settle()

    def _close_lanes(self) -> None:
        if self._immediate:
            return
        for lane in self._lanes.values():
            lane.close()

    def _on_stop_signal(self, sig: signal.Signals) -> None:
        immediate = self._stopping.is_set()
        logger.warning(
            "received %s: %s",
            sig.name,
            "stopping at once"
            if immediate
            else "finishing running tasks; send again to stop at once",
        )
        self.stop(immediate=immediate)
