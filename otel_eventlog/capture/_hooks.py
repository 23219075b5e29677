"""`before_append`: the application's own last word on each event the capture side writes.

A hook takes the `Entry` about to be written and returns it, a changed `Entry`, or ``None`` to drop
it. `hooked` wraps a `BatchWriter` so that every capture path runs the hook the same way: span events
by reference are made into entries first (the hook sees their payload as a dict of its own), what the
hook drops is counted, and a hook that raises or returns something else drops that one event, counted
and logged, never the batch and never into the application.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from otel_eventlog._reporting import FailureReporter
from otel_eventlog.backends import BatchWriter, EventLog, Flushable, Observable
from otel_eventlog.errors import ArgumentTypeError
from otel_eventlog.event import BatchItem, Entry, as_entry

__all__ = ["BeforeAppend", "CaptureCounters", "HookedWriter", "flush", "hooked", "wrapper_stats"]

_logger = logging.getLogger(__name__)

#: A hook: the entry about to be written in, the entry to write (or ``None`` to drop it) out.
BeforeAppend = Callable[[Entry], "Entry | None"]


class HookedWriter:
    """A `BatchWriter` that runs `before_append` on each item, then writes what it keeps."""

    def __init__(self, writer: BatchWriter, before_append: BeforeAppend) -> None:
        self._writer = writer
        self._hook = before_append
        self._failures = FailureReporter(_logger, "running before_append")
        self.dropped = 0

    @property
    def failures(self) -> int:
        """How many times the hook raised or returned something that is not an `Entry`."""
        return self._failures.count

    def stats(self) -> dict[str, int]:
        """Return ``dropped`` and ``failures``: the hook's, and those of the writer it wraps."""
        inner = wrapper_stats(self._writer)
        return {
            "dropped": self.dropped + inner.get("dropped", 0),
            "failures": self.failures + inner.get("failures", 0),
        }

    def write_batch(self, batch: list[BatchItem]) -> None:
        """Write the entries the hook keeps, in order; raises only what the writer raises."""
        kept: list[BatchItem] = []
        for item in batch:
            entry = self._run(as_entry(item))
            if isinstance(entry, Entry):
                kept.append(entry)
            elif entry is None:
                self.dropped += 1
        if kept:
            self._writer.write_batch(kept)

    def flush(self, timeout: float) -> bool:
        """Wait until what was written is stored, when the writer underneath queues."""
        return flush(self._writer, timeout)

    def _run(self, entry: Entry) -> Entry | _Failed | None:
        """Return what the hook returns for `entry`, or `_FAILED` (counted) when it fails."""
        try:
            result = self._hook(entry)
            if result is not None and not isinstance(result, Entry):
                raise ArgumentTypeError(
                    f"before_append must return an Entry or None, got {type(result).__name__}"
                )
        except Exception:
            self._failures.report()
            return _FAILED
        return result


class _Failed:
    """The mark of an event whose hook failed: dropped, and counted as a failure rather than a drop."""


_FAILED = _Failed()


def wrapper_stats(writer: BatchWriter) -> Mapping[str, int]:
    """Return the counters of a writer that wraps a log (a hook, a queue); none when it is the log.

    A log keeps counters of its own, which say nothing about what failed or was dropped on the way.
    """
    return writer.stats() if isinstance(writer, Observable) and not isinstance(writer, EventLog) else {}


def flush(writer: BatchWriter, timeout: float) -> bool:
    """Wait up to `timeout` seconds until `writer` stored what it was given; True if it did."""
    return writer.flush(timeout) if isinstance(writer, Flushable) else True


def hooked(writer: BatchWriter, before_append: BeforeAppend | None) -> BatchWriter:
    """Return `writer` itself without a hook, else a `HookedWriter` around it.

    Raises:
        ArgumentTypeError: If `before_append` is neither callable nor ``None``.
    """
    if before_append is None:
        return writer
    if not callable(before_append):
        raise ArgumentTypeError(
            f"before_append must be a callable or None, got {type(before_append).__name__}"
        )
    return HookedWriter(writer, before_append)


class CaptureCounters:
    """What each capture path tells about itself: its log, and what failed or was dropped on the way.

    Mixed into the span processor, the log-record processor and the logging handler, which set
    ``_log``, ``_writer`` (from `hooked`) and ``_failures``.
    """

    _log: EventLog
    _writer: BatchWriter
    _failures: FailureReporter

    @property
    def event_log(self) -> EventLog:
        """The event log this writes to."""
        return self._log

    @property
    def dropped(self) -> int:
        """How many events were dropped: by `before_append`, or by a log's full queue."""
        return self._writer_stats().get("dropped", 0)

    @property
    def failures(self) -> int:
        """How many times writing to the log failed: the log or `before_append` raised."""
        return self._failures.count + self._writer_stats().get("failures", 0)

    def _writer_stats(self) -> Mapping[str, int]:
        return wrapper_stats(self._writer)

    def stats(self) -> dict[str, int]:
        """Return the counters: ``failures`` and ``dropped``."""
        return {"failures": self.failures, "dropped": self.dropped}


class _LastRecord(threading.local):
    """The event the last log record on this thread named, which path took it, and into which log."""

    name: str | None = None
    time_ns: int | None = None
    path: str | None = None
    log: object = None


_last_record = _LastRecord()


def first_sight(path: str, log: object, name: str, time_ns: int | None) -> bool:
    """Tell whether this record's event is new to `log` here, or one another path just took into it.

    One ``logging`` call can reach a log twice: through `EventLogHandler`, and, when the SDK's or
    ``opentelemetry-instrumentation-logging``'s handler turns the stdlib record into an OpenTelemetry
    one (``otel.event.name`` becoming its event name, ``record.created`` its timestamp), through
    `EventLogRecordProcessor`. Both run on the logging thread, one after the other, so the second sees
    the first's name, time and log here and leaves the event alone, whichever handler comes first.
    """
    last = _last_record
    if (
        time_ns is not None
        and last.name == name
        and last.time_ns == time_ns
        and last.log is log
        and last.path != path
    ):
        last.name = last.time_ns = last.path = last.log = None  # taken once: a third is another event
        return False
    last.name, last.time_ns, last.path, last.log = name, time_ns, path, log
    return True
