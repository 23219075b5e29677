"""A live, bounded activity feed of OpenTelemetry events, read by cursor, beside your OTLP export.

The event log is the one object everything reads from or writes to: `create_event_log` builds one by
backend name, `load_config` reads the ``observability.event_log`` section that describes it, and
`EventLogSpanProcessor` fills it from a ``TracerProvider``'s span events.
"""

from __future__ import annotations

from otel_eventlog._version import __version__
from otel_eventlog.backends import (
    DisabledEventLog,
    EventLog,
    InMemoryEventLog,
    create_event_log,
)
from otel_eventlog.config import (
    CaptureConfig,
    ConfigError,
    EventLogConfig,
    ObservabilityConfig,
    load_config,
)
from otel_eventlog.event import Entry, Event, Page
from otel_eventlog.span_processor import EventLogSpanProcessor

__all__ = [
    "CaptureConfig",
    "ConfigError",
    "DisabledEventLog",
    "Entry",
    "Event",
    "EventLog",
    "EventLogConfig",
    "EventLogSpanProcessor",
    "InMemoryEventLog",
    "ObservabilityConfig",
    "Page",
    "__version__",
    "create_event_log",
    "load_config",
]
