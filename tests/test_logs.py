"""Tests for `EventLogRecordProcessor` and `EventLogHandler`, with a real LoggerProvider and real loggers."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider

from otel_eventlog import Event, EventLogHandler, EventLogRecordProcessor, InMemoryEventLog
from otel_eventlog.event import BatchItem


class FailingLog(InMemoryEventLog):
    """An event log whose every write raises."""

    def append(self, *args: Any, **kwargs: Any) -> Event:
        """Fail, as a broken backend would."""
        raise RuntimeError("the event log is broken")

    def write_batch(self, batch: list[BatchItem]) -> None:
        """Fail, as a broken backend would."""
        raise RuntimeError("the event log is broken")


# the OpenTelemetry log record processor


@pytest.fixture
def logger_provider() -> Iterator[LoggerProvider]:
    """A LoggerProvider with an exporter standing in for OTLP."""
    provider = LoggerProvider()
    yield provider
    provider.shutdown()


def test_log_records_with_an_event_name_become_entries(logger_provider: LoggerProvider) -> None:
    """A record emitted with an event_name lands with its attributes, body, time and span ids."""
    log = InMemoryEventLog()
    exporter = InMemoryLogRecordExporter()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger_provider.add_log_record_processor(EventLogRecordProcessor(log))
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("turn") as span:
        logger_provider.get_logger("agent").emit(
            event_name="turn.started",
            attributes={"turn": 41},
            body="turn 41 started",
            timestamp=1_700_000_000_500_000_000,
        )
        context = span.get_span_context()
    [event] = log.query()
    assert (event.kind, event.payload) == ("turn.started", {"turn": 41, "body": "turn 41 started"})
    assert event.timestamp == 1_700_000_000.5
    assert (event.trace_id, event.span_id) == (f"{context.trace_id:032x}", f"{context.span_id:016x}")
    assert len(exporter.get_finished_logs()) == 1  # the other processor still gets the record


def test_log_records_without_an_event_name_are_left_alone(logger_provider: LoggerProvider) -> None:
    """Plain log records, and records outside any span, are handled as such."""
    log = InMemoryEventLog()
    logger_provider.add_log_record_processor(EventLogRecordProcessor(log))
    logger = logger_provider.get_logger("agent")
    logger.emit(body="just a log line")
    logger.emit(event_name="session.started")
    [event] = log.query()
    assert (event.kind, event.payload, event.trace_id, event.span_id) == ("session.started", {}, None, None)
    assert event.timestamp > 0  # the observed time, as the record has no time of its own


def test_log_record_filters(logger_provider: LoggerProvider) -> None:
    """Include and exclude apply to event names as for spans."""
    log = InMemoryEventLog()
    logger_provider.add_log_record_processor(
        EventLogRecordProcessor(log, include="turn.*", exclude="turn.debug")
    )
    logger = logger_provider.get_logger("agent")
    for name in ("turn.started", "turn.debug", "tool.called"):
        logger.emit(event_name=name)
    assert [e.kind for e in log.query()] == ["turn.started"]


def test_a_failing_log_never_reaches_the_emitter(logger_provider: LoggerProvider) -> None:
    """When the log raises, emit returns normally and the failure is counted."""
    processor = EventLogRecordProcessor(FailingLog())
    logger_provider.add_log_record_processor(processor)
    logger_provider.get_logger("agent").emit(event_name="turn.started")
    assert processor.failures == 1
    assert processor.force_flush() is True
    assert processor.event_log.query() == []


# the stdlib handler


@pytest.fixture
def app_logger() -> Iterator[logging.Logger]:
    """A logger of the application's, at DEBUG, that does not propagate to the root."""
    logger = logging.getLogger("app.agent")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger
    logger.handlers.clear()
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


def test_records_naming_an_event_become_entries(app_logger: logging.Logger) -> None:
    """extra={"event_name": ...} makes an entry whose payload holds the extras, message, level, logger."""
    log = InMemoryEventLog()
    app_logger.addHandler(EventLogHandler(log))
    app_logger.info(
        "tool %s called", "search", extra={"event_name": "tool.called", "tool": "search", "turn": 3}
    )
    [event] = log.query()
    assert event.kind == "tool.called"
    assert event.payload == {
        "tool": "search",
        "turn": 3,
        "message": "tool search called",
        "level": "INFO",
        "logger": "app.agent",
    }
    assert (event.trace_id, event.span_id) == (None, None)


def test_the_opentelemetry_event_name_key_is_understood(app_logger: logging.Logger) -> None:
    """The otel.event.name extra key names the event too."""
    log = InMemoryEventLog()
    app_logger.addHandler(EventLogHandler(log))
    app_logger.warning("done", extra={"otel.event.name": "turn.completed"})
    [event] = log.query()
    assert (event.kind, event.payload["level"]) == ("turn.completed", "WARNING")
    assert "otel.event.name" not in event.payload


def test_records_are_correlated_with_the_current_span(app_logger: logging.Logger) -> None:
    """A record logged inside a span carries that span's trace and span ids."""
    log = InMemoryEventLog()
    app_logger.addHandler(EventLogHandler(log))
    with TracerProvider().get_tracer("test").start_as_current_span("turn") as span:
        app_logger.info("started", extra={"event_name": "turn.started"})
        context = span.get_span_context()
    [event] = log.query()
    assert (event.trace_id, event.span_id) == (f"{context.trace_id:032x}", f"{context.span_id:016x}")


def test_records_without_an_event_name_or_below_the_level_are_ignored(app_logger: logging.Logger) -> None:
    """Plain log lines, and events below the handler's level, do not make entries."""
    log = InMemoryEventLog()
    app_logger.addHandler(EventLogHandler(log, level=logging.INFO))
    app_logger.info("a plain line")
    app_logger.debug("too quiet", extra={"event_name": "turn.debug"})
    app_logger.info("blank name", extra={"event_name": ""})
    assert log.query() == []


def test_handler_filters(app_logger: logging.Logger) -> None:
    """Include and exclude apply to event names."""
    log = InMemoryEventLog()
    app_logger.addHandler(EventLogHandler(log, exclude=["heartbeat"]))
    app_logger.info("beat", extra={"event_name": "heartbeat"})
    app_logger.info("go", extra={"event_name": "turn.started"})
    assert [e.kind for e in log.query()] == ["turn.started"]


def test_the_library_own_loggers_are_ignored() -> None:
    """Records of otel_eventlog's loggers never become entries, so the handler cannot recurse."""
    log = InMemoryEventLog()
    handler = EventLogHandler(log)
    own = logging.getLogger("otel_eventlog.capture.span_processor")
    own.addHandler(handler)
    try:
        own.warning("failed", extra={"event_name": "turn.started"})
    finally:
        own.removeHandler(handler)
    assert log.query() == []


def test_a_failing_log_never_reaches_the_caller(
    app_logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    """When the log raises, logging returns normally; the failure is counted and reported once."""
    handler = EventLogHandler(FailingLog())
    app_logger.addHandler(handler)
    with caplog.at_level(logging.WARNING, logger="otel_eventlog"):
        for _ in range(3):
            app_logger.info("go", extra={"event_name": "turn.started"})
    assert handler.failures == 3
    assert [r.name for r in caplog.records] == ["otel_eventlog.capture.handler"]


@pytest.mark.parametrize("factory", [EventLogHandler, EventLogRecordProcessor])
def test_a_non_log_is_refused_at_construction(factory: Any) -> None:
    """Both refuse something that is not an event log, naming it."""
    with pytest.raises(TypeError, match="event_log must be an EventLog, got dict"):
        factory({})


LOGGING_SCRIPT = """
import logging, sys
if sys.argv[1] == "configured":
    import otel_eventlog
    otel_eventlog.configure({"observability": {"event_log": {"capture": {"logging": True}}}})
logging.getLogger("thirdparty.genai").warning("content capture is off; set %s to capture it", "VAR")
logging.getLogger("thirdparty.genai").info("an info line Python does not print by default")
logging.getLogger("app").error("an error", extra={"event_name": "tool.failed"})
quiet = logging.getLogger("quiet")
quiet.addHandler(logging.NullHandler())
quiet.propagate = False
quiet.warning("a warning its library silenced")
"""


def test_configure_leaves_what_logging_prints_as_it_was() -> None:
    """In a fresh process, stderr is the same with configure() as without: the last resort still prints."""
    import subprocess
    import sys

    def stderr(mode: str) -> str:
        run = subprocess.run(
            [sys.executable, "-c", LOGGING_SCRIPT, mode],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return run.stderr

    plain = stderr("plain")
    assert plain == "content capture is off; set VAR to capture it\nan error\n"
    assert stderr("configured") == plain


def test_two_event_log_handlers_print_a_warning_once(caplog: pytest.LogCaptureFixture) -> None:
    """A record passing two event log handlers and no other is printed by the last resort once."""
    printed: list[str] = []
    resort = logging.lastResort
    assert resort is not None
    log = InMemoryEventLog()
    child, parent = logging.getLogger("twice.child"), logging.getLogger("twice")
    first, second = EventLogHandler(log), EventLogHandler(log)
    child.addHandler(first)
    parent.addHandler(second)
    parent.propagate = False
    original = resort.handle
    resort.handle = lambda record: printed.append(record.getMessage()) or True  # type: ignore[method-assign]
    try:
        child.warning("once", extra={"event_name": "x.happened"})
    finally:
        resort.handle = original  # type: ignore[method-assign]
        child.removeHandler(first)
        parent.removeHandler(second)
        parent.propagate = True
    assert printed == ["once"]
    assert [event.kind for event in log.query()] == ["x.happened", "x.happened"]


INSTRUMENTED_LOGGING_SCRIPT = """
import json, logging, sys
from opentelemetry._logs import set_logger_provider
from opentelemetry.instrumentation.logging import LoggingInstrumentor
from opentelemetry.sdk._logs import LoggerProvider
import otel_eventlog

provider = LoggerProvider()
set_logger_provider(provider)
if sys.argv[1] == "instrument-first":
    LoggingInstrumentor().instrument()
log = otel_eventlog.configure({}, logger_provider=provider)
if sys.argv[1] == "configure-first":
    LoggingInstrumentor().instrument()
app = logging.getLogger("app")
app.setLevel(logging.INFO)
app.info("calling %s", "search", extra={"otel.event.name": "tool.called", "tool": "search"})
app.info("calling %s", "fetch", extra={"otel.event.name": "tool.called", "tool": "fetch"})
app.info("done", extra={"event_name": "turn.completed"})
print(json.dumps([[event.kind, event.payload.get("tool")] for event in log.query()]))
"""


@pytest.mark.parametrize("order", ["instrument-first", "configure-first"])
def test_one_record_is_one_entry_with_opentelemetry_instrumentation_logging(order: str) -> None:
    """With the instrumentation's handler on the root logger too, a record naming an event lands once."""
    import json
    import subprocess
    import sys

    command = [sys.executable, "-c", INSTRUMENTED_LOGGING_SCRIPT, order]
    run = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(run.stdout) == [
        ["tool.called", "search"],
        ["tool.called", "fetch"],
        ["turn.completed", None],
    ]


def test_an_event_is_taken_once_per_record_whichever_path_sees_it_first() -> None:
    """The second path to see the same event name and time on a thread leaves it; a third sighting is new."""
    from otel_eventlog.capture._hooks import first_sight

    log, other = InMemoryEventLog(), InMemoryEventLog()
    assert first_sight("logging", log, "tool.called", 1_000)
    assert not first_sight("log_record", log, "tool.called", 1_000)
    assert first_sight("log_record", log, "tool.called", 1_000)  # another record, at the same instant
    assert first_sight("log_record", log, "tool.called", None)  # no time: never taken for a duplicate
    assert first_sight("logging", log, "tool.called", 2_000)
    assert first_sight("logging", log, "tool.called", 2_000)  # the same path twice: two records
    assert first_sight("log_record", other, "tool.called", 2_000)  # another log: its own event


def test_the_last_resort_prints_once_and_whatever_the_capture_level() -> None:
    """A handler on two loggers prints a warning once; one capturing from ERROR still lets warnings print."""
    resort = logging.lastResort
    assert resort is not None
    printed: list[str] = []
    original = resort.handle
    resort.handle = lambda record: printed.append(record.getMessage()) or True  # type: ignore[method-assign]
    log = InMemoryEventLog()
    handler = EventLogHandler(log, level=logging.ERROR)
    lib = logging.getLogger("lastresort.lib")
    lib.addHandler(handler)
    lib.propagate = False
    parent = logging.getLogger("lastresort")
    try:
        lib.warning("disk almost full")
        lib.error("disk full", extra={"event_name": "disk.full"})
        lib.propagate = True
        parent.addHandler(handler)
        parent.propagate = False
        lib.warning("twice in the way")
    finally:
        resort.handle = original  # type: ignore[method-assign]
        lib.removeHandler(handler)
        parent.removeHandler(handler)
        parent.propagate = True
    assert printed == ["disk almost full", "disk full", "twice in the way"]
    assert [event.kind for event in log.query()] == ["disk.full"]
    assert (handler.level, handler.capture_level) == (logging.WARNING, logging.ERROR)
