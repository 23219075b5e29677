"""`EventLogSpanProcessor`: span events into the event log, live, while their spans are still open.

The OpenTelemetry SDK has no hook on ``Span.add_event``. The specification allows a processor to keep a
reference to a span from ``on_start`` and to read its public ``events`` from elsewhere, which is what this
processor does: a helper thread looks at the open spans every ``live_interval`` seconds and moves their
new events into the log, and ``on_end`` moves whatever is left. Each span remembers the last event it
moved (by identity), so every event is moved exactly once, even when the SDK's per-span event limit has
dropped older events from the span in between.
"""

from __future__ import annotations

import logging
import math
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event as SpanEvent
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanContext

from otel_eventlog._errors import FailureReporter
from otel_eventlog._kinds import kind_matcher
from otel_eventlog.backends.base import EventLog

__all__ = ["DEFAULT_LIVE_INTERVAL", "EventLogSpanProcessor"]

_logger = logging.getLogger(__name__)

#: Seconds between two looks at the open spans: the most an event waits before readers can see it.
DEFAULT_LIVE_INTERVAL = 0.1


def capture_filter(
    include: str | Iterable[str] | None, exclude: str | Iterable[str] | None
) -> Callable[[str], bool]:
    """Return a predicate for the event names to capture: in `include` (all if None), not in `exclude`."""
    included = None if include is None else kind_matcher(include, argument="include")
    excluded = None if exclude is None else kind_matcher(exclude, argument="exclude")
    if included is None and excluded is None:
        return lambda name: True
    if excluded is None:
        return included  # type: ignore[return-value]  # not None: checked just above
    if included is None:
        return lambda name: not excluded(name)
    return lambda name: included(name) and not excluded(name)


class _OpenSpan:
    """What the processor remembers about one span while it moves the span's events."""

    __slots__ = ("_ids", "consumed", "context", "last", "lock", "span")

    def __init__(self, span: Span | None, context: SpanContext) -> None:
        # A weak reference, so that a span that is never ended does not live on in the processor.
        self.span = None if span is None else weakref.ref(span)
        self.context = context
        self.lock = threading.Lock()
        self.last: SpanEvent | None = None  # the last event moved into the log
        self.consumed = 0  # how many of the span's events were moved or filtered out
        self._ids: tuple[str, str] | None = None

    def ids(self) -> tuple[str, str]:
        """Return the W3C hex trace and span ids, formatted once, when the first entry needs them."""
        if self._ids is None:
            self._ids = (f"{self.context.trace_id:032x}", f"{self.context.span_id:016x}")
        return self._ids


class EventLogSpanProcessor(SpanProcessor):
    """A span processor that appends span events, live, to an event log, beside any other processor.

    Each span event becomes one entry: ``kind`` is the event's name, ``payload`` its attributes,
    ``timestamp`` its own time, and ``trace_id`` / ``span_id`` the span's W3C ids. Optionally, a
    ``span.started`` and a ``span.ended`` entry mark each span's life.

    `on_start` and `on_end` run on the application's threads: they do a small, bounded amount of work,
    no I/O, never wait for readers and never raise. A failing event log is counted in `failures` and
    logged at most once a minute.

    Args:
        event_log: Where the events go.
        include: Event names or shell-style patterns to capture; ``None`` captures all.
        exclude: Event names or patterns to leave out, even when included.
        span_lifecycle: Whether to append ``span.started`` and ``span.ended`` entries.
        live_interval: Seconds between two looks at the open spans' new events; ``0`` looks only
            when a span ends and on `force_flush`.

    Raises:
        TypeError: If `event_log` is not an event log, or an argument has the wrong type.
        ValueError: If `live_interval` is negative or a filter holds an empty name.
    """

    def __init__(
        self,
        event_log: EventLog,
        *,
        include: str | Iterable[str] | None = None,
        exclude: str | Iterable[str] | None = None,
        span_lifecycle: bool = False,
        live_interval: float = DEFAULT_LIVE_INTERVAL,
    ) -> None:
        if not isinstance(event_log, EventLog):
            raise TypeError(f"event_log must be an EventLog, got {type(event_log).__name__}")
        if isinstance(live_interval, bool) or not isinstance(live_interval, (int, float)):
            raise TypeError(f"live_interval must be a number of seconds, got {live_interval!r}")
        if not math.isfinite(live_interval) or live_interval < 0:
            raise ValueError(f"live_interval must be a finite number of seconds >= 0, got {live_interval!r}")
        self._log = event_log
        self._capture = capture_filter(include, exclude)
        self._span_lifecycle = bool(span_lifecycle)
        self._live_interval = float(live_interval)
        self._open: dict[tuple[int, int], _OpenSpan] = {}
        self._failures = FailureReporter(_logger, "moving span events into the event log")
        self._lost = 0
        self._lost_lock = threading.Lock()
        self._stopped = threading.Event()
        self._poller: threading.Thread | None = None
        if self._live_interval:
            self._poller = threading.Thread(target=self._poll, name="otel-eventlog-live-spans", daemon=True)
            self._poller.start()

    @property
    def event_log(self) -> EventLog:
        """The event log this processor appends to."""
        return self._log

    @property
    def failures(self) -> int:
        """How many times moving events into the log failed (the log raised)."""
        return self._failures.count

    @property
    def lost_span_events(self) -> int:
        """Events the SDK's per-span limit dropped from ended spans before this processor saw them."""
        return self._lost

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Start following `span`. Called on the thread that starts the span; never raises."""
        try:
            context = span.get_span_context()
            state = _OpenSpan(span, context)
            self._open[context.trace_id, context.span_id] = state
            if self._span_lifecycle and self._capture("span.started"):
                payload: dict[str, Any] = {"name": span.name, "span_kind": span.kind.name}
                if span.parent is not None:
                    payload["parent_span_id"] = f"{span.parent.span_id:016x}"
                self._append("span.started", payload, span.start_time, state)
        except Exception:
            self._failures.report()

    def on_end(self, span: ReadableSpan) -> None:
        """Move the span's remaining events. Called on the thread that ends the span; never raises."""
        try:
            context = span.context
            if context is None:
                return
            state = self._open.pop((context.trace_id, context.span_id), None)
            if state is None:  # started before this processor was added
                state = _OpenSpan(None, context)
            with state.lock:
                events = span.events
                self._move(state, events)
                lost = len(events) + span.dropped_events - state.consumed
            if lost > 0:
                with self._lost_lock:
                    self._lost += lost
            if self._span_lifecycle and self._capture("span.ended"):
                payload: dict[str, Any] = {"name": span.name, "status": span.status.status_code.name}
                if span.status.description:
                    payload["status_description"] = span.status.description
                if span.start_time is not None and span.end_time is not None:
                    payload["duration_ms"] = (span.end_time - span.start_time) / 1_000_000
                self._append("span.ended", payload, span.end_time, state)
        except Exception:
            self._failures.report()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Move the new events of every open span into the log now. Returns True."""
        self._move_open_spans()
        return True

    def shutdown(self) -> None:
        """Move what the open spans hold one last time, and stop the helper thread."""
        self._stopped.set()
        if self._poller is not None and self._poller is not threading.current_thread():
            self._poller.join()
        self._move_open_spans()

    def _poll(self) -> None:
        while not self._stopped.wait(self._live_interval):
            self._move_open_spans()

    def _move_open_spans(self) -> None:
        for key, state in list(self._open.items()):
            span = state.span() if state.span is not None else None
            if span is None:  # the application dropped the span without ending it
                self._open.pop(key, None)
                continue
            try:
                with state.lock:
                    self._move(state, span.events)
            except Exception:
                self._failures.report()

    def _move(self, state: _OpenSpan, events: Sequence[SpanEvent]) -> None:
        """Append the events after the last one moved. Hold `state.lock` and pass a fresh snapshot."""
        start = 0
        if state.last is not None:
            start = len(events)
            while start and events[start - 1] is not state.last:
                start -= 1
            # `start` is 0 when the last moved event is gone, dropped by the SDK's per-span limit:
            # then every event in the snapshot came after it.
        for event in events[start:]:
            state.last = event
            state.consumed += 1
            if self._capture(event.name):
                self._append(event.name, _plain(event.attributes), event.timestamp, state)

    def _append(self, kind: str, payload: dict[str, Any], time_ns: int | None, state: _OpenSpan) -> None:
        trace_id, span_id = state.ids()
        timestamp = None if time_ns is None else time_ns / 1_000_000_000  # int / int rounds once, exactly
        self._log.append(kind, payload, timestamp=timestamp, trace_id=trace_id, span_id=span_id)


def _plain(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    if not attributes:
        return {}
    if isinstance(attributes, BoundedAttributes):
        # Its public copy() is one C-level dict copy; iterating it as a Mapping takes its lock per key.
        return attributes.copy()  # type: ignore[return-value]  # a plain dict
    return dict(attributes)
