"""The capture side: what turns an application's telemetry into event log entries.

- `EventLogSpanProcessor`: span events (and, if asked, span lifecycle entries), live, from a
  ``TracerProvider``.
- `EventLogRecordProcessor`: OpenTelemetry log records that carry an ``event_name``.
- `EventLogHandler`: stdlib `logging` records that name an event in ``extra``.

All three run on the application's threads, do no I/O, never raise, and hand their events to the log
through the `otel_eventlog.backends.BatchWriter` contract.
"""

from __future__ import annotations

from otel_eventlog.capture._hooks import BeforeAppend
from otel_eventlog.capture.handler import EventLogHandler
from otel_eventlog.capture.record_processor import EventLogRecordProcessor
from otel_eventlog.capture.span_processor import EventLogSpanProcessor

__all__ = ["BeforeAppend", "EventLogHandler", "EventLogRecordProcessor", "EventLogSpanProcessor"]
