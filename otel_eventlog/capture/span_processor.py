"""`EventLogSpanProcessor`: span events into the event log, live, while their spans are still open.

The OpenTelemetry SDK has no hook on ``Span.add_event``. The specification allows a processor to keep a
reference to a span from ``on_start`` and to read its public ``events`` from elsewhere, which is what this
processor does: ``on_start`` keeps a weak reference to the span, a helper thread looks at the open spans
every ``live_interval`` seconds and moves their new events into the log, and ended spans have their
remaining events moved in small batches. Each followed span remembers the last event moved (by
identity), so every event is moved exactly once, even when the SDK's per-span event limit has dropped
older events from the span in between.

Each move hands its events to the log in one `BatchWriter.write_batch` call, ordered by the events' own
times. Span events are immutable, so they go by reference: the built-in backends build the `Event` only
when it is read, and the cost of an event that no reader ever asks for stays small.
"""

from __future__ import annotations

import heapq
import logging
import operator
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event as SpanEvent
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, _Span
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import SpanContext

from otel_eventlog import _defaults, _forks
from otel_eventlog._checks import check_seconds, span_hex
from otel_eventlog._kinds import KindMatcher, capture_filter, kind_matcher
from otel_eventlog._reporting import FailureReporter
from otel_eventlog.backends import BatchWriter, EventLog, batch_writer
from otel_eventlog.capture import _order
from otel_eventlog.capture._hooks import BeforeAppend, CaptureCounters, flush, hooked
from otel_eventlog.event import PLAIN_SPAN_EVENTS, BatchItem, EntryLike

__all__ = ["EventLogSpanProcessor"]

_logger = logging.getLogger(__name__)

# The longest `shutdown` waits for a move under way, in seconds.
_SHUTDOWN_WAIT = 5.0
# Ended spans waiting to be moved: the thread that ends the one that makes this many moves them all.
_BATCH = 16
_REF_TIME = operator.itemgetter(0)
_ORDER = operator.itemgetter(0, 1)
_STARTED, _EVENT, _ENDED = range(3)  # what comes first among entries of a span with the same time
# The longest a log record waits for a move under way before it lands anyway, out of order, in seconds.
_ORDER_WAIT = 1.0
_ANCESTRY = 256  # how far up the tree of open spans a move looks, at most
_LOGGED_KEPT = 8  # log events remembered per open span, to recognise them coming back as span events
_SpanKey = tuple[int, int]  # a span's trace id and span id
_GEN_AI_OPERATION = _defaults.GEN_AI_OPERATION


def _sdk_layout_is_known() -> bool:
    """Tell whether the SDK keeps what this processor reads directly where it reads it.

    A span's context, attributes and events in ``_context``, ``_attributes`` and ``_events``; its events
    in a `BoundedList` whose items are a deque ``_dq``; attributes in a `BoundedAttributes` whose items
    are a dict ``_dict``; an event's name, time and attributes in ``_name``, ``_timestamp`` and
    ``_attributes``. Checked once, on sample objects: with an SDK laid out otherwise, all of these are
    read through the public properties, more slowly.
    """
    try:
        attributes: Any = BoundedAttributes(1, {"a": 1}, immutable=True)
        event: Any = SpanEvent("e", attributes, 1)
        events: Any = BoundedList(1)
        events.append(event)
        span: Any = ReadableSpan("s", SpanContext(1, 1, False), attributes=attributes, events=events)
        return (
            type(events._dq) is deque
            and list(events._dq) == [event]
            and type(attributes._dict) is dict
            and event.name is event._name
            and event.timestamp is event._timestamp
            and event.attributes is event._attributes
            and span.context is span._context
            and span._attributes is attributes
            and span._events is events
        )
    except Exception:
        return False


# The SDK's types whose fields are read directly, where a property call each would cost more than the
# rest of what is done with them: for every span, and every event. None of them (None, which is no
# object's type) when the SDK is laid out otherwise.
_SDK_SPANS: frozenset[type] = frozenset()
_SDK_EVENT: Any = None
_SDK_EVENT_LIST: Any = None
_SDK_ATTRIBUTES: Any = None
if _sdk_layout_is_known():
    _SDK_SPANS = frozenset({ReadableSpan, Span, _Span})
    _SDK_EVENT, _SDK_EVENT_LIST, _SDK_ATTRIBUTES = SpanEvent, BoundedList, BoundedAttributes
    PLAIN_SPAN_EVENTS.add(SpanEvent)


class _Progress:
    """How far the processor got through the events of an open span. Only the mover touches it."""

    __slots__ = ("consumed", "last")

    def __init__(self) -> None:
        self.last: SpanEvent | None = None  # the last event moved into the log
        self.consumed = 0  # how many of the span's events were moved or filtered out


class _Move:
    """The entries one move collects, handed to the log in one call, in the order of their times."""

    __slots__ = ("entries", "refs")

    def __init__(self) -> None:
        self.refs: list[BatchItem] = []  # span events, by reference
        # Lifecycle entries and events with an unusual time, each with its time in ns and its rank among
        # what has the same time: a span's start, its events, its end.
        self.entries: list[tuple[float, int, EntryLike]] = []

    def add_events(
        self, events: Sequence[SpanEvent], trace_id: int, span_id: int, capture: KindMatcher | None
    ) -> None:
        """Add the span events that `capture` lets through (all when it is ``None``)."""
        refs, entries = self.refs, self.entries
        for event in events:
            if type(event) is _SDK_EVENT:  # the SDK's own: its fields read without a property call each
                name, time_ns = event._name, event._timestamp
            else:
                name, time_ns = event.name, event.timestamp
            if capture is not None and not capture(name):
                continue
            if type(name) is str and name and type(time_ns) is int:
                refs.append((time_ns, event, trace_id, span_id))  # SDK events are immutable
            else:  # an odd name or time, given by the application: the backend checks the entry
                payload = dict(event.attributes or {})
                order = time_ns if isinstance(time_ns, (int, float)) else 0
                entries.append((order, _EVENT, (name, payload, _seconds(time_ns), trace_id, span_id)))

    def add_lifecycle(self, time_ns: int | None, rank: int, entry: EntryLike) -> None:
        """Add an entry a span adds of itself: at its start (rank `_STARTED`) or end (rank `_ENDED`)."""
        self.entries.append((time_ns or 0, rank, entry))

    def hand_over(self, writer: BatchWriter) -> None:
        """Write the collected entries to `writer` in one batch, ordered by their own times."""
        batch = self.refs
        batch.sort(key=_REF_TIME)
        if self.entries:
            self.entries.sort(key=_ORDER)
            merged = heapq.merge(((ref[0], _EVENT, ref) for ref in batch), self.entries, key=_ORDER)
            batch = [item for _, _, item in merged]
        if batch:
            writer.write_batch(batch)


class EventLogSpanProcessor(CaptureCounters, SpanProcessor):
    """A span processor that appends span events, live, to an event log, beside any other processor.

    Each span event becomes one entry: ``kind`` is the event's name, ``payload`` its attributes,
    ``timestamp`` its own time, and ``trace_id`` / ``span_id`` the span's W3C ids. Optionally, a
    ``span.started`` and a ``span.ended`` entry mark each span's life.

    `on_start` and `on_end` run on the application's threads, never wait for readers or for the
    helper thread, do no I/O and never raise. `on_start` notes the span; `on_end` queues it, and
    every 16th queued span the thread that ends it moves the batch into the log while the spans are
    still fresh in memory (a fraction of a millisecond, amortised O(1) per span; skipped when a move
    is already under way). The helper thread moves the events of open spans, and of any queued
    ended spans, every `live_interval` seconds.

    Within a trace, ids follow the order in which things happened: a move takes, with each span, what
    its open ancestors recorded before, and hands everything over ordered by time; and before a log
    record inside a span is appended (by `EventLogHandler` or `EventLogRecordProcessor` writing to
    the same log), the events that span and its open ancestors recorded so far, and those of the
    spans already ended, are moved on the logging thread. A failing event log is counted in `failures` and
    logged at most once a minute. With ``live_interval=0`` there is no helper thread: `on_end`
    moves each span's events itself, and open spans are looked at only on `force_flush`. After
    `shutdown`, new spans are ignored, as the OpenTelemetry specification asks.

    The events reach the log through its `BatchWriter` side (`batch_writer`): by reference for the
    built-in backends, through ``extend`` for a log of the application's own.

    Args:
        event_log: Where the events go.
        include: Event names or shell-style patterns to capture; ``None`` captures all.
        exclude: Event names or patterns to leave out, even when included.
        before_append: Called with each `Entry` before it is written; returns it, a changed
            `Entry`, or ``None`` to drop it. Runs where the entry is written (for span events, on
            the thread that moves them). What it drops is counted in `dropped`; when it raises, that
            event is dropped and counted in `failures`.
        span_lifecycle: Whether to append ``span.started`` and ``span.ended`` entries.
        gen_ai_operations: Whether each span that is a GenAI operation (``gen_ai.operation.name``
            set) appends a ``gen_ai.<operation>`` entry when it ends (``gen_ai.chat``,
            ``gen_ai.execute_tool``, ...), with its status, duration and `span_attributes`.
        span_attributes: Span attribute names or shell-style patterns carried into the entries a span
            adds when it ends (``gen_ai.*`` and ``error.type`` by default); ``()`` carries none.
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
        gen_ai_operations: bool = True,
        span_attributes: str | Iterable[str] = _defaults.SPAN_ATTRIBUTES,
        live_interval: float = _defaults.LIVE_INTERVAL_SECONDS,
        before_append: BeforeAppend | None = None,
    ) -> None:
        self._writer = hooked(batch_writer(event_log), before_append)
        self._hooked = before_append is not None
        self._log = event_log
        self._live_interval = check_seconds(live_interval, "live_interval")
        self._capture = capture_filter(include, exclude)
        self._span_lifecycle = bool(span_lifecycle)
        self._gen_ai = bool(gen_ai_operations)
        self._carried = kind_matcher(span_attributes, argument="span_attributes")
        # The open spans, weakly, so that a span that is never ended does not live on here: `on_start`
        # adds, `on_end` removes. With a helper thread, `on_end` queues the span in `_ended`.
        self._open: dict[_SpanKey, weakref.ref[Span]] = {}
        self._ended: deque[ReadableSpan] = deque()
        # The mover is whoever holds `_move_lock`: the helper thread, `force_flush`, `shutdown`, or
        # `on_end`. Only the mover reads events and touches `_progress`.
        self._move_lock = threading.Lock()
        self._progress: dict[_SpanKey, _Progress] = {}
        self._dying: list[_SpanKey] = []  # followed spans found dropped, as of the last move
        # Log events appended inside open spans, by span: one coming back as a span event (through
        # OpenTelemetry's event-to-span-event bridge) is not moved again.
        self._logged: dict[_SpanKey, list[tuple[str, int]]] = {}
        self._mover: int | None = None  # the thread that is moving, while it moves
        self._moves = 0  # moves begun
        self._stuck = -1  # the move that made a log record wait too long: not waited for again
        self._failures = FailureReporter(_logger, "moving span events into the event log")
        self._lost = 0
        self._stopping = threading.Event()  # set by `shutdown`, to end the helper's wait at once
        self._stopped = False  # the same, as a plain attribute: read on every span
        self._helper: threading.Thread | None = None
        if self._live_interval:
            self._start_helper()
        _forks.track(self, first=True)  # a move holds its lock while it takes the log's
        _order.follow(self)

    def _start_helper(self) -> None:
        self._helper = threading.Thread(target=self._run, name="otel-eventlog-live-spans", daemon=True)
        self._helper.start()

    def _locks_held_across_fork(self) -> tuple[threading.Lock, ...]:
        return (self._move_lock,)  # so that the child never gets a move half-done

    def _after_fork_in_child(self) -> Callable[[], None] | None:
        """Give the child a working move lock and, unless shut down, its own helper thread.

        The open spans are forgotten: those of the parent's other threads never end here, and their
        own locks may be held for ever. A span the forking thread has open is still moved when it ends.
        """
        self._open = {}
        self._move_lock = threading.Lock()
        self._mover = None
        self._stopping = threading.Event()
        if self._stopped:
            self._stopping.set()
        return self._start_helper if self._helper is not None and not self._stopped else None

    def stats(self) -> dict[str, int]:
        """Return the counters: ``failures``, ``dropped``, ``lost_span_events``."""
        return {**super().stats(), "lost_span_events": self._lost}

    @property
    def lost_span_events(self) -> int:
        """Events the SDK's per-span limit dropped from ended spans before this processor saw them."""
        return self._lost

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Start following `span`. Called on the thread that starts the span; O(1), never raises."""
        if self._stopped:
            return
        try:
            context: Any = span._context if type(span) in _SDK_SPANS else span.context
            # A SpanContext is a tuple that begins with the two ids: sliced, without a property call each.
            key = context[:2] if type(context) is SpanContext else (context.trace_id, context.span_id)
            self._open[key] = weakref.ref(span)
        except Exception:
            self._failures.report()

    def on_end(self, span: ReadableSpan) -> None:
        """Queue the ended span for the next move, and every 16th time make that move here.

        Called on the thread that ends the span; never waits for a move under way, never raises.
        Without a helper thread (``live_interval=0``), move the span's remaining events at once, or,
        if a move is under way, leave them to it.
        """
        if self._stopped:
            return
        try:
            context: Any = span._context if type(span) in _SDK_SPANS else span.context
            key = context[:2] if type(context) is SpanContext else (context.trace_id, context.span_id)
            self._open.pop(key, None)
            self._ended.append(span)
            if self._helper is None:
                self._move_ended_now()
            elif len(self._ended) >= _BATCH:
                # Every so many ended spans, this thread moves them, unless a move is under way:
                # one batch, while the spans are still fresh in the CPU's caches.
                self._try_move_ended()
        except Exception:
            self._failures.report()

    def _move_ended_now(self) -> None:
        """Move the queued ended spans here, unless a move is under way (which then takes them)."""
        # Never waits: a move under way (perhaps this very thread's, when before_append ends a span)
        # moves them on its way out, or the next span's end or force_flush does.
        while self._ended and self._try_move_ended():
            pass

    def _try_move_ended(self) -> bool:
        """Move the queued ended spans here, unless a move is under way; return whether it did."""
        if not self._move_lock.acquire(blocking=False):
            return False
        try:
            self._move([], self._take_ended(), ancestors=True)
        finally:
            self._move_lock.release()
        return True

    def writes_to(self, log: object) -> bool:
        """Tell whether this processor writes into `log` (asked by the logging paths)."""
        return log is self._log

    def before_log_event(self, trace_id: int, span_id: int, name: str, time_ns: int) -> bool:
        """Move what span `span_id`, its open ancestors and the ended spans recorded; a log record follows.

        Called on the logging thread before a log record naming event `name` is appended inside that
        span, so that it gets an id after theirs. Waits for a move under way, a second at most (then the
        record lands at once, out of order, and later records do not wait for that move again), and
        not at all when a `before_append` hook may be running in it (see `_lock_for_log`). Returns
        False when the span already holds this very event (same name and time: OpenTelemetry's
        event-to-span-event bridge added it), so that it lands once; otherwise remembers the event, so
        that it is not moved should the bridge add it after. Never raises.
        """
        if self._stopped or self._mover == threading.get_ident():  # a hook logging while it moves
            return True
        if not self._lock_for_log():
            return True
        try:
            return self._settle(trace_id, span_id, name, time_ns)
        finally:
            self._move_lock.release()
            if self._helper is None:  # spans that ended meanwhile left their move to this one
                self._move_ended_now()

    def _settle(self, trace_id: int, span_id: int, name: str, time_ns: int) -> bool:
        """The body of `before_log_event`, holding `_move_lock`."""
        try:
            ended = self._take_ended()
            key = (trace_id, span_id)
            ref = self._open.get(key)
            span = None if ref is None else ref()
            self._move([] if span is None else [span], ended, ancestors=True)
            if span is None:
                return True
            if self._captures(name) and _holds(span.events, name, time_ns):
                return False  # moved as a span event (a hook of this processor's may have dropped it)
            logged = self._logged.setdefault(key, [])
            logged.append((name, time_ns))
            if len(logged) > _LOGGED_KEPT:
                del logged[0]
            return True
        except Exception:
            self._failures.report()
            return True

    def _lock_for_log(self) -> bool:
        """Take `_move_lock` for a log record, waiting a little for a move under way; False if it did not.

        Never waits while a move may run the application's `before_append` hook: a hook that logs
        would wait for the logging handler's lock, which the thread waiting here may hold.
        """
        if self._move_lock.acquire(blocking=False):
            return True
        if self._hooked:
            return False
        under_way = self._moves
        if self._stuck == under_way:
            return False
        if self._move_lock.acquire(timeout=_ORDER_WAIT):
            return True
        self._stuck = under_way
        return False

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Move the new events of every span, open or ended, into the log now.

        Returns False if the helper thread's move, or the writing of a log that queues, did not
        finish within `timeout_millis`.
        """
        timeout = max(timeout_millis, 0) / 1000
        deadline = time.monotonic() + timeout
        if not self._move_lock.acquire(timeout=timeout):
            return False
        try:
            self._move_all()
        finally:
            self._move_lock.release()
        self._move_ended_now()  # spans that ended while this moved, and left their move to it
        return flush(self._writer, max(0.0, deadline - time.monotonic()))

    def shutdown(self) -> None:
        """Stop the helper thread and move what the spans hold one last time; ignore spans after.

        Waits at most a few seconds for a move under way (``TracerProvider.shutdown`` runs at exit, which
        must never hang), then gives up on the last move with a logged warning.
        """
        self._stopped = True
        self._stopping.set()
        _order.unfollow(self)
        deadline = time.monotonic() + _SHUTDOWN_WAIT
        if self._helper is not None and self._helper is not threading.current_thread():
            self._helper.join(_SHUTDOWN_WAIT)
        if not self._move_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            _logger.warning(
                "otel_eventlog: a move of span events did not end in time; shutting down without it"
            )
            return
        try:
            self._move_all()
            while self._ended:  # spans that ended while this moved, before they saw the stop
                self._move([], self._take_ended(), ancestors=True)
        finally:
            self._move_lock.release()
        flush(self._writer, max(0.0, deadline - time.monotonic()))

    def _captures(self, name: str) -> bool:
        return self._capture is None or self._capture(name)

    def _run(self) -> None:
        while not self._stopping.wait(self._live_interval):
            with self._move_lock:
                self._move_all()

    def _take_ended(self) -> list[ReadableSpan]:
        return [self._ended.popleft() for _ in range(len(self._ended))]

    def _move_all(self) -> None:
        """Move the new events of every span followed or ended. Hold `_move_lock`."""
        # A span leaves `_open` before it is queued as ended, so the spans taken here as ended are not
        # among the open ones looked at below, and no span is looked at as open after its end.
        ended = self._take_ended()
        # A span that ends while this runs is moved as open, then, next time, as ended: each event once.
        self._move(self._open_spans(), ended)

    def _open_spans(self) -> list[ReadableSpan]:
        """Return the open spans still alive; forget the progress of those abandoned since last time."""
        # A span is queued as ended before the application can drop it, so a span found dropped in
        # the last move and not among the ended ones since was abandoned: forget how far it got.
        for key in self._dying:
            self._progress.pop(key, None)
            self._logged.pop(key, None)
        self._dying = []
        alive: list[ReadableSpan] = []
        for key, ref in self._open.copy().items():
            span = ref()
            if span is None:  # dropped by the application: ended (and queued), or abandoned
                self._open.pop(key, None)
                self._dying.append(key)
            else:
                alive.append(span)
        return alive

    def _move(
        self, open_spans: list[ReadableSpan], ended_spans: list[ReadableSpan], *, ancestors: bool = False
    ) -> None:
        """Move the new entries of the open spans, then of the ended ones, in one batch.

        With `ancestors`, also those of the open ancestors of each span, which `open_spans` may not hold.
        Hold `_move_lock`. Never raises: what fails is counted and logged, and the rest moves on.
        """
        self._mover = threading.get_ident()
        self._moves += 1
        try:
            move = _Move()
            if ancestors:
                open_spans = open_spans + self._open_ancestors(open_spans, ended_spans)
            for span in open_spans:
                try:
                    self._move_span(span, move, ended=False)
                except Exception:
                    self._failures.report()
            self._move_ended(ended_spans, move)
            try:
                move.hand_over(self._writer)
            except Exception:
                self._failures.report()
        finally:
            self._mover = None

    def _open_ancestors(self, *groups: list[ReadableSpan]) -> list[ReadableSpan]:
        """Return the open ancestors of the spans in `groups` that are not among them, each once."""
        found: list[ReadableSpan] = []
        seen: set[_SpanKey] | None = None
        for spans in groups:
            for span in spans:
                parent = span.parent
                if parent is None:  # most spans that end in numbers are roots: the fast way out
                    continue
                if seen is None:
                    seen = {(s.context.trace_id, s.context.span_id) for s in groups[0]}
                for _ in range(_ANCESTRY):
                    key = (parent.trace_id, parent.span_id)
                    ref = self._open.get(key)
                    ancestor = None if ref is None or key in seen else ref()
                    if ancestor is None:
                        break
                    seen.add(key)
                    found.append(ancestor)
                    parent = ancestor.parent
                    if parent is None:
                        break
        return found

    def _move_ended(self, spans: list[ReadableSpan], move: _Move) -> None:
        """Add the entries of the ended `spans` to `move`. Hold `_move_lock`.

        Most ended spans were never seen open and carry no lifecycle entry: their events are all new,
        and go straight into `move` (this runs for every span the application ends).
        """
        progress, logged, capture, gen_ai = self._progress, self._logged, self._capture, self._gen_ai
        for span in spans:
            try:
                if type(span) in _SDK_SPANS:  # read without a property call each: this runs for every span
                    context: Any = span._context
                    attributes: Any = span._attributes
                    bounded: Any = span._events
                else:
                    context, attributes, bounded = span.context, span.attributes, None
                key = context[:2] if type(context) is SpanContext else (context.trace_id, context.span_id)
                if type(attributes) is _SDK_ATTRIBUTES:
                    attributes = attributes._dict  # without the lock its methods take
                if (
                    self._span_lifecycle
                    or (progress and key in progress)
                    or (logged and key in logged)
                    or (gen_ai and attributes and _GEN_AI_OPERATION in attributes)
                ):
                    self._move_span(span, move, ended=True)
                    continue
                events: Sequence[SpanEvent]
                if type(bounded) is _SDK_EVENT_LIST:  # as `_final_events`, without a call
                    events, dropped = tuple(bounded._dq), bounded.dropped
                else:
                    events, dropped = _final_events(span)
                move.add_events(events, key[0], key[1], capture)
                if dropped:  # the SDK dropped events before this processor saw any
                    self._lost += dropped
            except Exception:
                self._failures.report()

    def _move_span(self, span: ReadableSpan, move: _Move, *, ended: bool) -> None:
        """Add the span's entries after the last one moved to `move`. Hold `_move_lock`."""
        context: Any = span._context if type(span) in _SDK_SPANS else span.context
        key = (context.trace_id, context.span_id)
        if ended:
            # Most ended spans were never followed: then there is no progress to look up.
            progress = self._progress.pop(key, None) if self._progress else None
            logged = self._logged.pop(key, None) if self._logged else None
            events, dropped = _final_events(span)
        else:
            progress = self._progress.get(key)
            logged = self._logged.get(key) if self._logged else None
            events, dropped = span.events, 0
        lifecycle = self._span_lifecycle
        if progress is None:
            if lifecycle and self._captures("span.started"):
                move.add_lifecycle(span.start_time, _STARTED, _started_entry(span))
            if not ended:
                self._progress[key] = progress = _Progress()
        start = 0 if progress is None else _after(events, progress.last)
        new = events[start:] if start else events
        if logged:  # log events that came back as span events are in the log already
            new = [event for event in new if not _taken(event, logged)]
        move.add_events(new, key[0], key[1], self._capture)
        if progress is not None and len(events) > start:
            progress.last = events[-1]
            progress.consumed += len(events) - start
        if dropped:  # the SDK dropped events: some may have gone before they were moved
            consumed = len(events) if progress is None else progress.consumed
            self._lost += max(0, len(events) + dropped - consumed)
        if ended:
            self._add_end_entries(span, move)

    def _add_end_entries(self, span: ReadableSpan, move: _Move) -> None:
        """Add what an ended span says of itself: ``span.ended``, and its ``gen_ai.<operation>`` entry."""
        attributes = _attributes(span)
        operation = attributes.get(_GEN_AI_OPERATION) if self._gen_ai else None
        kinds = []
        if self._span_lifecycle:
            kinds.append("span.ended")
        if isinstance(operation, str) and operation:
            kinds.append(f"gen_ai.{operation}")
        kinds = [kind for kind in kinds if self._captures(kind)]
        if not kinds:
            return
        payload: dict[str, Any] = {"name": span.name, "status": span.status.status_code.name}
        if span.status.description:
            payload["status_description"] = span.status.description
        if span.start_time is not None and span.end_time is not None:
            payload["duration_ms"] = (span.end_time - span.start_time) / 1_000_000
        carried = self._carried
        for name, value in attributes.items():
            if carried(name):
                payload[name] = value
        context = span.context
        for kind in kinds:
            entry = (kind, dict(payload), _seconds(span.end_time), context.trace_id, context.span_id)
            move.add_lifecycle(span.end_time, _ENDED, entry)


def _final_events(span: ReadableSpan) -> tuple[Sequence[SpanEvent], int]:
    """Return an ended span's events and how many the SDK dropped.

    The SDK's ``events`` copies them under a lock, through methods written in Python; nothing adds to
    an ended span's events any more, so its list is read directly, in one C call, where it is the SDK's.
    """
    bounded: Any = span._events if type(span) in _SDK_SPANS else None
    if type(bounded) is _SDK_EVENT_LIST:
        return tuple(bounded._dq), bounded.dropped
    return span.events, span.dropped_events


def _holds(events: Sequence[SpanEvent], name: str, time_ns: int) -> bool:
    """Tell whether one of the last few `events` is event `name` at `time_ns`."""
    return any(event.name == name and event.timestamp == time_ns for event in events[-_LOGGED_KEPT:])


def _taken(event: SpanEvent, logged: list[tuple[str, int]]) -> bool:
    """Tell whether `event` is one of the `logged` log events; forget it if so, as it is seen once."""
    key = (event.name, event.timestamp)
    if key in logged:
        logged.remove(key)
        return True
    return False


def _after(events: Sequence[SpanEvent], last: SpanEvent | None) -> int:
    """Return the index of the first event after `last`: 0 if `last` is None or gone."""
    if last is None:
        return 0
    start = len(events)
    while start and events[start - 1] is not last:
        start -= 1
    # `start` is 0 when the last moved event is gone, dropped by the SDK's per-span limit: then every
    # event in the snapshot came after it.
    return start


def _seconds(time_ns: object) -> float | None:
    if isinstance(time_ns, (int, float)):
        return time_ns / 1_000_000_000  # int / int rounds once, exactly
    return None


def _started_entry(span: ReadableSpan) -> EntryLike:
    payload: dict[str, Any] = {"name": span.name, "span_kind": span.kind.name}
    if span.parent is not None:
        payload["parent_span_id"] = span_hex(span.parent.span_id)
    context = span.context
    return ("span.started", payload, _seconds(span.start_time), context.trace_id, context.span_id)


def _attributes(span: ReadableSpan) -> Mapping[str, Any]:
    """Return a span's attributes, as the SDK's own dict where it keeps one (read without its lock)."""
    attributes: Any = span._attributes if type(span) in _SDK_SPANS else span.attributes
    inner = getattr(attributes, "_dict", None)
    if type(inner) is dict:
        return inner
    return attributes if isinstance(attributes, Mapping) else {}
