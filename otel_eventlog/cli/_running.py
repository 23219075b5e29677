"""What is running now, from an Activity feed's ``span.started`` / ``span.ended`` entries, for terminals.

`Running` keeps the spans that have started and not ended, with the latest event of each (a child's
event counts for its running ancestors too), and renders them grouped by trace, each trace titled by
its session when an event names one, its spans as a tree: what ``otel-eventlog tail --running``
prints, the terminal form of the Activity page's *Running now* panel.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from otel_eventlog.cli._lines import display_name
from otel_eventlog.event import Event

__all__ = ["MAX_SPANS", "Running"]

#: The payload fields that name an agent session, in the order they are looked for.
SESSION_KEYS = ("session", "session.id", "session_id", "gen_ai.conversation.id", "conversation.id")
#: How many ended spans are remembered, so that a late ``span.started`` does not bring one back.
_ENDED_KEPT = 20_000
#: How far up its ancestors an event's news is passed.
_MAX_DEPTH = 64
#: The most spans a snapshot lists.
MAX_SPANS = 200


@dataclass
class _Span:
    name: str
    trace: str
    parent: str | None
    started: float
    latest: str | None = None
    latest_at: float = 0.0


class Running:
    """The running spans of one log, updated event by event."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._spans: dict[str, _Span] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._sessions: dict[str, str] = {}  # trace id -> the session its events name
        #: Whether the log holds span lifecycle entries at all.
        self.lifecycle = False
        #: Whether anything shown changed since `changed` was last cleared.
        self.changed = True

    def clear(self) -> None:
        """Forget everything: the log began again."""
        self._spans.clear()
        self._ended.clear()
        self._sessions.clear()
        self.lifecycle = False
        self.changed = True

    def track(self, event: Event) -> None:
        """Take `event` into account."""
        span_id = event.span_id
        if span_id is None:
            return
        if event.kind == "span.started":
            self.lifecycle = True
            if span_id not in self._spans and span_id not in self._ended:
                parent = event.payload.get("parent_span_id")
                self._spans[span_id] = _Span(
                    str(event.payload.get("name", "span")),
                    event.trace_id or "",
                    parent if isinstance(parent, str) else None,
                    event.timestamp,
                )
                self.changed = True
        elif event.kind == "span.ended":
            self.lifecycle = True
            self.changed |= self._spans.pop(span_id, None) is not None
            self._ended[span_id] = None
            if len(self._ended) > _ENDED_KEPT:
                self._ended.popitem(last=False)
        else:
            span = self._spans.get(span_id)
            if span is not None and span.trace not in self._sessions:
                session = _session(event.payload)
                if session is not None:
                    self._sessions[span.trace] = session
                    self.changed = True
            for _ in range(_MAX_DEPTH):  # the news of a span is its running ancestors' news too
                if span is None:
                    break
                if event.timestamp >= span.latest_at:
                    span.latest, span.latest_at = event.kind, event.timestamp
                    self.changed = True
                span = self._spans.get(span.parent) if span.parent else None

    def lines(self, height: int | None = None) -> list[str]:
        """Return the running spans as lines: a title, then each trace and its spans as a tree.

        At most `height` lines (and never more than `MAX_SPANS` spans); a last line says how many
        spans did not fit.
        """
        now = self._clock()
        clock = time.strftime("%H:%M:%S", time.localtime(now))
        if not self.lifecycle:
            return [
                f"# running now, {clock}: the log holds no span.started / span.ended entries "
                "(set capture.span_lifecycle: true, or OTEL_EVENTLOG_SPAN_LIFECYCLE=true)"
            ]
        traces: dict[str, list[str]] = {}
        children: dict[str, list[str]] = {}
        for span_id, span in sorted(self._spans.items(), key=lambda item: item[1].started):
            traces.setdefault(span.trace, []).append(span_id)
            if span.parent in self._spans:
                children.setdefault(span.parent, []).append(span_id)
        self._sessions = {trace: name for trace, name in self._sessions.items() if trace in traces}
        count = len(self._spans)
        title = f"# running now, {clock}: "
        if not count:
            return [title + "nothing"]
        lines = [title + f"{count} span{'s' * (count != 1)} in {len(traces)} trace{'s' * (len(traces) != 1)}"]
        room = max(2, min(MAX_SPANS + len(traces), (height or 10**9) - 2))  # the title, and the "more" line
        shown = 0
        for trace, span_ids in traces.items():
            if len(lines) + 1 >= room:
                break
            session = self._sessions.get(trace)
            heading = f"trace {trace[:8]}" if trace else "no trace"
            lines.append(heading + (f"  session {display_name(session)}" if session else ""))
            roots = [s for s in span_ids if self._spans[s].parent not in self._spans]
            # Spans whose parents name each other in a ring have no root: each is shown as one.
            for line in self._tree([*roots, *span_ids], children, now):
                if len(lines) >= room:
                    break
                lines.append(line)
                shown += 1
        if shown < count:
            lines.append(f"... and {count - shown} more span{'s' * (count - shown != 1)}")
        return lines

    def _tree(self, roots: list[str], children: dict[str, list[str]], now: float) -> Iterator[str]:
        visited: set[str] = set()
        stack = [(span_id, 1) for span_id in reversed(roots)]
        while stack:
            span_id, level = stack.pop()
            if span_id in visited:
                continue
            visited.add(span_id)
            span = self._spans[span_id]
            name = ("  " * level + display_name(span.name))[:40]
            latest = (
                f"  latest {display_name(span.latest)}, {_age(now - span.latest_at)} ago"
                if span.latest
                else ""
            )
            yield f"{name:<40} {_age(now - span.started):>8}{latest}"
            ordered = reversed(children.get(span_id, ()))  # the oldest child first, off the stack
            stack.extend((child, level + 1) for child in ordered if child not in visited)


def _session(payload: dict[str, Any]) -> str | None:
    for key in SESSION_KEYS:
        value = payload.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
    return None


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"
