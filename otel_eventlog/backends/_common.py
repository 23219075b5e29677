"""Argument checks shared by the backends, so that they all reject bad input with the same words."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from otel_eventlog._kinds import kind_matcher
from otel_eventlog.event import Event

_TRACE_ID = re.compile(r"[0-9a-f]{32}").fullmatch
_SPAN_ID = re.compile(r"[0-9a-f]{16}").fullmatch


def check_append(
    kind: object, payload: object, timestamp: object, trace_id: object, span_id: object
) -> tuple[dict[str, Any], float | None]:
    """Check the arguments of ``append`` and return the payload's copy and the timestamp.

    Called on every append, so the common cases cost a few type checks.
    """
    if type(kind) is not str or not kind:
        check_kind(kind)
    data = payload.copy() if type(payload) is dict else copy_payload(payload)
    if timestamp is not None and not (type(timestamp) is float and math.isfinite(timestamp)):
        timestamp = check_timestamp(timestamp)
    if trace_id is not None:
        check_trace_id(trace_id)
    if span_id is not None:
        check_span_id(span_id)
    return data, timestamp


def check_kind(kind: object) -> str:
    """Return `kind` if it is a non-empty string, else raise naming it."""
    if isinstance(kind, str):
        if kind:
            return kind
        raise ValueError("kind must be a non-empty string")
    raise TypeError(f"kind must be a non-empty string, got {type(kind).__name__} {kind!r}")


def copy_payload(payload: object) -> dict[str, Any]:
    """Return a shallow copy of `payload` as a plain dict; ``None`` gives ``{}``."""
    if payload is None:
        return {}
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


# Ids seen valid lately. A span's events all carry the same two ids, so most checks are one lookup.
_valid_ids: set[str] = set()
_VALID_IDS_KEPT = 4096


def check_trace_id(trace_id: object) -> str:
    """Return `trace_id` if it is 32 lower-case hex digits (W3C), else raise naming it."""
    return _check_id(trace_id, 32, _TRACE_ID, "trace_id")


def check_span_id(span_id: object) -> str:
    """Return `span_id` if it is 16 lower-case hex digits (W3C), else raise naming it."""
    return _check_id(span_id, 16, _SPAN_ID, "span_id")


def _check_id(value: object, digits: int, match: Callable[[str], object], name: str) -> str:
    if type(value) is str and len(value) == digits and value in _valid_ids:
        return value
    if isinstance(value, str) and match(value):
        if len(_valid_ids) >= _VALID_IDS_KEPT:
            _valid_ids.clear()
        _valid_ids.add(value)
        return value
    raise ValueError(f"{name} must be {digits} lower-case hex digits, got {value!r}")


def check_cursor(since: object, limit: object) -> None:
    """Raise if `since` or `limit` is neither ``None`` nor a non-negative integer."""
    for name, value in (("since", since), ("limit", limit)):
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be a non-negative integer or None, got {value!r}")
        if value < 0:
            raise ValueError(f"{name} must be a non-negative integer or None, got {value}")


def event_filter(kinds: str | Iterable[str] | None, trace_id: str | None) -> Callable[[Event], bool] | None:
    """Return a predicate for the events a reader asked for, or ``None`` when it asked for all."""
    match_kind = None if kinds is None else kind_matcher(kinds)
    if trace_id is not None:
        check_trace_id(trace_id)
    if match_kind is None:
        if trace_id is None:
            return None
        return lambda event: event.trace_id == trace_id
    if trace_id is None:
        return lambda event: match_kind(event.kind)
    return lambda event: event.trace_id == trace_id and match_kind(event.kind)
