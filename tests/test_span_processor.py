"""Tests for `EventLogSpanProcessor`, with real TracerProviders and real spans."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pytest
from opentelemetry.sdk.trace import Event as SpanEvent
from opentelemetry.sdk.trace import EventBase, ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode, Tracer

from otel_eventlog import Event, EventLogSpanProcessor, InMemoryEventLog
from otel_eventlog.capture import span_processor
from otel_eventlog.event import PLAIN_SPAN_EVENTS, BatchItem, EntryLike

WAIT = 10.0  # seconds: only ever reached when a test fails


class WatchedLog(InMemoryEventLog):
    """An in-memory log that lets a test wait, without polling, until it holds some number of events."""

    def __init__(self) -> None:
        super().__init__(max_entries=100_000)
        self._appended = threading.Condition()

    def append(self, kind: str, payload: Mapping[str, Any] | None = None, **kwargs: Any) -> Event:
        """Append, then wake the waiters."""
        event = super().append(kind, payload, **kwargs)
        with self._appended:
            self._appended.notify_all()
        return event

    def extend(self, entries: Iterable[EntryLike]) -> range:
        """Extend, then wake the waiters."""
        ids = super().extend(entries)
        with self._appended:
            self._appended.notify_all()
        return ids

    def write_batch(self, batch: list[BatchItem]) -> None:
        """Store a batch from the capture side (the processor's path), then wake the waiters."""
        super().write_batch(batch)
        with self._appended:
            self._appended.notify_all()

    def wait_for(self, count: int) -> list[Event]:
        """Wait until `count` events were appended, then return the resident ones."""
        with self._appended:
            assert self._appended.wait_for(lambda: self.read().latest_id >= count, timeout=WAIT)
        return self.query()


class Pipeline:
    """A TracerProvider with an exporter (standing in for OTLP) and the event log processor side by side."""

    def __init__(self, **options: Any) -> None:
        self.log = WatchedLog()
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.processor = EventLogSpanProcessor(self.log, **options)
        self.provider.add_span_processor(self.processor)
        self.tracer: Tracer = self.provider.get_tracer("test")


@pytest.fixture
def pipeline() -> Iterator[Pipeline]:
    """A pipeline whose helper thread looks at open spans only on force_flush."""
    made = Pipeline(live_interval=0)
    yield made
    made.provider.shutdown()


def kinds(events: list[Event]) -> list[str]:
    return [event.kind for event in events]


def test_span_events_become_entries(pipeline: Pipeline) -> None:
    """Each span event becomes an entry with its name, attributes, own time and the span's ids."""
    with pipeline.tracer.start_as_current_span("turn") as span:
        span.add_event(
            "turn.started", {"turn": 41, "tools": ("search", "code")}, timestamp=1_700_000_000_250_000_000
        )
        context = span.get_span_context()
    [event] = pipeline.log.query()
    assert event.kind == "turn.started"
    assert event.payload == {"turn": 41, "tools": ("search", "code")}
    assert event.timestamp == 1_700_000_000.25
    assert event.trace_id == f"{context.trace_id:032x}"
    assert event.span_id == f"{context.span_id:016x}"


def test_spans_still_reach_the_exporter(pipeline: Pipeline) -> None:
    """The other processors see every span and its events, untouched."""
    with pipeline.tracer.start_as_current_span("turn") as span:
        span.add_event("turn.started")
        span.add_event("turn.completed")
    [exported] = pipeline.exporter.get_finished_spans()
    assert [e.name for e in exported.events] == ["turn.started", "turn.completed"]
    assert kinds(pipeline.log.query()) == ["turn.started", "turn.completed"]


def test_events_of_an_open_span_are_live() -> None:
    """An event on a span that is still open reaches the log without a flush, while the span is open."""
    made = Pipeline(live_interval=0.01)
    try:
        span = made.tracer.start_span("session")
        span.add_event("turn.started", {"turn": 1})
        assert kinds(made.log.wait_for(1)) == ["turn.started"]
        span.add_event("turn.completed", {"turn": 1})
        assert kinds(made.log.wait_for(2)) == ["turn.started", "turn.completed"]
        assert made.exporter.get_finished_spans() == ()  # the span is still open
        span.end()
        assert kinds(made.log.query()) == ["turn.started", "turn.completed"]
    finally:
        made.provider.shutdown()


def test_force_flush_makes_open_span_events_visible_at_once(pipeline: Pipeline) -> None:
    """After force_flush, the events of open spans are in the log."""
    span = pipeline.tracer.start_span("session")
    span.add_event("turn.started")
    assert pipeline.log.query() == []
    assert pipeline.processor.force_flush() is True
    assert kinds(pipeline.log.query()) == ["turn.started"]
    span.end()


def test_each_event_once_across_the_open_and_end_boundary(pipeline: Pipeline) -> None:
    """Events picked up while the span was open are not appended again when it ends."""
    span = pipeline.tracer.start_span("session")
    span.add_event("a")
    span.add_event("b")
    pipeline.processor.force_flush()
    pipeline.processor.force_flush()
    span.add_event("c")
    pipeline.processor.force_flush()
    span.add_event("d")
    span.end()
    pipeline.processor.force_flush()
    assert kinds(pipeline.log.query()) == ["a", "b", "c", "d"]


def test_ids_follow_the_events_own_times_within_a_move() -> None:
    """Events moved together get ids in the order they happened, whichever span they belong to."""
    made = Pipeline(live_interval=3600)
    session = made.tracer.start_span("session")
    session.add_event("session.started", timestamp=1_000)
    with made.tracer.start_as_current_span("turn") as turn:
        turn.add_event("turn.started", timestamp=2_000)
    session.add_event("session.idle", timestamp=3_000)
    made.processor.force_flush()
    assert kinds(made.log.query()) == ["session.started", "turn.started", "session.idle"]
    session.end()
    made.provider.shutdown()


def test_each_event_once_past_the_span_event_limit(pipeline: Pipeline) -> None:
    """With the SDK dropping old events past its limit, every event still lands once, in order."""
    span = pipeline.tracer.start_span("session")
    for n in range(300):
        span.add_event("tick", {"n": n})
        if n % 50 == 49:
            pipeline.processor.force_flush()
    span.end()
    assert span.dropped_events == 300 - SpanLimits().max_events  # the SDK did drop events
    assert [e.payload["n"] for e in pipeline.log.query()] == list(range(300))
    assert pipeline.processor.lost_span_events == 0


def test_events_dropped_before_they_were_seen_are_counted(pipeline: Pipeline) -> None:
    """Events the SDK dropped before the processor looked are counted as lost; the rest land once."""
    span = pipeline.tracer.start_span("session")
    for n in range(200):
        span.add_event("tick", {"n": n})
    span.end()
    limit = SpanLimits().max_events
    assert [e.payload["n"] for e in pipeline.log.query()] == list(range(200 - limit, 200))
    assert pipeline.processor.lost_span_events == 200 - limit


def test_many_threads_emitting_spans_at_once() -> None:
    """Spans from many threads, read live, land with unique ids and every event exactly once."""
    made = Pipeline(live_interval=0.001)
    threads, spans, events = 8, 25, 4

    def work(worker: int) -> None:
        for s in range(spans):
            with made.tracer.start_as_current_span("turn") as span:
                for e in range(events):
                    span.add_event("step", {"worker": worker, "span": s, "event": e})

    try:
        workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        logged = made.log.wait_for(threads * spans * events)
    finally:
        made.provider.shutdown()
    assert [e.id for e in logged] == list(range(1, threads * spans * events + 1))
    keys = [(e.payload["worker"], e.payload["span"], e.payload["event"]) for e in logged]
    assert sorted(keys) == [(w, s, e) for w in range(threads) for s in range(spans) for e in range(events)]
    for worker in range(threads):  # each span's events keep their order
        for s in range(spans):
            assert [k[2] for k in keys if k[:2] == (worker, s)] == list(range(events))


def test_include_and_exclude_filter_by_name_and_pattern() -> None:
    """Only included names are captured, and excluded ones never are."""
    made = Pipeline(live_interval=0, include=["turn.*", "tool.called"], exclude="turn.debug")
    with made.tracer.start_as_current_span("turn") as span:
        for name in ("turn.started", "turn.debug", "tool.called", "tool.result", "turn.completed"):
            span.add_event(name)
    assert kinds(made.log.query()) == ["turn.started", "tool.called", "turn.completed"]


def test_exclude_alone_captures_everything_else() -> None:
    """An exclude list without an include list captures all other names."""
    made = Pipeline(live_interval=0, exclude=["heartbeat"])
    with made.tracer.start_as_current_span("turn") as span:
        span.add_event("heartbeat")
        span.add_event("turn.started")
    assert kinds(made.log.query()) == ["turn.started"]


def test_span_lifecycle_entries() -> None:
    """With span_lifecycle on, a span's start and end are entries too, the end with status and duration."""
    made = Pipeline(live_interval=0, span_lifecycle=True)
    with (
        made.tracer.start_as_current_span("session") as parent,
        made.tracer.start_as_current_span("turn") as span,
    ):
        span.add_event("turn.started")
        span.set_status(Status(StatusCode.ERROR, "tool failed"))
    logged = made.log.query()
    assert kinds(logged) == ["span.started", "span.started", "turn.started", "span.ended", "span.ended"]
    started, ended = logged[1], logged[3]
    assert started.payload == {
        "name": "turn",
        "span_kind": "INTERNAL",
        "parent_span_id": f"{parent.get_span_context().span_id:016x}",
    }
    assert ended.payload["name"] == "turn"
    assert ended.payload["status"] == "ERROR"
    assert ended.payload["status_description"] == "tool failed"
    assert ended.payload["duration_ms"] >= 0
    assert logged[0].payload == {"name": "session", "span_kind": "INTERNAL"}
    assert logged[4].payload["status"] == "UNSET"


class FailingLog(InMemoryEventLog):
    """An event log whose every append raises."""

    def append(self, *args: Any, **kwargs: Any) -> Event:
        """Fail, as a broken backend would."""
        raise RuntimeError("the event log is broken")

    def extend(self, entries: Iterable[EntryLike]) -> range:
        """Fail, as a broken backend would."""
        raise RuntimeError("the event log is broken")

    def write_batch(self, batch: list[BatchItem]) -> None:
        """Fail, as a broken backend would."""
        raise RuntimeError("the event log is broken")


def test_a_failing_event_log_never_reaches_the_application(caplog: pytest.LogCaptureFixture) -> None:
    """When the log raises on every call, spans, the app's own exceptions and export are unaffected."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    processor = EventLogSpanProcessor(FailingLog(), span_lifecycle=True, live_interval=0)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("test")

    def failing_turn() -> None:
        with tracer.start_as_current_span("turn") as span:
            span.add_event("turn.started")
            processor.force_flush()
            raise ValueError("the application's own error")

    with caplog.at_level(logging.WARNING, logger="otel_eventlog"):
        with pytest.raises(ValueError, match="the application's own error"):
            failing_turn()
        for _ in range(3):
            with tracer.start_as_current_span("turn") as span:
                span.add_event("turn.started")
    exported = exporter.get_finished_spans()
    assert len(exported) == 4
    assert exported[0].status.status_code is StatusCode.ERROR  # the SDK recorded the app's exception
    assert processor.failures >= 4
    assert len(caplog.records) == 1  # rate-limited: one report, with the traceback
    assert caplog.records[0].exc_info is not None
    provider.shutdown()


def test_spans_started_before_the_processor_was_added_are_captured_at_end() -> None:
    """A span already open when the processor is added still has its events logged when it ends."""
    provider = TracerProvider()
    span = provider.get_tracer("test").start_span("session")
    span.add_event("early")
    log = InMemoryEventLog()
    provider.add_span_processor(EventLogSpanProcessor(log, live_interval=0))
    span.end()
    assert kinds(log.query()) == ["early"]


def test_abandoned_spans_are_forgotten(pipeline: Pipeline) -> None:
    """A span dropped without being ended is not kept alive by the processor."""
    span = pipeline.tracer.start_span("never-ended")
    span.add_event("a")
    pipeline.processor.force_flush()
    del span
    gc.collect()
    pipeline.processor.force_flush()
    assert pipeline.processor._open == {}
    assert kinds(pipeline.log.query()) == ["a"]


def test_a_followed_span_ended_and_dropped_between_moves_lands_once() -> None:
    """A span followed while open, then ended and dropped before the next move, is not moved twice."""
    made = Pipeline(live_interval=3600)
    span = made.tracer.start_span("session")
    span.add_event("a")
    made.processor.force_flush()  # the helper now follows the span
    span.add_event("b")
    span.end()
    del span
    gc.collect()
    made.processor.force_flush()
    made.processor.force_flush()
    assert kinds(made.log.query()) == ["a", "b"]
    made.provider.shutdown()


def test_events_of_other_logs_go_through_extend() -> None:
    """A log that is no BatchWriter gets span events as Entry tuples through extend, off the app thread."""

    class PlainLog:
        """An event log of the application's own, recording what it is given."""

        def __init__(self) -> None:
            self.inner = InMemoryEventLog()
            self.epoch = self.inner.epoch
            self.append = self.inner.append
            self.query = self.inner.query
            self.read = self.inner.read
            self.read_async = self.inner.read_async
            self.follow = self.inner.follow
            self.close = self.inner.close
            self.clear = self.inner.clear
            self.batches: list[list[EntryLike]] = []

        def extend(self, entries: Iterable[EntryLike]) -> range:
            self.batches.append(list(entries))
            return self.inner.extend(self.batches[-1])

        def __len__(self) -> int:
            return len(self.inner)

        @property
        def closed(self) -> bool:
            return self.inner.closed

    log = PlainLog()
    provider = TracerProvider()
    processor = EventLogSpanProcessor(log, live_interval=0)  # type: ignore[arg-type]
    provider.add_span_processor(processor)
    with provider.get_tracer("test").start_as_current_span("turn") as span:
        span.add_event("turn.started", {"turn": 1})
    assert processor.force_flush()  # a log of the application's own is written from a thread of its own
    [[(kind, payload, _, trace_id, span_id)]] = log.batches
    assert (kind, dict(payload or {})) == ("turn.started", {"turn": 1})
    assert (trace_id, span_id) == (span.get_span_context().trace_id, span.get_span_context().span_id)
    assert [e.payload for e in log.query()] == [{"turn": 1}]


def test_shutdown_stops_the_helper_thread_and_moves_what_is_left() -> None:
    """Shutting the provider down stops the live thread after one last look at open spans."""
    made = Pipeline(live_interval=60)
    span = made.tracer.start_span("session")
    span.add_event("last")
    made.provider.shutdown()
    assert not any(t.name == "otel-eventlog-live-spans" and t.is_alive() for t in threading.enumerate())
    assert kinds(made.log.query()) == ["last"]


def test_a_burst_of_ended_spans_is_moved_without_waiting_for_the_interval() -> None:
    """Hundreds of spans ending at once reach the log in batches, long before a live interval is up."""
    made = Pipeline(live_interval=3600)
    try:
        for n in range(600):
            with made.tracer.start_as_current_span("turn") as span:
                span.add_event("tick", {"n": n})
        assert len(made.log.query()) >= 512  # moved by the threads that ended them, in batches
    finally:
        made.provider.shutdown()
    assert [e.payload["n"] for e in made.log.query()] == list(range(600))


def test_shutdown_moves_what_open_spans_hold_and_ignores_spans_after() -> None:
    """Shutdown moves what open spans hold one last time; later events and spans are ignored (the spec)."""
    made = Pipeline(live_interval=3600)
    span = made.tracer.start_span("session")
    span.add_event("before")
    made.processor.shutdown()
    span.add_event("late")
    span.end()
    with made.tracer.start_as_current_span("after") as after:
        after.add_event("after")
    assert kinds(made.log.query()) == ["before"]
    made.provider.shutdown()


class GatedLog(InMemoryEventLog):
    """An event log whose extend waits until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.gate = threading.Event()

    def write_batch(self, batch: list[BatchItem]) -> None:
        """Wait for the gate, then store."""
        self.entered.set()
        assert self.gate.wait(WAIT)
        super().write_batch(batch)


def test_force_flush_gives_up_after_its_timeout() -> None:
    """force_flush returns False when the move in progress outlasts its timeout, True once it can finish."""
    log = GatedLog()
    provider = TracerProvider()
    processor = EventLogSpanProcessor(log, live_interval=0.001)
    provider.add_span_processor(processor)
    with provider.get_tracer("test").start_as_current_span("turn") as span:
        span.add_event("turn.started")
    assert log.entered.wait(WAIT)  # the helper thread is stuck in extend
    assert processor.force_flush(timeout_millis=10) is False
    log.gate.set()
    assert processor.force_flush() is True
    assert kinds(log.query()) == ["turn.started"]
    provider.shutdown()


@pytest.mark.parametrize("live_interval", [0, 3600])
def test_something_that_is_not_a_span_is_counted_not_raised(live_interval: float) -> None:
    """Handed an object that is not a span, the processor counts a failure and carries on."""
    log = InMemoryEventLog()
    processor = EventLogSpanProcessor(log, live_interval=live_interval, span_lifecycle=True)
    processor.on_start(object())  # type: ignore[arg-type]
    processor.on_end(object())  # type: ignore[arg-type]
    assert processor.failures == 2
    assert processor.event_log is log
    assert log.query() == []
    processor.shutdown()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"event_log": object()}, TypeError, "event_log must be an EventLog, got object"),
        (
            {"live_interval": "fast"},
            TypeError,
            "live_interval must be a finite number of seconds >= 0, got 'fast'",
        ),
        ({"live_interval": -1}, ValueError, "live_interval must be a finite number of seconds >= 0, got -1"),
        ({"include": [""]}, ValueError, "include must not contain an empty name"),
        ({"exclude": 5}, TypeError, "exclude must be a string or an iterable of strings"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs: dict[str, Any], error: type, message: str) -> None:
    """Wrong arguments raise when the processor is built, naming the argument."""
    arguments: dict[str, Any] = {"event_log": InMemoryEventLog(), **kwargs}
    with pytest.raises(error, match=message):
        EventLogSpanProcessor(**arguments)


def test_events_with_a_time_or_name_out_of_the_ordinary_keep_their_order_or_are_counted(
    pipeline: Pipeline,
) -> None:
    """A float event time is honoured in the move's order; an event without a name is left out and counted."""
    with pipeline.tracer.start_as_current_span("turn") as span:
        start = span.start_time or 0
        span.add_event("second", timestamp=start + 2_000)
        span.add_event("first", timestamp=float(start + 1_000))  # type: ignore[arg-type]
        span.add_event(None, timestamp=start + 3_000)  # type: ignore[arg-type]
        span.add_event("third", timestamp=start + 4_000)
    assert kinds(pipeline.log.query()) == ["first", "second", "third"]
    assert pipeline.processor.failures == 1


def test_a_span_whose_events_cannot_be_read_does_not_stop_the_others(pipeline: Pipeline) -> None:
    """A span that raises when its events are read is counted; the other spans of the move still land."""

    class Unreadable:
        context = pipeline.tracer.start_span("ghost").get_span_context()
        dropped_events = 0

        @property
        def events(self) -> list[Any]:
            raise RuntimeError("cannot read")

    pipeline.processor.on_end(Unreadable())  # type: ignore[arg-type]
    with pipeline.tracer.start_as_current_span("turn") as span:
        span.add_event("landed")
    assert kinds(pipeline.log.query()) == ["landed"]
    assert pipeline.processor.failures == 1


def test_a_span_made_by_hand_without_attributes_lands(pipeline: Pipeline) -> None:
    """A `ReadableSpan` built without attributes or a bounded event list ends like any other span."""
    context = pipeline.tracer.start_span("ghost").get_span_context()
    span = ReadableSpan(
        "by hand", context=context, attributes=None, events=(SpanEvent("landed", {"n": 1}, 5),)
    )
    pipeline.processor.on_end(span)
    assert [(e.kind, e.payload) for e in pipeline.log.query()] == [("landed", {"n": 1})]
    assert pipeline.processor.failures == 0


def test_the_sdk_layout_read_directly_is_checked_once_and_otherwise_read_through_properties(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The SDK's fields are read directly only where its layout was found as expected; else, properties."""
    assert span_processor._sdk_layout_is_known()
    assert SpanEvent in PLAIN_SPAN_EVENTS

    class Renamed(SpanEvent):
        @property
        def name(self) -> str:
            return "other"

    class Copying(ReadableSpan):
        def __init__(self, *args: Any, events: Any = (), **kwargs: Any) -> None:
            super().__init__(*args, events=tuple(events), **kwargs)

    for name, value in [
        ("BoundedList", lambda maxlen: object()),
        ("BoundedAttributes", lambda *args, **kwargs: {"a": 1}),
        ("SpanEvent", Renamed),
        ("ReadableSpan", Copying),
    ]:
        with monkeypatch.context() as patch:
            patch.setattr(span_processor, name, value)
            assert not span_processor._sdk_layout_is_known(), name

    names_read = []
    name_property = EventBase.name
    monkeypatch.setattr(EventBase, "name", property(lambda e: names_read.append(e) or name_property.fget(e)))

    def feed() -> Pipeline:
        made = Pipeline(live_interval=0)
        with made.tracer.start_as_current_span("chat", attributes={"gen_ai.operation.name": "chat"}) as span:
            span.add_event("turn.started", {"turn": 1})
        with made.tracer.start_as_current_span("turn") as span:
            span.add_event("turn.completed", {"turn": 1})
        made.provider.shutdown()
        assert kinds(made.log.query()) == ["turn.started", "gen_ai.chat", "turn.completed"]
        assert made.log.query()[0].payload == {"turn": 1}
        assert made.processor.failures == 0
        return made

    feed()
    assert names_read == []  # the SDK laid out as expected: its fields read, never its properties
    for name in ("_SDK_EVENT", "_SDK_EVENT_LIST", "_SDK_ATTRIBUTES"):
        monkeypatch.setattr(span_processor, name, None)
    monkeypatch.setattr(span_processor, "_SDK_SPANS", frozenset())
    PLAIN_SPAN_EVENTS.discard(SpanEvent)
    try:
        feed()
    finally:
        PLAIN_SPAN_EVENTS.add(SpanEvent)
    assert len(names_read) >= 2  # otherwise: the properties, for every event


def test_shutdown_never_hangs_on_a_stuck_move(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A move stuck in a backend that broke its contract delays shutdown a bounded time, then it returns."""
    from otel_eventlog.capture import span_processor

    monkeypatch.setattr(span_processor, "_SHUTDOWN_WAIT", 0.2)
    log = GatedLog()
    processor = EventLogSpanProcessor(log, live_interval=0.001)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    with provider.get_tracer("test").start_as_current_span("turn") as span:
        span.add_event("turn.started")
    assert log.entered.wait(WAIT)  # the helper thread is stuck in the backend
    with caplog.at_level(logging.WARNING, logger="otel_eventlog"):
        processor.shutdown()
    assert "did not end in time" in caplog.text
    log.gate.set()
