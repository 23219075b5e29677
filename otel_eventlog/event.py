"""The records of an event log: `Entry` (one to append), `Event` (one stored) and `Page` (one read).

Also the shapes of the batch-write contract (`otel_eventlog.backends.BatchWriter`): a batch holds
`Entry` tuples and `SpanEventRef` tuples, span events handed over by reference.

All of them are immutable. `Event.to_dict()` and `Page.to_dict()` are the wire format that the HTTP readers
serve, so their keys are part of the public contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

__all__ = [
    "BatchItem",
    "Entry",
    "EntryLike",
    "Event",
    "Page",
    "SpanEventLike",
    "SpanEventRef",
    "SpanEventRefLike",
    "as_entry",
]


class Entry(NamedTuple):
    """An event to append with `EventLog.extend`: the arguments of `EventLog.append`, as a tuple.

    A plain tuple of the same five fields, in this order, is accepted as well.

    Attributes:
        kind: The event's name, such as ``"turn.started"``.
        payload: The event's attributes; the log keeps a shallow copy. ``None`` means ``{}``.
        timestamp: When the event happened, in seconds since the epoch; ``None`` means when appended.
        trace_id: The trace id of the span the event belongs to, if any: 32 lower-case hex digits, or
            the int of OpenTelemetry's ``SpanContext``.
        span_id: The span id of the span the event belongs to, if any: 16 lower-case hex digits, or
            the int of OpenTelemetry's ``SpanContext``.
    """

    kind: str
    payload: Mapping[str, Any] | None = None
    timestamp: float | None = None
    trace_id: str | int | None = None
    span_id: str | int | None = None


#: What `EventLog.extend` accepts: an `Entry`, or a plain tuple of the same five fields.
EntryLike = tuple[str, "Mapping[str, Any] | None", "float | None", "str | int | None", "str | int | None"]


class SpanEventLike(Protocol):
    """A span event as a backend reads it when it builds an `Event`: OpenTelemetry's SDK events fit.

    The backend reads it only after the batch was handed over, and more than once if it likes, so it
    must not change: the SDK's events never do.
    """

    @property
    def name(self) -> str:
        """The event's name: the entry's ``kind``."""
        ...

    @property
    def attributes(self) -> Mapping[str, Any] | None:
        """The event's attributes: the entry's ``payload`` (copied when the `Event` is built)."""
        ...


class SpanEventRef(NamedTuple):
    """A span event handed to `BatchWriter.write_batch` by reference: nothing is copied until it is read.

    The capture side builds these as plain 4-tuples, in this order, which is cheaper on its hot path.

    Attributes:
        time_ns: When the event happened, in nanoseconds since the epoch (an int).
        event: The event itself, immutable: its ``name`` (a non-empty str) and ``attributes``.
        trace_id: The trace id of its span, as OpenTelemetry's int.
        span_id: The span id of its span, as OpenTelemetry's int.
    """

    time_ns: int
    event: SpanEventLike
    trace_id: int
    span_id: int


# Span event classes whose ``name`` and ``attributes`` properties only return their fields ``_name`` and
# ``_attributes``, which the built-in backends then read directly: every span event of every span passes
# there, and two property calls are a tenth of what storing a small event costs. The span processor adds
# OpenTelemetry's SDK ``Event`` once it has checked that the class keeps this promise. Not part of the
# public contract: a class out of this set is read through its properties, as it always may be.
PLAIN_SPAN_EVENTS: set[type] = set()
#: A `SpanEventRef`, or a plain tuple of the same four fields.
SpanEventRefLike = tuple[int, SpanEventLike, int, int]
#: One item of a batch: an entry (five fields) or a span event by reference (four fields).
BatchItem = EntryLike | SpanEventRefLike


def as_entry(item: BatchItem) -> Entry:
    """Return the `Entry` a batch item stands for; a span event by reference gets a copy of its attributes."""
    if len(item) == 4:
        time_ns, event, trace_id, span_id = item
        attributes = event.attributes
        return Entry(event.name, dict(attributes or {}), time_ns / 1_000_000_000, trace_id, span_id)
    return Entry(*item)


class Event(NamedTuple):
    """One entry of an event log.

    An `Event` is immutable. It is a `typing.NamedTuple` rather than a frozen dataclass because it is built
    on the application's hot path and a tuple is several times cheaper to build in CPython.

    Attributes:
        id: The entry's id, unique within its log, starting at 1 and strictly increasing.
        timestamp: When the event happened, in seconds since the epoch.
        kind: The event's name, such as ``"turn.started"``.
        payload: The event's attributes. The log stores its own shallow copy; treat it as read-only.
        trace_id: The W3C trace id (32 lower-case hex digits) of the span the event belongs to, if any.
        span_id: The W3C span id (16 lower-case hex digits) of the span the event belongs to, if any.
    """

    id: int
    timestamp: float
    kind: str
    payload: dict[str, Any]
    trace_id: str | None = None
    span_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the wire form: ``id``, ``timestamp``, ``kind``, ``payload``, and the ids when set.

        The payload is a copy, so changing the result never changes the stored event.
        """
        data: dict[str, Any] = {
            "id": self.id,
            "timestamp": self.timestamp,
            "kind": self.kind,
            "payload": dict(self.payload),
        }
        if self.trace_id is not None:
            data["trace_id"] = self.trace_id
        if self.span_id is not None:
            data["span_id"] = self.span_id
        return data


@dataclass(frozen=True, slots=True)
class Page:
    """The result of one `read()`: the events and where the reader stands.

    Attributes:
        events: The matching events, in ascending id order.
        cursor: The id to pass as ``since`` next time. It never moves backwards and it moves past events
            that were examined but filtered out, so the next read neither repeats nor rescans them.
        missed: How many events were evicted (by TTL, by ``max_entries`` or by ``clear()``) between the
            reader's ``since`` and the oldest resident event: events this reader can never see. Always 0
            when ``since`` was ``None``, since such a reader has not seen anything yet.
        oldest_id: The id of the oldest resident event, or ``None`` when nothing is resident.
        latest_id: The id most recently handed out, resident or not; 0 before the first append.
        epoch: An identifier of the log instance. When it changes, the reader is talking to a different
            log (a restarted process, say), whose ids mean something else: start again from ``None``.
    """

    events: tuple[Event, ...]
    cursor: int
    missed: int
    oldest_id: int | None
    latest_id: int
    epoch: str

    def to_dict(self) -> dict[str, Any]:
        """Return the wire form: the events as `Event.to_dict()` plus the cursor fields."""
        return {
            "events": [event.to_dict() for event in self.events],
            "cursor": self.cursor,
            "missed": self.missed,
            "oldest_id": self.oldest_id,
            "latest_id": self.latest_id,
            "epoch": self.epoch,
        }
