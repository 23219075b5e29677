"""Every default the library uses, in one place, so that the code, the config and the docs cannot drift."""

from __future__ import annotations

# The event log.
TTL_SECONDS = 3600.0
#: Ten thousand small events take a few megabytes: room for hours of an agent's activity.
MAX_ENTRIES = 10_000
#: What the resident events may cost together: thousands of prompt-sized events, or many more small ones.
MAX_BYTES = 64 * 1024 * 1024
#: What one string value keeps: a long prompt or completion, cut with a marker that says how much went.
MAX_VALUE_BYTES = 16 * 1024

# The Redis backend.
REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_STREAM = "otel-eventlog"
#: Events the capture side may queue while Redis is slow or gone: a minute of a busy agent.
REDIS_QUEUE_EVENTS = 10_000
#: Events sent in one round trip at most.
REDIS_BATCH_EVENTS = 500
#: How long one call waits for Redis to connect or answer.
REDIS_TIMEOUT_SECONDS = 5.0

# Capture.
#: Seconds between two looks at the open spans: the most an open span's event waits to reach the log.
LIVE_INTERVAL_SECONDS = 0.1
#: The ``extra`` keys that name a stdlib log record's event, in the order they are looked up.
EVENT_NAME_KEYS = ("event_name", "otel.event.name")

# The Activity readers.
ACTIVITY_ADDR = "127.0.0.1"
ACTIVITY_PORT = 9450
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_WAIT_SECONDS = 30.0
HEARTBEAT_SECONDS = 15.0
#: How long a stdlib or WSGI request waits at a time before it looks at whether to stop.
WAIT_SLICE_SECONDS = 0.1
#: How long the stdlib server waits on a connection that sends nothing or reads nothing.
IO_TIMEOUT_SECONDS = 10.0
MAX_CONNECTIONS = 64
MAX_STREAMS = 32
# The span attributes carried into a span's end entries: what a reader of a GenAI call needs (model,
# token usage, finish reasons, tool name and call id; content only when the instrumentation records
# it), and the error type of any span.
SPAN_ATTRIBUTES: tuple[str, ...] = ("gen_ai.*", "error.type")
# The span attribute that makes a span a GenAI operation, in the OpenTelemetry semantic conventions.
GEN_AI_OPERATION = "gen_ai.operation.name"
