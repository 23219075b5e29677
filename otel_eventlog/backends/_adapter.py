"""`batch_writer`: the capture side's way into any `EventLog`, whether or not it is a `BatchWriter`.

A log that is a `BatchWriter` promises that writing never blocks, and is written directly. Any other
log, one of the application's own whose ``extend`` may take a lock, a disk or the network, is never
called on the application's thread: its batches go to a bounded queue that a thread of its own
drains, through ``extend``. When the queue is full, batches are dropped and counted rather than
waited for.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Mapping
from typing import cast

from otel_eventlog import _forks, redaction
from otel_eventlog._reporting import FailureReporter
from otel_eventlog.backends.base import BatchWriter, EventLog, check_event_log
from otel_eventlog.event import BatchItem, EntryLike, as_entry

__all__ = ["QueuedWriter", "batch_writer"]

_logger = logging.getLogger(__name__)

#: The most events that wait in a queued writer; batches beyond it are dropped.
QUEUE_EVENTS = 10_000


def batch_writer(event_log: EventLog) -> BatchWriter:
    """Return `event_log` if it is a `BatchWriter`, else a `QueuedWriter` that writes through ``extend``.

    Raises:
        ArgumentTypeError: If `event_log` does not keep the `EventLog` protocol.
    """
    check_event_log(event_log)
    if isinstance(event_log, BatchWriter):
        return event_log
    return QueuedWriter(event_log)


class QueuedWriter:
    """A `BatchWriter` (and `Flushable`) that hands batches to ``extend`` from a thread of its own.

    `write_batch` only queues, so the capture side never waits on the log. The thread turns span
    events by reference into entries, redacts every payload with the default `Redaction` (the log is
    not known to do it), and calls ``extend`` once per batch; a batch ``extend`` refuses is retried
    entry by entry, so that one malformed entry costs only itself. What is dropped or fails is
    counted and logged at most once a minute.
    """

    def __init__(self, event_log: EventLog, *, max_events: int = QUEUE_EVENTS) -> None:
        self._log = event_log
        self._max_events = max_events
        self._reset()
        self._failures = FailureReporter(_logger, f"writing to {type(event_log).__name__}")
        #: How many events were dropped because the queue was full.
        self.dropped = 0
        _forks.track(self)

    def _reset(self) -> None:
        self._changed = threading.Condition()
        self._queue: collections.deque[list[BatchItem]] = collections.deque()
        self._queued = 0  # events queued or being written
        self._accepted = 0  # batches queued so far
        self._done = 0  # batches written (or failed) so far, in the order they were queued
        self._thread: threading.Thread | None = None

    @property
    def failures(self) -> int:
        """How many batches or entries the log refused or failed on."""
        return self._failures.count

    def stats(self) -> dict[str, int]:
        """Return the counters: ``dropped`` (the queue was full) and ``failures``."""
        return {"dropped": self.dropped, "failures": self.failures}

    def write_batch(self, batch: list[BatchItem]) -> None:
        """Queue the batch; drop it, counted, if the queue is full. Never waits, never raises."""
        with self._changed:
            if self._queued + len(batch) > self._max_events:
                self.dropped += len(batch)
                return
            self._queue.append(batch)
            self._queued += len(batch)
            self._accepted += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._drain, name="otel-eventlog-writer", daemon=True)
                self._thread.start()
            self._changed.notify_all()

    def flush(self, timeout: float) -> bool:
        """Wait until the batches queued so far are written, at most `timeout` seconds.

        Batches queued while it waits are not waited for: a steady writer cannot hold it up.
        """
        with self._changed:
            target = self._accepted
            return self._changed.wait_for(lambda: self._done >= target, timeout)

    def _drain(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._queue))
                batch = self._queue.popleft()
            try:
                self._write(batch)  # counts what fails, item by item; never raises
            finally:
                with self._changed:
                    self._queued -= len(batch)
                    self._done += 1
                    self._changed.notify_all()

    def _write(self, batch: list[BatchItem]) -> None:
        entries = []
        for item in batch:
            try:
                entries.append(_as_entry(item))
            except Exception:  # an item that breaks the SpanEventRef shape: only it is lost
                self._failures.report()
        if not entries:
            return
        try:
            self._log.extend(entries)
            return
        except Exception:
            if len(entries) == 1:
                self._failures.report()
                return
        for entry in entries:  # `extend` is all or nothing; store what it takes
            try:
                self._log.extend([entry])
            except Exception:
                self._failures.report()

    def _locks_held_across_fork(self) -> tuple[threading.Lock, ...]:
        return ()  # the queue is the parent's business: the child starts empty

    def _after_fork_in_child(self) -> Callable[[], None] | None:
        self._reset()
        return None

    def __repr__(self) -> str:
        return f"batch_writer({self._log!r})"


def _as_entry(item: object) -> EntryLike:
    """Return a batch item as an entry, its payload redacted; anything malformed goes on as it is.

    ``extend`` names what is wrong with a malformed item.
    """
    if not (isinstance(item, tuple) and len(item) in (4, 5)):
        return cast("EntryLike", item)
    entry = as_entry(cast("BatchItem", item))
    if not isinstance(entry.payload, Mapping):
        return entry
    return entry._replace(payload=redaction.DEFAULT.apply(entry.payload))
