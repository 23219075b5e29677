"""Argument checks shared by the backends, so that they all reject bad input with the same words."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Event as SpanEvent

from otel_eventlog._kinds import kind_matcher
from otel_eventlog.event import Event

_TRACE_ID = re.compile(r"[0-9a-f]{32}").fullmatch
_SPAN_ID = re.compile(r"[0-9a-f]{16}").fullmatch


def check_append(kind: object, payload: object, timestamp: object, trace_id: object, span_id: object) -> Row:
    """Check the arguments of ``append`` and return them as a row, ready to store but for the time.

    The row holds a copy of the payload, the timestamp (``None`` when not given) and the ids in their
    W3C form. Called on every append, so the common cases cost a few type checks.
    """
    if type(kind) is not str or not kind:
        check_kind(kind)
    data = payload.copy() if type(payload) is dict else copy_payload(payload)
    if timestamp is not None and not (type(timestamp) is float and math.isfinite(timestamp)):
        timestamp = check_timestamp(timestamp)
    if trace_id is not None:
        trace_id = check_trace_id(trace_id)
    if span_id is not None:
        span_id = check_span_id(span_id)
    return timestamp, kind, data, trace_id, span_id  # type: ignore[return-value]  # checked above


def check_kind(kind: object) -> str:
    """Return `kind` if it is a non-empty string, else raise naming it."""
    if isinstance(kind, str):
        if kind:
            return kind
        raise ValueError("kind must be a non-empty string")
    raise TypeError(f"kind must be a non-empty string, got {type(kind).__name__} {kind!r}")


# Payload types whose copy() is one C-level copy into a plain dict. OpenTelemetry's BoundedAttributes
# (what span events and log records carry) is one: reading it as a Mapping would take its lock per key.
_COPIED_WHOLE = (dict, BoundedAttributes)


def copy_payload(payload: object) -> dict[str, Any]:
    """Return a shallow copy of `payload` as a plain dict; ``None`` gives ``{}``."""
    if payload is None:
        return {}
    if type(payload) in _COPIED_WHOLE:
        return payload.copy()  # type: ignore[no-any-return,attr-defined]  # a plain dict
    if isinstance(payload, Mapping):
        return dict(payload)
    raise TypeError(f"payload must be a mapping or None, got {type(payload).__name__}")


def check_timestamp(timestamp: object) -> float:
    """Return `timestamp` if it is a finite number of seconds, else raise naming it."""
    if isinstance(timestamp, (int, float)) and not isinstance(timestamp, bool):
        if math.isfinite(timestamp):
            return timestamp
        raise ValueError(f"timestamp must be a finite number of seconds, got {timestamp!r}")
    raise TypeError(f"timestamp must be a number of seconds, got {type(timestamp).__name__}")


# Hex ids seen valid lately, one set per kind of id. A span's events all carry the same two ids, so
# most checks are one lookup.
_known_trace_ids: set[str] = set()
_known_span_ids: set[str] = set()
_KNOWN_IDS_KEPT = 4096


def check_trace_id(trace_id: object) -> str:
    """Return the W3C form of a trace id given as 32 lower-case hex digits or as OpenTelemetry's int.

    Raises:
        TypeError: If `trace_id` is neither a string nor an int.
        ValueError: If it is a malformed string or an int out of range.
    """
    return _check_id(trace_id, _known_trace_ids, _TRACE_ID, "trace_id", 32)


def check_span_id(span_id: object) -> str:
    """Return the W3C form of a span id given as 16 lower-case hex digits or as OpenTelemetry's int.

    Raises:
        TypeError: If `span_id` is neither a string nor an int.
        ValueError: If it is a malformed string or an int out of range.
    """
    return _check_id(span_id, _known_span_ids, _SPAN_ID, "span_id", 16)


def _check_id(value: object, known: set[str], match: Callable[[str], object], name: str, digits: int) -> str:
    if type(value) is str and value in known:
        return value
    if isinstance(value, str):
        if not match(value):
            raise ValueError(f"{name} must be {digits} lower-case hex digits, got {value!r}")
        text = str(value)  # a plain str, also when given a subclass
        if len(known) >= _KNOWN_IDS_KEPT:
            known.clear()
        known.add(text)
        return text
    if type(value) is int:
        if 0 <= value < 1 << (4 * digits):
            return value.to_bytes(digits // 2, "big").hex()
        raise ValueError(f"{name} must be an int of at most {4 * digits} bits, got {value!r}")
    raise TypeError(
        f"{name} must be a string of {digits} lower-case hex digits or an int, "
        f"got {type(value).__name__} {value!r}"
    )


# An event as the backends store it, but for its id: the fields of `Event` after the first.
Row = tuple[float, str, dict[str, Any], "str | None", "str | None"]

# A span event stored by reference: its time in nanoseconds, the SDK's event itself (immutable), and
# the span's ids as ints. EventLogSpanProcessor hands these to the built-in backends, having checked
# that the event's name is a non-empty str and its time an int; `span_event_row` makes the row when
# the event is read.
SpanEventRef = tuple[int, SpanEvent, int, int]


def span_event_row(ref: SpanEventRef) -> Row:
    """Return the row of a span event stored by reference."""
    time_ns, event, trace_id, span_id = ref
    return (
        time_ns / 1_000_000_000,  # int / int rounds once, exactly
        event.name,
        copy_payload(event.attributes),
        trace_id.to_bytes(16, "big").hex(),
        span_id.to_bytes(8, "big").hex(),
    )


def check_entries(entries: object, now: float) -> list[Row]:
    """Check the entries given to ``extend`` and return them as rows, ready to store.

    Payloads are copied, missing timestamps set to `now` and ids put in their W3C form. Checks every
    entry before returning, so that a bad entry anywhere stores nothing.

    Raises:
        TypeError: If `entries` is not an iterable of 5-tuples, or a field has the wrong type, naming
            the entry by its index.
        ValueError: If a field has a wrong value, naming the entry by its index.
    """
    if type(entries) is not list and (  # a list is the common case, and the ABC checks cost more than it
        isinstance(entries, (str, bytes, Mapping)) or not isinstance(entries, Iterable)
    ):
        raise TypeError(f"entries must be an iterable of Entry tuples, got {type(entries).__name__}")
    rows: list[Row] = []
    inf, copied_whole = math.inf, _COPIED_WHOLE
    # The ids last checked, as given and in W3C form: consecutive entries often share them.
    trace_given: object = None
    span_given: object = None
    trace_id: str | None = None
    span_id: str | None = None
    index = 0
    try:
        for index, entry in enumerate(entries):  # noqa: B007  # `index` names the bad entry below
            if not isinstance(entry, tuple) or len(entry) != 5:
                raise TypeError(f"expected an Entry or a 5-tuple like it, got {entry!r}")
            kind, payload, timestamp, given_trace, given_span = entry
            if given_trace is not trace_given:
                trace_id = None if given_trace is None else check_trace_id(given_trace)
                trace_given = given_trace
            if given_span is not span_given:
                span_id = None if given_span is None else check_span_id(given_span)
                span_given = given_span
            if (  # what the span processor sends, checked inline
                type(kind) is str
                and kind
                and type(payload) in copied_whole
                and type(timestamp) is float
                and -inf < timestamp < inf
            ):
                rows.append((timestamp, kind, payload.copy(), trace_id, span_id))
                continue
            when, kind, data, _, _ = check_append(kind, payload, timestamp, None, None)
            rows.append((now if when is None else when, kind, data, trace_id, span_id))
    except (TypeError, ValueError) as error:
        raise type(error)(f"entries[{index}]: {error}") from None
    return rows


def check_cursor(since: object, limit: object) -> None:
    """Raise if `since` or `limit` is neither ``None`` nor a non-negative integer."""
    for name, value in (("since", since), ("limit", limit)):
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be a non-negative integer or None, got {value!r}")
        if value < 0:
            raise ValueError(f"{name} must be a non-negative integer or None, got {value}")


def event_filter(
    kinds: str | Iterable[str] | None, trace_id: str | int | None
) -> Callable[[Event], bool] | None:
    """Return a predicate for the events a reader asked for, or ``None`` when it asked for all."""
    match_kind = None if kinds is None else kind_matcher(kinds)
    trace = None if trace_id is None else check_trace_id(trace_id)
    if match_kind is None:
        if trace is None:
            return None
        return lambda event: event.trace_id == trace
    if trace is None:
        return lambda event: match_kind(event.kind)
    return lambda event: event.trace_id == trace and match_kind(event.kind)
