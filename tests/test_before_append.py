"""Tests for before_append: the application rewrites or drops each event the capture side writes."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider

from otel_eventlog import Entry, InMemoryEventLog, configure, unconfigure


def tag_and_drop(entry: Entry) -> Entry | None:
    """Drop debug events, and tag the others with the service name."""
    if entry.kind.endswith(".debug"):
        return None
    if entry.kind == "boom":
        raise RuntimeError("the hook failed")
    if entry.kind == "odd":
        return "not an entry"  # type: ignore[return-value]
    return entry._replace(payload={**(entry.payload or {}), "service": "agent"})


@pytest.fixture
def configured() -> Iterator[tuple[InMemoryEventLog, TracerProvider, LoggerProvider]]:
    """configure() with the hook, live reading off, on providers of the test's own."""
    tracers, loggers = TracerProvider(), LoggerProvider()
    log = configure(
        {"observability": {"event_log": {"capture": {"live_interval_seconds": 0}}}},
        tracer_provider=tracers,
        logger_provider=loggers,
        before_append=tag_and_drop,
    )
    assert isinstance(log, InMemoryEventLog)
    yield log, tracers, loggers
    unconfigure()
    tracers.shutdown()


def test_every_capture_path_runs_the_hook(
    configured: tuple[InMemoryEventLog, TracerProvider, LoggerProvider],
) -> None:
    """Span events, OpenTelemetry log records and stdlib records are rewritten or dropped alike."""
    log, tracers, loggers = configured
    with tracers.get_tracer("t").start_as_current_span("turn") as span:
        span.add_event("turn.started", {"turn": 1})
        span.add_event("turn.debug", {"turn": 1})
    loggers.get_logger("agent").emit(event_name="llm.called", attributes={"model": "m"})
    loggers.get_logger("agent").emit(event_name="llm.debug")
    logging.getLogger("agent").warning("calling", extra={"event_name": "tool.called"})
    logging.getLogger("agent").warning("noise", extra={"event_name": "tool.debug"})
    events = log.query()
    assert [e.kind for e in events] == ["turn.started", "llm.called", "tool.called"]
    assert all(e.payload["service"] == "agent" for e in events)
    assert events[0].payload["turn"] == 1


def test_a_failing_hook_drops_that_event_only_and_counts_it() -> None:
    """A hook that raises or returns something else costs that one event, counted, never the batch."""
    from otel_eventlog import EventLogSpanProcessor

    log = InMemoryEventLog()
    tracers = TracerProvider()
    processor = EventLogSpanProcessor(log, live_interval=0, before_append=tag_and_drop)
    tracers.add_span_processor(processor)
    with tracers.get_tracer("t").start_as_current_span("turn") as span:
        for kind in ("first", "boom", "odd", "x.debug", "last"):
            span.add_event(kind)
    tracers.shutdown()
    assert [e.kind for e in log.query()] == ["first", "last"]
    assert (processor.failures, processor.dropped) == (2, 1)


def test_a_hook_must_be_callable() -> None:
    """Something that is not callable is refused when the processor is made."""
    from otel_eventlog import EventLogHandler

    with pytest.raises(TypeError, match="before_append must be a callable or None, got str"):
        EventLogHandler(InMemoryEventLog(), before_append="drop")  # type: ignore[arg-type]
    assert EventLogHandler(InMemoryEventLog()).dropped == 0
