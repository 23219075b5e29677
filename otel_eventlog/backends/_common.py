"""What the built-in backends share: argument checks, and the rows they store.

A row is an `Event` but for its id, which the backends derive from where the row is kept. Span events
handed over by reference (`SpanEventRef`) are stored as they come and made into rows when read.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from otel_eventlog import _defaults
from otel_eventlog._checks import (
    SPAN_ID_LIMIT,
    TRACE_ID_LIMIT,
    check_span_id,
    check_trace_id,
    is_number,
    span_hex,
    trace_hex,
)
from otel_eventlog._kinds import KindMatcher, kind_matcher
from otel_eventlog._sizing import EVENT_BYTES, Limits
from otel_eventlog.errors import ArgumentTypeError, ArgumentValueError
from otel_eventlog.event import PLAIN_SPAN_EVENTS, BatchItem, Event, SpanEventRefLike
from otel_eventlog.redaction import Redaction

_logger = logging.getLogger(__name__)
# An event as the backends store it, but for its id: the fields of `Event` after the first.
Row = tuple[float, str, dict[str, Any], "str | None", "str | None"]
# A span event as `fit_rows` keeps it: its time in ns, name, attributes (not copied), and both ids in
# one int (the trace id shifted above the span id), in one flat tuple of plain values.
SpanEventRow = tuple[int, str, dict[str, Any], int]
# What a backend keeps: rows and span events (by reference, until they are fitted).
Stored = Row | SpanEventRow | SpanEventRefLike
_SPAN_ID_MASK = (1 << 64) - 1
_TRACE_ID_MAX = (1 << 128) - 1


def check_kind(kind: object) -> str:
    """Return `kind` if it is a non-empty string, else raise naming it."""
    if not isinstance(kind, str):
        raise ArgumentTypeError(f"kind must be a non-empty string, got {type(kind).__name__} {kind!r}")
    if not kind:
        raise ArgumentValueError("kind must be a non-empty string")
    return kind


def copy_payload(payload: object) -> dict[str, Any]:
    """Return a shallow copy of `payload` as a plain dict; ``None`` gives ``{}``."""
    if type(payload) is dict:
        return payload.copy()
    if payload is None:
        return {}
    if isinstance(payload, Mapping):
        return dict(payload)
    raise ArgumentTypeError(f"payload must be a mapping or None, got {type(payload).__name__}")


def check_timestamp(timestamp: object) -> float:
    """Return `timestamp` if it is a finite number of seconds, else raise naming it."""
    if not is_number(timestamp):
        raise ArgumentTypeError(f"timestamp must be a number of seconds, got {type(timestamp).__name__}")
    if not math.isfinite(timestamp):
        raise ArgumentValueError(f"timestamp must be a finite number of seconds, got {timestamp!r}")
    return timestamp


def check_append(
    kind: object, payload: object, timestamp: object, trace_id: object, span_id: object, *, now: float
) -> Row:
    """Check the arguments of ``append`` and return them as a row, with a copy of the payload.

    A missing `timestamp` becomes `now`; the ids take their W3C form. Each field is tested for its
    usual type first, so that the common values cost no further call.

    Raises:
        ArgumentTypeError: If an argument has the wrong type.
        ArgumentValueError: If an argument has the right type but a wrong value.
    """
    if timestamp is None:
        timestamp = now
    elif not (type(timestamp) is float and -math.inf < timestamp < math.inf):
        timestamp = check_timestamp(timestamp)
    return (
        timestamp,
        kind if type(kind) is str and kind else check_kind(kind),
        payload.copy() if type(payload) is dict else copy_payload(payload),
        None if trace_id is None else check_trace_id(trace_id),
        None if span_id is None else check_span_id(span_id),
    )


def entry_row(entry: object, now: float) -> Row:
    """Check one entry (an `Entry` or a 5-tuple like it) and return its row, with a copy of the payload.

    Raises:
        ArgumentTypeError: If the entry or a field has the wrong type.
        ArgumentValueError: If a field has a wrong value.
    """
    if not isinstance(entry, tuple) or len(entry) != 5:
        raise ArgumentTypeError(f"expected an Entry or a 5-tuple like it, got {entry!r}")
    kind, payload, timestamp, trace_id, span_id = entry
    return check_append(kind, payload, timestamp, trace_id, span_id, now=now)


def check_entries(entries: object, now: float) -> list[Row]:
    """Check the entries given to ``extend`` and return their rows: all of them, or raise.

    Raises:
        ArgumentTypeError: If `entries` is not an iterable of 5-tuples, or a field has the wrong type,
            naming the entry by its index.
        ArgumentValueError: If a field has a wrong value, naming the entry by its index.
    """
    if isinstance(entries, (str, bytes, Mapping)) or not isinstance(entries, Iterable):
        raise ArgumentTypeError(f"entries must be an iterable of Entry tuples, got {type(entries).__name__}")
    rows: list[Row] = []
    for index, entry in enumerate(entries):
        try:
            rows.append(entry_row(entry, now))
        except (ArgumentTypeError, ArgumentValueError) as error:
            raise type(error)(f"entries[{index}]: {error}") from None
    return rows


def batch_rows(batch: list[BatchItem], now: float) -> tuple[list[Stored], Exception | None]:
    """Return what to store of a batch handed to ``write_batch``, and the error of its first bad item.

    A batch of span events by reference alone, what the span processor hands over, is kept as it is:
    the caller handed the list over, and each event is made into a row when it is read. Entries come
    from the capture side too, which hands their payload dicts over, so a well-formed one is stored
    without a copy; any other is checked and copied. A malformed item is left out, and named in the
    error, so that the rest is still stored.
    """
    if type(batch) is not list:
        batch = _as_list(batch)
    try:
        if set(map(len, batch)) <= {4}:  # only span events by reference (or nothing)
            return batch, None  # type: ignore[return-value]  # the 4-tuples are SpanEventRefs
    except TypeError:  # an item without a length: the loop below names it
        pass
    stored: list[Stored] = []
    error: Exception | None = None
    for index, item in enumerate(batch):
        try:
            stored.append(item if isinstance(item, tuple) and len(item) == 4 else _handed_over_row(item, now))
        except (ArgumentTypeError, ArgumentValueError) as problem:
            error = error or type(problem)(f"batch[{index}]: {problem}")
    return stored, error


def _as_list(batch: object) -> list[BatchItem]:
    if isinstance(batch, (str, bytes, Mapping)) or not isinstance(batch, Iterable):
        raise ArgumentTypeError(
            f"batch must be a list of Entry and SpanEventRef tuples, got {type(batch).__name__}"
        )
    return list(batch)


def _handed_over_row(item: object, now: float) -> Row:
    """Return the row of an entry handed over in a batch; its payload dict is kept, not copied."""
    if type(item) is tuple and len(item) == 5:
        kind, payload, timestamp, trace_id, span_id = item
        if (  # what the capture side sends, checked inline: it is on the application's thread
            type(kind) is str
            and kind
            and type(payload) is dict
            and (timestamp is None or (type(timestamp) is float and -math.inf < timestamp < math.inf))
            and (trace_id is None or (type(trace_id) is int and 0 <= trace_id < TRACE_ID_LIMIT))
            and (span_id is None or (type(span_id) is int and 0 <= span_id < SPAN_ID_LIMIT))
        ):
            return (
                now if timestamp is None else timestamp,
                kind,
                payload,
                None if trace_id is None else trace_hex(trace_id),
                None if span_id is None else span_hex(span_id),
            )
    return entry_row(item, now)


def fit_rows(rows: list[Stored], limits: Limits) -> tuple[list[int], int]:
    """Cut the rows' payloads to `limits`, in place; return what each row costs and how many values were cut.

    A span event by reference becomes a `SpanEventRow`, with its attributes cut where they must be; one
    that breaks the `SpanEventRef` shape stays as it was handed over, to be read as a marked event.
    Never raises.
    """
    sizes: list[int] = []
    cut = 0
    charge, measure = limits.charge, limits.measure  # `limits.fit`, without a call per row
    plain = PLAIN_SPAN_EVENTS
    payload: Any
    for index, row in enumerate(rows):
        if len(row) == 5:
            size = charge(row[2])
            if size < 0:
                payload, size, cuts = measure(row[2])
                if cuts:
                    rows[index] = (row[0], row[1], payload, row[3], row[4])
                    cut += cuts
        else:
            try:
                ref: SpanEventRefLike = row  # type: ignore[assignment]  # fresh from `batch_rows`
                time_ns, event, trace_id, span_id = ref
                if not (0 <= span_id <= _SPAN_ID_MASK and 0 <= trace_id <= _TRACE_ID_MAX):
                    raise ArgumentValueError("span event ids out of range")  # kept as handed over
                ids = trace_id << 64 | span_id  # raises for ids that are not ints, before a cut is counted
                fields: Any = event
                if type(event) in plain:
                    name, attributes = fields._name, fields._attributes
                else:
                    name, attributes = fields.name, fields.attributes
                try:  # as `span_event_attributes`, without a call
                    payload = attributes._dict if attributes._immutable is True else None
                except AttributeError:
                    payload = None
                if type(payload) is not dict:
                    payload = attributes if type(attributes) is dict else copy_payload(attributes)
                size = charge(payload)
                if size < 0:
                    payload, size, cuts = measure(payload)
                    cut += cuts
                # Kept as one flat tuple, without the SDK's objects: smaller, and less for Python's
                # garbage collector to look at, again and again, while the event is resident.
                rows[index] = (time_ns, name, payload, ids)  # a SpanEventRow
            except Exception:  # a reference that breaks the shape: readers see it marked
                size = EVENT_BYTES
        sizes.append(size)
    return sizes, cut


def span_event_attributes(attributes: object) -> object:
    """Return a span event's attributes in the form quickest to read: the SDK's own dict where it has one.

    The SDK keeps a span event's attributes in a `BoundedAttributes`, immutable once the event is
    recorded, whose mapping methods are written in Python and each take a lock: reading a few
    attributes through them costs a microsecond or more. Its items live in a plain dict, which is
    read directly when the attributes are immutable; anything else is returned as it is.
    """
    try:
        inner = attributes._dict if attributes._immutable is True else None  # type: ignore[attr-defined]
    except AttributeError:
        return attributes
    return inner if type(inner) is dict else attributes


def span_event_row(stored: SpanEventRow | SpanEventRefLike) -> Row:
    """Return the row of a span event as stored: a copy of its attributes, hex ids.

    Called by readers. A reference that breaks the `SpanEventRef` shape gives a row that says so,
    rather than an error that would stop every reader at this event.
    """
    fields: tuple[Any, ...] = stored
    try:
        time_ns, name, attributes, ids = fields
        if type(name) is str:  # as `fit_rows` keeps it
            trace_id, span_id = ids >> 64, ids & _SPAN_ID_MASK
        else:  # a reference `fit_rows` could not read: it fails here, in the same way
            trace_id, span_id = attributes, ids
            name, attributes = name.name, span_event_attributes(name.attributes)
        return (
            time_ns / 1_000_000_000,  # int / int rounds once, exactly
            check_kind(name),
            copy_payload(attributes),
            trace_hex(trace_id),
            span_hex(span_id),
        )
    except Exception as error:  # a writer broke the contract: keep the reader going
        return (0.0, "otel_eventlog.malformed_span_event", {"error": str(error)}, None, None)


def check_cursor(since: object, limit: object) -> None:
    """Raise if `since` or `limit` is neither ``None`` nor a non-negative integer."""
    for name, value in (("since", since), ("limit", limit)):
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise ArgumentTypeError(f"{name} must be a non-negative integer or None, got {value!r}")
        if value < 0:
            raise ArgumentValueError(f"{name} must be a non-negative integer or None, got {value}")


def event_filter(
    kinds: str | Iterable[str] | None, trace_id: str | int | None
) -> Callable[[Event], bool] | None:
    """Return a predicate for the events a reader asked for, or ``None`` when it asked for all.

    Readers that ask for the same get the same predicate (within a cache), so that a log can tell
    that two reads ask for the same.
    """
    match_kind = None if kinds is None else kind_matcher(kinds)
    trace = None if trace_id is None else check_trace_id(trace_id)
    return _event_filter(match_kind, trace)


@functools.lru_cache(maxsize=256)
def _event_filter(match_kind: KindMatcher | None, trace: str | None) -> Callable[[Event], bool] | None:
    if match_kind is None:
        if trace is None:
            return None
        return lambda event: event.trace_id == trace
    if trace is None:
        return lambda event: match_kind(event.kind)
    return lambda event: event.trace_id == trace and match_kind(event.kind)


def check_redaction(redaction: object) -> Redaction:
    """Return `redaction` if it is a `Redaction`, else raise naming what it is."""
    if not isinstance(redaction, Redaction):
        raise ArgumentTypeError(f"redaction must be a Redaction or None, got {type(redaction).__name__}")
    return redaction


def bound(name: str, value: object, default: float, *types: type) -> float:
    """Return `value` as a positive bound; ``None`` or non-positive values give `default`."""
    if value is None:
        return default
    if not is_number(value) or not isinstance(value, types):
        expected = "an integer" if types == (int,) else "a number of seconds"
        raise ArgumentTypeError(f"{name} must be {expected} or None, got {type(value).__name__} {value!r}")
    if math.isnan(value):
        raise ArgumentValueError(f"{name} must be a number, got NaN")
    if value <= 0:
        _logger.warning("%s=%r is not positive; using the default, %r", name, value, default)
        return default
    return value


def check_clock(now: object) -> Callable[[], float]:
    """Return `now` if it is callable (a clock returning seconds since the epoch), else raise naming it."""
    if not callable(now):
        raise ArgumentTypeError(f"now must be a callable returning seconds, got {now!r}")
    return now


class Bounded:
    """The bounds of a storing backend, checked once by `_set_bounds`, and the properties that report them.

    Non-positive values, and ``None``, mean the defaults (the former with a logged warning).
    """

    __slots__ = ("_limits", "_max_bytes", "_max_entries", "_ttl_seconds")

    DEFAULT_TTL_SECONDS: ClassVar[float] = _defaults.TTL_SECONDS
    DEFAULT_MAX_ENTRIES: ClassVar[int] = _defaults.MAX_ENTRIES
    DEFAULT_MAX_BYTES: ClassVar[int] = _defaults.MAX_BYTES
    DEFAULT_MAX_VALUE_BYTES: ClassVar[int] = _defaults.MAX_VALUE_BYTES

    def _set_bounds(
        self,
        ttl_seconds: object,
        max_entries: object,
        max_bytes: object,
        max_value_bytes: object,
        redaction: Redaction,
    ) -> None:
        """Check the bounds and keep them; `redaction` is the log's, which values are cut after.

        Raises:
            ArgumentTypeError: If `ttl_seconds` is not a number, or another bound not an integer.
            ArgumentValueError: If `ttl_seconds` is NaN.
        """
        self._ttl_seconds = bound("ttl_seconds", ttl_seconds, self.DEFAULT_TTL_SECONDS, int, float)
        self._max_entries = int(bound("max_entries", max_entries, self.DEFAULT_MAX_ENTRIES, int))
        self._max_bytes = int(bound("max_bytes", max_bytes, self.DEFAULT_MAX_BYTES, int))
        value_bytes = int(bound("max_value_bytes", max_value_bytes, self.DEFAULT_MAX_VALUE_BYTES, int))
        # A value about to be cut has the patterns applied first: a secret across the cut is found whole.
        self._limits = Limits(
            value_bytes, self._max_bytes, redaction.redact_text if redaction.rewrites_text else None
        )

    @property
    def ttl_seconds(self) -> float:
        """How long an event stays resident, in seconds."""
        return self._ttl_seconds

    @property
    def max_entries(self) -> int:
        """How many events stay resident at most."""
        return self._max_entries

    @property
    def max_bytes(self) -> int:
        """What the resident events may weigh together, in bytes, as the backend measures them."""
        return self._max_bytes

    @property
    def max_value_bytes(self) -> int:
        """How many bytes (UTF-8) of one string or bytes value are kept."""
        return self._limits.max_value_bytes
