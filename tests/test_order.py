"""Causal order across capture paths: ids follow what happened within a trace, whichever path an event took.

Real TracerProviders, LoggerProviders and stdlib loggers. The processors' helper threads are given an
interval far beyond any test, so that every move happens where the test makes it happen.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.trace import TracerProvider

from otel_eventlog import (
    Entry,
    Event,
    EventLogHandler,
    EventLogRecordProcessor,
    EventLogSpanProcessor,
    InMemoryEventLog,
)
from otel_eventlog.capture import span_processor

NEVER = 3600.0  # seconds: a helper thread that never moves during a test


class Feed:
    """A tracer, a stdlib logger and an OpenTelemetry logger, all capturing into one in-memory log."""

    def __init__(self, *, span_lifecycle: bool = False, **options: Any) -> None:
        self.log = InMemoryEventLog(max_entries=100_000)
        self.spans = EventLogSpanProcessor(
            self.log, span_lifecycle=span_lifecycle, live_interval=NEVER, **options
        )
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(self.spans)
        self.tracer = self.tracer_provider.get_tracer("agent")
        self.logger_provider = LoggerProvider()
        self.records = EventLogRecordProcessor(self.log)
        self.logger_provider.add_log_record_processor(self.records)
        self.otel_logger = self.logger_provider.get_logger("agent")
        self.handler = EventLogHandler(self.log)
        self.logger = logging.getLogger(f"order.{id(self)}")
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
        self.logger.addHandler(self.handler)

    def log_event(self, name: str, **extra: Any) -> None:
        """Log a stdlib record naming event `name`."""
        self.logger.info("%s", name, extra={"event_name": name, **extra})

    def kinds(self) -> list[str]:
        """Flush, then return the entries in id order, lifecycle entries as ``span.started:<name>``."""
        assert self.spans.force_flush()
        return [_label(event) for event in self.log.query()]

    def close(self) -> None:
        """Take the handler off its logger and shut both providers down."""
        self.logger.removeHandler(self.handler)
        self.tracer_provider.shutdown()
        self.logger_provider.shutdown()


def _label(event: Event) -> str:
    if event.kind in ("span.started", "span.ended"):
        return f"{event.kind}:{event.payload['name']}"
    return event.kind


@pytest.fixture
def feed() -> Iterator[Feed]:
    """A feed whose spans move only when a test makes them."""
    feed = Feed()
    yield feed
    feed.close()


def test_a_log_record_lands_after_the_events_its_span_recorded_before_it(feed: Feed) -> None:
    """A handler that adds turn.started, logs tool.called, adds turn.completed: ids in that order."""
    for turn in range(3):  # three requests, as a web app would serve them
        with feed.tracer.start_as_current_span("request") as span:
            span.add_event("turn.started", {"turn": turn})
            feed.log_event("tool.called", turn=turn)
            span.add_event("turn.completed", {"turn": turn})
    assert feed.kinds() == ["turn.started", "tool.called", "turn.completed"] * 3


def test_a_log_record_lands_after_what_its_open_ancestors_recorded(feed: Feed) -> None:
    """Events of the session span and of the turn span within it come before a tool call in the turn."""
    with feed.tracer.start_as_current_span("session") as session:
        session.add_event("session.started")
        with feed.tracer.start_as_current_span("turn") as turn:
            turn.add_event("turn.started")
            with feed.tracer.start_as_current_span("tool"):
                feed.log_event("tool.called")
    assert feed.kinds() == ["session.started", "turn.started", "tool.called"]


def test_a_log_record_lands_after_the_spans_that_ended_before_it() -> None:
    """A child that ended with events, before its parent logs, comes first; lifecycle entries too."""
    feed = Feed(span_lifecycle=True)
    try:
        with feed.tracer.start_as_current_span("turn") as turn:
            turn.add_event("turn.started")
            with feed.tracer.start_as_current_span("model") as model:
                model.add_event("model.replied")
            feed.log_event("tool.called")
        assert feed.kinds() == [
            "span.started:turn",
            "turn.started",
            "span.started:model",
            "model.replied",
            "span.ended:model",
            "tool.called",
            "span.ended:turn",
        ]
    finally:
        feed.close()


def test_opentelemetry_log_records_keep_the_same_order(feed: Feed) -> None:
    """A record emitted through the OpenTelemetry Logs API follows its span's events too."""
    with feed.tracer.start_as_current_span("turn") as turn:
        turn.add_event("turn.started")
        feed.otel_logger.emit(event_name="tool.called", attributes={"tool": "search"})
        turn.add_event("turn.completed")
    assert feed.kinds() == ["turn.started", "tool.called", "turn.completed"]


def test_a_batch_of_ended_spans_brings_the_events_of_their_open_parent(
    feed: Feed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When ending spans moves a batch, the open parent's earlier events come before its children's."""
    monkeypatch.setattr(span_processor, "_BATCH", 4)
    with feed.tracer.start_as_current_span("session") as session:
        session.add_event("session.started")
        for turn in range(4):
            with feed.tracer.start_as_current_span("turn") as span:
                span.add_event(f"turn.{turn}")
        # the fourth span's end moved the batch: no flush needed to see it
        assert [event.kind for event in feed.log.query()] == ["session.started"] + [
            f"turn.{turn}" for turn in range(4)
        ]


def test_logging_inside_a_spans_own_move_does_not_deadlock(feed: Feed) -> None:
    """A before_append hook that logs an event, while the processor moves, lands it and moves on."""
    log = InMemoryEventLog()
    handler = EventLogHandler(log)
    logger = logging.getLogger("order.hook")
    logger.propagate = False
    logger.addHandler(handler)

    def hook(entry: Entry) -> Entry:
        if entry.kind == "turn.started":
            logger.warning("seen", extra={"event_name": "hook.saw"})
        return entry

    spans = EventLogSpanProcessor(log, live_interval=NEVER, before_append=hook)
    provider = TracerProvider()
    provider.add_span_processor(spans)
    try:
        with provider.get_tracer("agent").start_as_current_span("turn") as turn:
            turn.add_event("turn.started")
            logger.warning(
                "calling", extra={"event_name": "tool.called"}
            )  # moves turn.started: the hook logs
        assert spans.force_flush()
        assert [event.kind for event in log.query()] == ["hook.saw", "turn.started", "tool.called"]
    finally:
        logger.removeHandler(handler)
        provider.shutdown()


def test_a_move_stuck_in_the_applications_hook_never_holds_up_a_log_record(feed: Feed) -> None:
    """With a move stuck in before_append, log records land at once (out of order): no wait, no hang."""
    release = threading.Event()
    entered = threading.Event()
    log = InMemoryEventLog()

    def hook(entry: Entry) -> Entry:
        entered.set()
        release.wait(30)
        return entry

    spans = EventLogSpanProcessor(log, live_interval=NEVER, before_append=hook)
    provider = TracerProvider()
    provider.add_span_processor(spans)
    handler = EventLogHandler(log)
    logger = logging.getLogger("order.stuck")
    logger.propagate = False
    logger.addHandler(handler)
    flusher = threading.Thread(target=spans.force_flush)
    try:
        with provider.get_tracer("agent").start_as_current_span("turn") as turn:
            turn.add_event("turn.started")
            flusher.start()
            assert entered.wait(30)
            for _ in range(3):
                logger.warning("calling", extra={"event_name": "tool.called"})
        assert [event.kind for event in log.query()] == ["tool.called"] * 3  # while the move is stuck
    finally:
        release.set()
        flusher.join(30)
        logger.removeHandler(handler)
        provider.shutdown()
    assert [event.kind for event in log.query()] == ["tool.called"] * 3 + ["turn.started"]


# OpenTelemetry's event-to-span-event bridge: the same event both ways lands once


class EventToSpanEventBridge(LogRecordProcessor):
    """The specification's bridge: a log record naming an event becomes an event of the current span."""

    def on_emit(self, log_data: ReadWriteLogRecord) -> None:
        """Add a record that names an event to the current span, with its time and attributes."""
        record = log_data.log_record
        span = trace.get_current_span()
        if record.event_name and record.span_id and span.is_recording():
            span.add_event(
                record.event_name,
                dict(record.attributes or {}),
                timestamp=record.timestamp or record.observed_timestamp,
            )

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is queued."""
        return True


@pytest.mark.parametrize("bridge", ["first", "last", "none"])
def test_an_event_bridged_into_its_span_lands_once(bridge: str) -> None:
    """Through the Logs API and the bridge (before or after our processor, or none), each event lands once."""
    log = InMemoryEventLog()
    spans = EventLogSpanProcessor(log, live_interval=NEVER)
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(spans)
    logger_provider = LoggerProvider()
    processors: list[LogRecordProcessor] = [EventToSpanEventBridge(), EventLogRecordProcessor(log)]
    if bridge == "last":
        processors.reverse()
    elif bridge == "none":
        del processors[0]
    for processor in processors:
        logger_provider.add_log_record_processor(processor)
    logger = logger_provider.get_logger("agent")
    tools = [f"tool-{n}" for n in range(12)]  # more than a span remembers of its log events
    try:
        with tracer_provider.get_tracer("agent").start_as_current_span("turn") as turn:
            turn.add_event("turn.started")
            for tool in tools:
                logger.emit(event_name="tool.called", attributes={"tool": tool})
            turn.add_event("turn.completed")
        assert spans.force_flush()
        assert [(event.kind, event.payload.get("tool")) for event in log.query()] == [
            ("turn.started", None),
            *[("tool.called", tool) for tool in tools],
            ("turn.completed", None),
        ]
        bridged = 0 if bridge == "none" else len(tools)
        assert [event.name for event in turn.events].count("tool.called") == bridged
    finally:
        tracer_provider.shutdown()
        logger_provider.shutdown()


def test_a_bridged_event_the_span_processor_leaves_out_still_lands_as_a_log_record() -> None:
    """The span processor captures turn.* only: a bridged tool.called lands through the record processor."""
    log = InMemoryEventLog()
    spans = EventLogSpanProcessor(log, live_interval=NEVER, include="turn.*")
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(spans)
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(EventToSpanEventBridge())
    logger_provider.add_log_record_processor(EventLogRecordProcessor(log))
    try:
        with tracer_provider.get_tracer("agent").start_as_current_span("turn") as turn:
            turn.add_event("turn.started")
            logger_provider.get_logger("agent").emit(event_name="tool.called")
        assert spans.force_flush()
        assert [event.kind for event in log.query()] == ["turn.started", "tool.called"]
    finally:
        tracer_provider.shutdown()
        logger_provider.shutdown()


def test_a_log_record_in_a_span_the_processor_does_not_follow_lands_at_once(feed: Feed) -> None:
    """A span of another provider is not followed: its records land at once, after the spans that ended."""
    other = TracerProvider()
    try:
        with feed.tracer.start_as_current_span("followed") as followed:
            followed.add_event("turn.started")
            with feed.tracer.start_as_current_span("model") as model:
                model.add_event("model.replied")
            with other.get_tracer("elsewhere").start_as_current_span("not followed"):
                feed.log_event("tool.called")
            # the span that ended, and with it its open parent, moved first
            assert [event.kind for event in feed.log.query()] == [
                "turn.started",
                "model.replied",
                "tool.called",
            ]
    finally:
        other.shutdown()


def test_a_stdlib_record_bridged_through_the_logging_instrumentation_lands_once() -> None:
    """Our handler, the instrumentation's LoggingHandler and the bridge: each event once, in order."""
    log = InMemoryEventLog()
    spans = EventLogSpanProcessor(log, live_interval=NEVER)
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(spans)
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(EventToSpanEventBridge())
    logger_provider.add_log_record_processor(EventLogRecordProcessor(log))
    logger = logging.getLogger("order.bridged")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handlers = [LoggingHandler(logger_provider=logger_provider), EventLogHandler(log)]
    for handler in handlers:
        logger.addHandler(handler)
    try:
        with tracer_provider.get_tracer("agent").start_as_current_span("turn") as turn:
            turn.add_event("turn.started")
            logger.info("calling", extra={"otel.event.name": "tool.called"})
            turn.add_event("turn.completed")
        assert spans.force_flush()
        assert [event.kind for event in log.query()] == ["turn.started", "tool.called", "turn.completed"]
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
        tracer_provider.shutdown()
        logger_provider.shutdown()


# the property: whatever one thread does within a trace, ids follow it

_STEPS = st.lists(
    st.sampled_from(["open", "close", "event", "log", "emit", "flush"]),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(steps=_STEPS, span_lifecycle=st.booleans(), batch=st.sampled_from([1, 2, 3, 64]))
def test_ids_follow_what_one_thread_did_within_a_trace(
    steps: list[str], span_lifecycle: bool, batch: int
) -> None:
    """Open and close spans, add events, log through both paths, flush: the ids follow the steps."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(span_processor, "_BATCH", batch)
        feed = Feed(span_lifecycle=span_lifecycle)
        try:
            expected = _run_steps(feed, steps)
            assert feed.kinds() == expected
        finally:
            feed.close()


def _run_steps(feed: Feed, steps: list[str]) -> list[str]:
    """Do `steps` within one trace; return the labels the log should hold, in order."""
    expected: list[str] = []
    lifecycle = feed.spans._span_lifecycle
    open_spans: list[tuple[str, trace.Span, object]] = []

    def open_span() -> None:
        name = f"s{len(expected)}"
        span = feed.tracer.start_span(name)
        token = otel_context.attach(trace.set_span_in_context(span))
        open_spans.append((name, span, token))
        if lifecycle:
            expected.append(f"span.started:{name}")

    def close_span() -> None:
        name, span, token = open_spans.pop()
        span.end()
        otel_context.detach(token)  # type: ignore[arg-type]
        if lifecycle:
            expected.append(f"span.ended:{name}")

    open_span()  # the trace's root
    for step in steps:
        label = f"e{len(expected)}"
        if step == "open":
            open_span()
        elif step == "close" and len(open_spans) > 1:
            close_span()
        elif step == "event":
            open_spans[-1][1].add_event(label)
            expected.append(label)
        elif step == "log":
            feed.log_event(label)
            expected.append(label)
        elif step == "emit":
            feed.otel_logger.emit(event_name=label)
            expected.append(label)
        elif step == "flush":
            assert feed.spans.force_flush()
    while open_spans:
        close_span()
    return expected


def test_each_trace_keeps_its_order_with_many_threads_and_a_busy_helper() -> None:
    """Four threads, each its own trace, log and add events while the helper moves every millisecond."""
    log = InMemoryEventLog(max_entries=100_000)
    spans = EventLogSpanProcessor(log, live_interval=0.001)
    provider = TracerProvider()
    provider.add_span_processor(spans)
    tracer = provider.get_tracer("agent")
    handler = EventLogHandler(log)
    logger = logging.getLogger("order.threads")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    turns = 150

    def session() -> None:
        with tracer.start_as_current_span("session") as root:
            root.add_event("session.started")
            for turn in range(turns):
                with tracer.start_as_current_span("turn") as span:
                    span.add_event("turn.started", {"turn": turn})
                    logger.info("tool", extra={"event_name": "tool.called", "turn": turn})
                    with tracer.start_as_current_span("model") as model:
                        model.add_event("model.replied", {"turn": turn})
                    logger.info("tool", extra={"event_name": "tool.returned", "turn": turn})
                    span.add_event("turn.completed", {"turn": turn})

    threads = [threading.Thread(target=session) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert spans.force_flush()
    finally:
        logger.removeHandler(handler)
        provider.shutdown()
    by_trace: dict[str | None, list[tuple[str, Any]]] = {}
    for event in log.query():
        by_trace.setdefault(event.trace_id, []).append((event.kind, event.payload.get("turn")))
    one_turn = ["turn.started", "tool.called", "model.replied", "tool.returned", "turn.completed"]
    expected = [("session.started", None)] + [(kind, turn) for turn in range(turns) for kind in one_turn]
    assert len(by_trace) == 4
    for sequence in by_trace.values():
        assert sequence == expected
