"""A live, bounded activity feed of OpenTelemetry events, read by cursor, beside your OTLP export.

The event log is the one object everything reads from or writes to: `create_event_log` builds one by
backend name, `load_config` reads the ``observability.event_log`` section that describes it, and
`configure` builds one from that section and attaches the processors that fill it:
`EventLogSpanProcessor` (span events), `EventLogRecordProcessor` (OpenTelemetry log records that name an
event) and `EventLogHandler` (stdlib log records that do); `unconfigure` takes them off again. Readers
use the log's `read` (which can long-poll), `read_async` and `follow`, or HTTP: `start_activity_server`,
`make_wsgi_app` and `make_asgi_app` serve ``/activity`` (JSON), ``/activity/stream`` (Server-Sent
Events) and a live page. Every exception raised on purpose is an `EventLogError`.

The package is layered, each layer importing only from those below it:

- ``event``, ``errors`` and the private helpers: the records, the exceptions, the shared checks;
- ``backends``: the store (`EventLog`, the `BatchWriter` contract, the built-in backends);
- ``capture`` (the OpenTelemetry and logging side) and ``activity`` (the HTTP readers);
- ``config``, then ``pipeline`` (`configure`), then ``cli``.
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
    RedisEventLog,
    create_event_log,
)
from otel_eventlog.capture import EventLogHandler, EventLogRecordProcessor, EventLogSpanProcessor
from otel_eventlog.config import (
    ActivityConfig,
    CaptureConfig,
    EventLogConfig,
    ObservabilityConfig,
    load_config,
)
from otel_eventlog.errors import ConfigError, EventLogError
from otel_eventlog.event import Entry, Event, Page
from otel_eventlog.pipeline import configure, get_activity_server, get_event_log, unconfigure

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
    "EventLogError",
    "EventLogHandler",
    "EventLogRecordProcessor",
    "EventLogSpanProcessor",
    "InMemoryEventLog",
    "ObservabilityConfig",
    "Page",
    "RedisEventLog",
    "__version__",
    "configure",
    "create_event_log",
    "get_activity_server",
    "get_event_log",
    "load_config",
    "make_asgi_app",
    "make_wsgi_app",
    "start_activity_server",
    "unconfigure",
]
