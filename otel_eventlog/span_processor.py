"""`EventLogSpanProcessor`: span events into the event log, live, while their spans are still open.

The OpenTelemetry SDK has no hook on ``Span.add_event``. The specification allows a processor to keep a
reference to a span from ``on_start`` and to read its public ``events`` from elsewhere, which is what this
processor does: ``on_start`` keeps a weak reference to the span, a helper thread looks at the open spans
every ``live_interval`` seconds and moves their new events into the log, and ended spans have their
remaining events moved in small batches. Each followed span remembers the last event moved (by
identity), so every event is moved exactly once, even when the SDK's per-span event limit has dropped
older events from the span in between.

Span events are immutable, so the built-in backends keep them by reference and build the `Event` only
when it is read: the cost of an event that no reader ever asks for stays small.
"""

from __future__ import annotations

import logging
import math
import operator
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event as SpanEvent
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from otel_eventlog._errors import FailureReporter
from otel_eventlog._kinds import kind_matcher
from otel_eventlog.backends._common import SpanEventRef
from otel_eventlog.backends.base import EventLog, check_event_log
from otel_eventlog.event import EntryLike

__all__ = ["DEFAULT_LIVE_INTERVAL", "EventLogSpanProcessor"]

_logger = logging.getLogger(__name__)

#: Seconds between two looks at the open spans: the most an event waits before readers can see it.
DEFAULT_LIVE_INTERVAL = 0.1
# Ended spans waiting to be moved: the thread that ends the one that makes this many moves them all.
_BATCH = 64
_REF_TIME = operator.itemgetter(0)


def capture_filter(
    include: str | Iterable[str] | None, exclude: str | Iterable[str] | None
) -> Callable[[str], bool] | None:
    """Return a predicate for the event names to capture: in `include` (all if None), not in `exclude`.

    Returns ``None`` when every name is captured, so that the hot paths can skip the call.
    """
    included = None if include is None else kind_matcher(include, argument="include")
    excluded = None if exclude is None else kind_matcher(exclude, argument="exclude")
    if excluded is None:
        return included
    if included is None:
        return lambda name: not excluded(name)
    return lambda name: included(name) and not excluded(name)


class _Progress:
    """How far the processor got through the events of an open span. Only the mover touches it."""

    __slots__ = ("consumed", "last")

    def __init__(self) -> None:
        self.last: SpanEvent | None = None  # the last event moved into the log
        self.consumed = 0  # how many of the span's events were moved or filtered out


class EventLogSpanProcessor(SpanProcessor):
    """A span processor that appends span events, live, to an event log, beside any other processor.

    Each span event becomes one entry: ``kind`` is the event's name, ``payload`` its attributes,
    ``timestamp`` its own time, and ``trace_id`` / ``span_id`` the span's W3C ids. Optionally, a
    ``span.started`` and a ``span.ended`` entry mark each span's life.

    `on_start` and `on_end` run on the application's threads, never wait for readers or for the
    helper thread, do no I/O and never raise. `on_start` notes the span; `on_end` queues it, and
    every 64th queued span the thread that ends it moves the batch into the log while the spans are
    still fresh in memory (a fraction of a millisecond, amortised O(1) per span; skipped when a move
    is already under way). The helper thread moves the events of open spans, and of any queued
    ended spans, every `live_interval` seconds. A failing event log is counted in `failures` and
    logged at most once a minute. With ``live_interval=0`` there is no helper thread: `on_end`
    moves each span's events itself, and open spans are looked at only on `force_flush`.

    Args:
        event_log: Where the events go.
        include: Event names or shell-style patterns to capture; ``None`` captures all.
        exclude: Event names or patterns to leave out, even when included.
        span_lifecycle: Whether to append ``span.started`` and ``span.ended`` entries.
        live_interval: Seconds between two moves, the most an event waits before readers see it;
            ``0`` moves events when spans end and on `force_flush` only.

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
        check_event_log(event_log)
        if isinstance(live_interval, bool) or not isinstance(live_interval, (int, float)):
            raise TypeError(f"live_interval must be a number of seconds, got {live_interval!r}")
        if not math.isfinite(live_interval) or live_interval < 0:
            raise ValueError(f"live_interval must be a finite number of seconds >= 0, got {live_interval!r}")
        self._log = event_log
        self._capture = capture_filter(include, exclude)
        self._span_lifecycle = bool(span_lifecycle)
        self._live_interval = float(live_interval)
        # The open spans, weakly, so that a span that is never ended does not live on here: `on_start`
        # adds, `on_end` removes. With a helper thread, `on_end` queues the span in `_ended`.
        self._open: dict[tuple[int, int], weakref.ref[Span]] = {}
        self._ended: deque[ReadableSpan] = deque()
        # The mover is whoever holds `_move_lock`: the helper thread, `force_flush`, or `on_end` when
        # there is no helper. Only the mover reads events and touches `_progress`.
        self._move_lock = threading.Lock()
        self._progress: dict[tuple[int, int], _Progress] = {}
        self._dying: list[tuple[int, int]] = []  # followed spans found dropped, as of the last move
        # The built-in backends take span events by reference, copying nothing until they are read.
        self._by_reference = hasattr(type(event_log), "_extend_span_events")
        self._failures = FailureReporter(_logger, "moving span events into the event log")
        self._lost = 0
        self._stopping = threading.Event()  # set by `shutdown`, to end the helper's wait at once
        self._stopped = False
        self._helper: threading.Thread | None = None
        if self._live_interval:
            self._helper = threading.Thread(target=self._run, name="otel-eventlog-live-spans", daemon=True)
            self._helper.start()

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
        """Start following `span`. Called on the thread that starts the span; O(1), never raises."""
        try:
            context = span.context
            self._open[context.trace_id, context.span_id] = weakref.ref(span)
            if self._span_lifecycle and (self._capture is None or self._capture("span.started")):
                self._append_started(span)
        except Exception:
            self._failures.report()

    def on_end(self, span: ReadableSpan) -> None:
        """Queue the ended span for the next move, and every 64th time make that move here.

        Called on the thread that ends the span; never waits for a move under way, never raises.
        Without a helper thread (``live_interval=0``, or after `shutdown`), move the span's remaining
        events at once.
        """
        if self._helper is not None and not self._stopped:
            try:
                context = span.context
                self._open.pop((context.trace_id, context.span_id), None)
                self._ended.append(span)
                # Every so many ended spans, this thread moves them, unless a move is under way:
                # one batch, while the spans are still fresh in the CPU's caches.
                if len(self._ended) >= _BATCH and self._move_lock.acquire(blocking=False):
                    try:
                        self._move_ended()
                    finally:
                        self._move_lock.release()
            except Exception:
                self._failures.report()
            return
        with self._move_lock:  # `_move_span` and `_hand_over` catch and count what fails
            try:
                context = span.context
                self._open.pop((context.trace_id, context.span_id), None)
            except Exception:
                self._failures.report()
                return
            refs, entries = self._batch()
            self._move_span(span, refs, entries, ended=True)
            self._hand_over(refs, entries)

    def _append_started(self, span: Span) -> None:
        # Appended at once rather than by the mover, so that it comes before its children's entries.
        payload: dict[str, Any] = {"name": span.name, "span_kind": span.kind.name}
        if span.parent is not None:
            payload["parent_span_id"] = f"{span.parent.span_id:016x}"
        context = span.context
        self._log.append(
            "span.started",
            payload,
            timestamp=_seconds(span.start_time),
            trace_id=context.trace_id,
            span_id=context.span_id,
        )

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Move the new events of every span, open or ended, into the log now.

        Returns False if the helper thread's move did not finish within `timeout_millis`.
        """
        if not self._move_lock.acquire(timeout=max(timeout_millis, 0) / 1000):
            return False
        try:
            self._move_all()
        finally:
            self._move_lock.release()
        return True

    def shutdown(self) -> None:
        """Stop the helper thread and move what the spans hold one last time."""
        self._stopped = True
        self._stopping.set()
        if self._helper is not None and self._helper is not threading.current_thread():
            self._helper.join()
        with self._move_lock:
            self._move_all()

    def _run(self) -> None:
        while not self._stopping.wait(self._live_interval):
            with self._move_lock:
                self._move_all()

    def _move_ended(self) -> None:
        """Move the events of the ended spans queued so far. Hold `_move_lock`."""
        ended = [self._ended.popleft() for _ in range(len(self._ended))]
        refs, entries = self._batch()
        for span in ended:
            self._move_span(span, refs, entries, ended=True)
        self._hand_over(refs, entries)

    def _move_all(self) -> None:
        """Move the new events of every span followed or ended. Hold `_move_lock`."""
        # A span leaves `_open` before it is queued as ended, so the spans taken here as ended are not
        # among the open ones looked at below, and no span is looked at as open after its end.
        ended = [self._ended.popleft() for _ in range(len(self._ended))]
        refs, entries = self._batch()
        # A span that ends while this runs is moved as open, then, next time, as ended: each event once.
        dying, self._dying = self._dying, []
        for key, ref in self._open.copy().items():
            open_span = ref()
            if open_span is None:  # dropped by the application: ended (and queued), or abandoned
                self._open.pop(key, None)
                self._dying.append(key)
            else:
                self._move_span(open_span, refs, entries, ended=False)
        for ended_span in ended:
            self._move_span(ended_span, refs, entries, ended=True)
        # A span is queued as ended before the application can drop it, so a span found dropped in
        # the last move and not among the ended ones since was abandoned: forget how far it got.
        for key in dying:
            self._progress.pop(key, None)
        self._hand_over(refs, entries)

    def _batch(self) -> tuple[list[SpanEventRef] | None, list[EntryLike]]:
        """Return empty lists for a move: events kept by reference (if the log takes them), and others."""
        return ([] if self._by_reference else None), []

    def _move_span(
        self,
        span: ReadableSpan,
        refs: list[SpanEventRef] | None,
        entries: list[EntryLike],
        *,
        ended: bool,
    ) -> None:
        """Add the span's events after the last one moved to `refs` or `entries`. Never raises.

        Hold `_move_lock`. Events go to `refs` unless it is ``None`` or the event is malformed (a name
        that is not a non-empty str, a time that is not an int), which `extend` then reports.
        """
        try:
            context = span.context
            trace_id, span_id = context.trace_id, context.span_id
            if ended:  # most ended spans were never followed: then there is nothing to look up
                progress = self._progress.pop((trace_id, span_id), None) if self._progress else None
            else:
                progress = self._progress.get((trace_id, span_id))
                if progress is None:
                    self._progress[trace_id, span_id] = progress = _Progress()
            events = span.events
            start = 0
            if progress is not None and progress.last is not None:
                start = len(events)
                while start and events[start - 1] is not progress.last:
                    start -= 1
                # `start` is 0 when the last moved event is gone, dropped by the SDK's per-span limit:
                # then every event in the snapshot came after it.
            capture = self._capture
            for event in events[start:] if start else events:
                name = event.name
                if capture is None or capture(name):
                    time_ns = event.timestamp
                    if refs is not None and type(name) is str and name and type(time_ns) is int:
                        refs.append((time_ns, event, trace_id, span_id))  # SDK events are immutable
                    else:
                        entries.append((name, event.attributes, _seconds(time_ns), trace_id, span_id))
            if progress is not None and len(events) > start:
                progress.last = events[-1]
                progress.consumed += len(events) - start
            if ended:
                self._ended_span(span, len(events) if progress is None else progress.consumed, entries)
        except Exception:
            self._failures.report()

    def _ended_span(self, span: ReadableSpan, consumed: int, entries: list[EntryLike]) -> None:
        """Count the events of an ended span lost before they were moved; add its lifecycle entry."""
        dropped = span.dropped_events
        if dropped:  # the SDK dropped events: some may have gone before they were moved
            self._lost += max(0, len(span.events) + dropped - consumed)
        if self._span_lifecycle and (self._capture is None or self._capture("span.ended")):
            entries.append(_ended_entry(span))

    def _hand_over(self, refs: list[SpanEventRef] | None, entries: list[EntryLike]) -> None:
        """Put a move's events in the log, each kind in the order of the events' times. Never raises."""
        try:
            if refs:
                refs.sort(key=_REF_TIME)
                self._log._extend_span_events(refs)  # type: ignore[attr-defined]  # checked in __init__
            if entries:
                entries.sort(key=_entry_time)
                self._log.extend(entries)
        except Exception:
            self._failures.report()


def _entry_time(entry: EntryLike) -> float:
    """Return an entry's time for sorting; a malformed one sorts first, for `extend` to report."""
    time = entry[2]
    return time if isinstance(time, (int, float)) else -math.inf


def _seconds(time_ns: int | None) -> float | None:
    return None if time_ns is None else time_ns / 1_000_000_000  # int / int rounds once, exactly


def _ended_entry(span: ReadableSpan) -> EntryLike:
    payload: dict[str, Any] = {"name": span.name, "status": span.status.status_code.name}
    if span.status.description:
        payload["status_description"] = span.status.description
    if span.start_time is not None and span.end_time is not None:
        payload["duration_ms"] = (span.end_time - span.start_time) / 1_000_000
    return ("span.ended", payload, _seconds(span.end_time), span.context.trace_id, span.context.span_id)
