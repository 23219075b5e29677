"""Causal order across the capture paths: a log record inside a span lands after what the span recorded.

Log records reach the log at once, on the thread that logs them; span events reach it when the span
processor moves them. So that a reader following ids never sees a tool called before its turn started,
the logging paths call `before_log_event` first: each `EventLogSpanProcessor` writing to the same log
then moves what the record's span and its open ancestors recorded so far (and the spans already ended),
and only then is the record appended.

The same call keeps an event that arrives both ways (OpenTelemetry's event-to-span-event bridge adds a
log record naming an event to the current span as a span event) from landing twice.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Protocol

__all__ = ["before_log_event", "follow", "unfollow"]


class SpanFollower(Protocol):
    """What a span processor offers the logging paths (see `EventLogSpanProcessor`)."""

    def writes_to(self, log: object) -> bool:
        """Tell whether this follower writes into `log`."""
        ...  # pragma: no cover - a protocol

    def before_log_event(self, trace_id: int, span_id: int, name: str, time_ns: int) -> bool:
        """Move what the span and its open ancestors recorded; False if the span holds this very event."""
        ...  # pragma: no cover - a protocol


class _Followers:
    """The followers, weakly, as a tuple replaced whole: the logging threads read it without a lock."""

    def __init__(self) -> None:
        self.refs: tuple[weakref.ref[SpanFollower], ...] = ()
        self.change = threading.Lock()


_followers = _Followers()


def _after_fork_in_child() -> None:
    _followers.change = threading.Lock()  # another thread may have held it at the fork


os.register_at_fork(after_in_child=_after_fork_in_child)  # as otel_eventlog._forks does


def follow(follower: SpanFollower) -> None:
    """Have the logging paths settle `follower`'s spans before they append a log record."""
    with _followers.change:
        alive = tuple(ref for ref in _followers.refs if ref() is not None)
        _followers.refs = (*alive, weakref.ref(follower))


def unfollow(follower: SpanFollower) -> None:
    """Undo `follow` (when the span processor shuts down)."""
    with _followers.change:
        _followers.refs = tuple(ref for ref in _followers.refs if ref() not in (None, follower))


def before_log_event(log: object, trace_id: int, span_id: int, name: str, time_ns: int) -> bool:
    """Make way, in `log`, for a log record naming event `name` inside span `span_id`.

    Called by the logging paths before they append the record, on the logging thread. Returns False when
    the event is already in `log` as an event of that span (bridged): then the record must not land too.
    """
    first = True
    for ref in _followers.refs:
        follower = ref()
        if follower is not None and follower.writes_to(log):
            first = follower.before_log_event(trace_id, span_id, name, time_ns) and first
    return first
