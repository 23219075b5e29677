"""`EventLogRecordProcessor`: OpenTelemetry log records that name an event, into the event log.

A record emitted with an ``event_name`` (the OpenTelemetry way to emit events, since OTEP 4430) becomes
an entry at once, on the thread that emits it; the processor never raises into that thread.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, cast

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord

from otel_eventlog._kinds import capture_filter
from otel_eventlog._reporting import FailureReporter
from otel_eventlog.backends import EventLog, batch_writer
from otel_eventlog.capture._hooks import BeforeAppend, CaptureCounters, first_sight, flush, hooked
from otel_eventlog.capture._order import before_log_event

__all__ = ["EventLogRecordProcessor"]

_logger = logging.getLogger(__name__)
_SHUTDOWN_WAIT = 5.0  # seconds: shutting down runs at exit, which must never hang


class EventLogRecordProcessor(CaptureCounters, LogRecordProcessor):
    """An OpenTelemetry log record processor that appends the records naming an event to an event log.

    A record with an ``event_name`` becomes one entry: ``kind`` is the event name, ``payload`` the
    record's attributes (plus ``body`` when it has one), ``timestamp`` the record's time (or the
    time it was observed), and the ids those of the span the record was emitted in. Such a record
    lands after the events that span and its open ancestors recorded before it (see
    `EventLogSpanProcessor`), and once only when OpenTelemetry's event-to-span-event bridge also adds
    it to the span. Records
    without an event name are left to the other processors.

    `on_emit` runs on the thread that emits the record: it appends at once, does no I/O and never
    raises; a failing event log is counted in `failures` and logged at most once a minute.

    Args:
        event_log: Where the events go.
        include: Event names or shell-style patterns to capture; ``None`` captures all.
        exclude: Event names or patterns to leave out, even when included.
        before_append: Called with each `Entry` before it is written; returns it, a changed
            `Entry`, or ``None`` to drop it. Runs where the entry is written (for span events, on
            the thread that moves them). What it drops is counted in `dropped`; when it raises, that
            event is dropped and counted in `failures`.

    Raises:
        TypeError: If `event_log` is not an event log or a filter has the wrong type.
        ValueError: If a filter holds an empty name.
    """

    def __init__(
        self,
        event_log: EventLog,
        *,
        include: str | Iterable[str] | None = None,
        exclude: str | Iterable[str] | None = None,
        before_append: BeforeAppend | None = None,
    ) -> None:
        self._writer = hooked(batch_writer(event_log), before_append)
        self._log = event_log
        self._capture = capture_filter(include, exclude)
        self._failures = FailureReporter(_logger, "appending a log record's event to the event log")
        self._shut_down = False

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Append the record if it names an event. Called on the emitting thread; never raises."""
        if self._shut_down:
            return
        try:
            record = log_record.log_record
            name = record.event_name
            if not name or (self._capture is not None and not self._capture(name)):
                return
            # The same event may have reached the log through EventLogHandler a moment ago.
            if not first_sight("log_record", self._log, name, record.timestamp):
                return
            time_ns = record.timestamp or record.observed_timestamp
            trace_id, span_id = record.trace_id, record.span_id
            in_span = bool(trace_id and span_id)
            if in_span and not before_log_event(self._log, trace_id, span_id, name, time_ns or 0):
                return  # in the log already, as an event of that span
            payload = _copy(record.attributes)
            if record.body is not None:
                payload["body"] = record.body
            timestamp = None if time_ns is None else time_ns / 1_000_000_000
            self._writer.write_batch([(name, payload, timestamp, trace_id or None, span_id or None)])
        except Exception:
            self._failures.report()

    def shutdown(self) -> None:
        """Ignore every record from now on, once those emitted are in the log (a few seconds at most)."""
        self._shut_down = True
        flush(self._writer, _SHUTDOWN_WAIT)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Return whether the records emitted are in the log, waiting up to `timeout_millis` if it queues."""
        return flush(self._writer, max(timeout_millis, 0) / 1000)


def _copy(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return a plain dict copy of a record's attributes; BoundedAttributes copies in one C call."""
    if not attributes:
        return {}
    if isinstance(attributes, BoundedAttributes):
        return cast("dict[str, Any]", attributes.copy())  # a plain dict, typed as a MutableMapping
    return dict(attributes)
