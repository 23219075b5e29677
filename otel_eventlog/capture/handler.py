"""`EventLogHandler`: stdlib log records that name an event, into the event log.

A record logged with ``extra={"event_name": ...}`` (or ``"otel.event.name"``) becomes an entry at once,
on the thread that logs it, correlated with the span current at that moment. The handler ignores this
library's own loggers, so that it cannot recurse, and never raises into the application.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

from opentelemetry import trace

from otel_eventlog._defaults import EVENT_NAME_KEYS
from otel_eventlog._kinds import capture_filter
from otel_eventlog._reporting import FailureReporter
from otel_eventlog.backends import EventLog, batch_writer
from otel_eventlog.capture._hooks import BeforeAppend, CaptureCounters, first_sight, flush, hooked
from otel_eventlog.capture._order import before_log_event
from otel_eventlog.event import EntryLike

__all__ = ["EventLogHandler"]

_logger = logging.getLogger(__name__)

# The attributes every stdlib LogRecord has: whatever else a record carries came from `extra`.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_OWN_LOGGER = __name__.partition(".")[0]
_FLUSH_WAIT = 5.0  # seconds: logging flushes its handlers at exit, which must never hang
_NAME_KEY, _OTEL_NAME_KEY = EVENT_NAME_KEYS  # looked up in this order


class EventLogHandler(CaptureCounters, logging.Handler):
    """A `logging.Handler` that appends the log records naming an event to an event log.

    A record becomes an entry when it carries an event name in ``extra``, under ``event_name`` or
    ``otel.event.name``. The entry's ``payload`` holds the record's other ``extra`` fields plus its
    ``message``, ``level`` and ``logger``; its ``timestamp`` is the record's creation time and its ids
    are those of the span current when the record was logged, if any. Such a record lands after the
    events that span and its open ancestors recorded before it (see `EventLogSpanProcessor`).
    Records without an event name, and records of this library's own loggers (so that it cannot
    recurse), are ignored.

    `emit` runs on the logging thread, appends at once and never raises; a failing event log is
    counted in `failures` and logged at most once a minute (through this library's own logger,
    which this handler ignores).

    Args:
        event_log: Where the events go.
        level: The least level of the records to capture.
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
        level: int | str = logging.INFO,
        *,
        include: str | Iterable[str] | None = None,
        exclude: str | Iterable[str] | None = None,
        before_append: BeforeAppend | None = None,
    ) -> None:
        self._writer = hooked(batch_writer(event_log), before_append)
        super().__init__()
        self.setLevel(level)
        self._log = event_log
        self._capture = capture_filter(include, exclude)
        self._failures = FailureReporter(_logger, "appending a logged event to the event log")

    def createLock(self) -> None:  # logging's name
        """Use no handler lock: `emit` is thread-safe, and a lock would order it against the span mover."""
        self.lock = None  # logging.Handler takes the lock only when there is one

    def setLevel(self, level: int | str) -> None:  # logging's name
        """Capture the records naming an event at `level` and above.

        The handler's own `level` stays at ``WARNING`` at most, so that it still sees the warnings it
        may have to print as Python's last resort would (see `handle`); `capture_level` is `level`.
        """
        super().setLevel(level)
        self.capture_level = self.level
        self.level = min(self.level, logging.WARNING)

    def handle(self, record: logging.LogRecord) -> bool:
        """Handle `record`, then print it as Python would have had this handler not been there.

        Python prints a record of ``WARNING`` or above to stderr (through `logging.lastResort`) when
        no handler is found for it. A handler of this kind is not output, so it does not count: an
        application's (or a library's) warnings show exactly as they would without it.
        """
        handled = super().handle(record)
        last_resort = logging.lastResort
        if (
            last_resort is not None
            and record.levelno >= last_resort.level
            and _printed.record is not record  # this handler may sit on two loggers in its way
            and _prints_instead(record, self)
        ):
            _printed.record = record
            last_resort.handle(record)
        return handled

    def flush(self) -> None:
        """Wait until the records handled are in the log, a few seconds at most, for a log that queues."""
        flush(self._writer, _FLUSH_WAIT)

    def emit(self, record: logging.LogRecord) -> None:
        """Append `record` if it names an event. Called on the logging thread; never raises."""
        if record.levelno < self.capture_level:
            return
        try:
            fields = record.__dict__
            name = fields.get(_NAME_KEY) or fields.get(_OTEL_NAME_KEY)
            if not isinstance(name, str) or not name:
                return
            if record.name.partition(".")[0] == _OWN_LOGGER:
                return
            if self._capture is not None and not self._capture(name):
                return
            time_ns = int(record.created * 1e9)  # as the SDK stamps it
            if not first_sight("logging", self._log, name, time_ns):
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
            entry: EntryLike
            if context.is_valid:
                trace_id, span_id = context.trace_id, context.span_id
                if not before_log_event(self._log, trace_id, span_id, name, time_ns):
                    return  # in the log already, as an event of that span
                entry = (name, payload, record.created, trace_id, span_id)
            else:
                entry = (name, payload, record.created, None, None)
            self._writer.write_batch([entry])
        except Exception:
            self._failures.report()


class _Printed(threading.local):
    """The last record this thread printed as the last resort: printed once, however many handlers."""

    record: logging.LogRecord | None = None


_printed = _Printed()


def _prints_instead(record: logging.LogRecord, handler: EventLogHandler) -> bool:
    """Tell whether `handler` stands where Python would have printed `record` through its last resort.

    True when the record's logger and its ancestors (as far as records propagate) hold no handler but
    event log handlers, and `handler` is the last of those the record reaches: it prints once.
    """
    last: logging.Handler | None = None
    logger: logging.Logger | None = logging.root if record.name == "root" else logging.getLogger(record.name)
    while logger is not None:
        for other in logger.handlers:
            if not isinstance(other, EventLogHandler):
                return False
            if record.levelno >= other.level:
                last = other
        logger = logger.parent if logger.propagate else None
    return last is handler
