"""A live, bounded activity feed of OpenTelemetry events, read by cursor, beside your OTLP export.

The event log is the one object everything reads from or writes to: `create_event_log` builds one by
backend name, `load_config` reads the ``observability.event_log`` section that describes it, and
`configure` builds one from that section and attaches the processors that fill it:
`EventLogSpanProcessor` (span events), `EventLogRecordProcessor` (OpenTelemetry log records that name an
event) and `EventLogHandler` (stdlib log records that do). Readers use the log's `read` (which can
long-poll), `read_async` and `follow`, or HTTP: `start_activity_server`, `make_wsgi_app` and
`make_asgi_app` serve ``/activity`` (JSON), ``/activity/stream`` (Server-Sent Events) and a live page.
"""

from __future__ import annotations

from otel_eventlog._version import __version__
from otel_eventlog.activity import (
    ActivityLimits,
    ActivityServer,
    make_asgi_app,
    make_wsgi_app,
    start_activity_server,
)
from otel_eventlog.backends import (
    DisabledEventLog,
    EventLog,
    InMemoryEventLog,
    create_event_log,
)
from otel_eventlog.config import (
    ActivityConfig,
    CaptureConfig,
    ConfigError,
    EventLogConfig,
    ObservabilityConfig,
    load_config,
)
from otel_eventlog.event import Entry, Event, Page
from otel_eventlog.logs import EventLogHandler, EventLogRecordProcessor
from otel_eventlog.pipeline import configure, get_activity_server, get_event_log
from otel_eventlog.span_processor import EventLogSpanProcessor

__all__ = [
    "ActivityConfig",
    "ActivityLimits",
    "ActivityServer",
    "CaptureConfig",
    "ConfigError",
    "DisabledEventLog",
    "Entry",
    "Event",
    "EventLog",
    "EventLogConfig",
    "EventLogHandler",
    "EventLogRecordProcessor",
    "EventLogSpanProcessor",
    "InMemoryEventLog",
    "ObservabilityConfig",
    "Page",
    "__version__",
    "configure",
    "create_event_log",
    "get_activity_server",
    "get_event_log",
    "load_config",
    "make_asgi_app",
    "make_wsgi_app",
    "start_activity_server",
]
