"""Log records that name an event, into the event log: from the OpenTelemetry logs SDK and from `logging`.

`EventLogRecordProcessor` is an OpenTelemetry ``LogRecordProcessor``: a record emitted with an
``event_name`` (the OpenTelemetry way to emit events) becomes an entry. `EventLogHandler` is a stdlib
`logging.Handler`: a record logged with ``extra={"event_name": ...}`` (or ``"otel.event.name"``)
becomes an entry. Both append at once, on the thread that logs, and never raise into it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord

from otel_eventlog._errors import FailureReporter
from otel_eventlog.backends.base import EventLog, check_event_log
from otel_eventlog.span_processor import capture_filter

__all__ = ["EVENT_NAME_KEYS", "EventLogHandler", "EventLogRecordProcessor"]

_logger = logging.getLogger(__name__)

#: The ``extra`` keys that name a stdlib log record's event, in the order they are looked up.
EVENT_NAME_KEYS = ("event_name", "otel.event.name")

# The attributes every stdlib LogRecord has: whatever else a record carries came from `extra`.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_OWN_LOGGER = __name__.partition(".")[0]


class EventLogRecordProcessor(LogRecordProcessor):
    """An OpenTelemetry log record processor that appends the records naming an event to an event log.

    A record with an ``event_name`` becomes one entry: ``kind`` is the event name, ``payload`` the
    record's attributes (plus ``body`` when it has one), ``timestamp`` the record's time (or the
    time it was observed), and the ids those of the span the record was emitted in. Records
    without an event name are left to the other processors.

    `on_emit` runs on the thread that emits the record: it appends at once, does no I/O and never
    raises; a failing event log is counted in `failures` and logged at most once a minute.

    Args:
        event_log: Where the events go.
        include: Event names or shell-style patterns to capture; ``None`` captures all.
        exclude: Event names or patterns to leave out, even when included.

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
    ) -> None:
        check_event_log(event_log)
        self._log = event_log
        self._capture = capture_filter(include, exclude)
        self._failures = FailureReporter(_logger, "appending a log record's event to the event log")

    @property
    def event_log(self) -> EventLog:
        """The event log this processor appends to."""
        return self._log

    @property
    def failures(self) -> int:
        """How many times appending to the log failed (the log raised)."""
        return self._failures.count

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Append the record if it names an event. Called on the emitting thread; never raises."""
        try:
            record = log_record.log_record
            name = record.event_name
            if not name or (self._capture is not None and not self._capture(name)):
                return
            payload = record.attributes.copy() if record.attributes else {}  # type: ignore[attr-defined]
            if record.body is not None:
                payload["body"] = record.body
            time_ns = record.timestamp or record.observed_timestamp
            self._log.append(
                name,
                payload,
                timestamp=None if time_ns is None else time_ns / 1_000_000_000,
                trace_id=record.trace_id or None,
                span_id=record.span_id or None,
            )
        except Exception:
            self._failures.report()

    def shutdown(self) -> None:
        """Do nothing: the processor holds nothing to release."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Return True: every record is in the log as soon as it is emitted."""
        return True


class EventLogHandler(logging.Handler):
    """A `logging.Handler` that appends the log records naming an event to an event log.

    A record becomes an entry when it carries an event name in ``extra``, under ``event_name`` or
    ``otel.event.name``. The entry's ``payload`` holds the record's other ``extra`` fields plus its
    ``message``, ``level`` and ``logger``; its ``timestamp`` is the record's creation time and its ids
    are those of the span current when the record was logged, if any. Records without an event
    name, and records of this library's own loggers (so that it cannot recurse), are ignored.

    `emit` runs on the logging thread, appends at once and never raises; a failing event log is
    counted in `failures` and logged at most once a minute (through this library's own logger,
    which this handler ignores).

    Args:
        event_log: Where the events go.
        level: The least level of the records to capture.
        include: Event names or shell-style patterns to capture; ``None`` captures all.
        exclude: Event names or patterns to leave out, even when included.

    Raises:
        TypeError: If `event_log` is not an event log or a filter has the wrong type.
        ValueError: If a filter holds an empty name.
    """

    def __init__(
        self,
        event_log: EventLog,
        level: int | str = logging.INFO,
        *,
        include: str | Iterable[str] | None = None,
        exclude: str | Iterable[str] | None = None,
    ) -> None:
        check_event_log(event_log)
        super().__init__(level)
        self._log = event_log
        self._capture = capture_filter(include, exclude)
        self._failures = FailureReporter(_logger, "appending a logged event to the event log")

    @property
    def event_log(self) -> EventLog:
        """The event log this handler appends to."""
        return self._log

    @property
    def failures(self) -> int:
        """How many times appending to the log failed (the log raised)."""
        return self._failures.count

    def emit(self, record: logging.LogRecord) -> None:
        """Append `record` if it names an event. Called on the logging thread; never raises."""
        try:
            fields = record.__dict__
            name = fields.get("event_name") or fields.get("otel.event.name")
            if not isinstance(name, str) or not name:
                return
            if record.name.partition(".")[0] == _OWN_LOGGER:
                return
            if self._capture is not None and not self._capture(name):
                return
            payload: dict[str, Any] = {
                key: value
                for key, value in fields.items()
                if key not in _RECORD_ATTRIBUTES and key not in EVENT_NAME_KEYS
            }
            payload["message"] = record.getMessage()
            payload["level"] = record.levelname
            payload["logger"] = record.name
            context = trace.get_current_span().get_span_context()
            valid = context.is_valid
            self._log.append(
                name,
                payload,
                timestamp=record.created,
                trace_id=context.trace_id if valid else None,
                span_id=context.span_id if valid else None,
            )
        except Exception:
            self._failures.report()
