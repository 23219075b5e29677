"""One readable line per event, for terminals: what ``otel-eventlog demo`` and ``tail`` print."""

from __future__ import annotations

import time
from typing import Any

from otel_eventlog.event import Event

__all__ = ["event_line"]


def event_line(event: Event) -> str:
    """Return `event` as one line: id, local time, kind, payload fields and the trace id's start."""
    clock = time.strftime("%H:%M:%S", time.localtime(event.timestamp))
    millis = int(event.timestamp * 1000) % 1000
    fields = " ".join(f"{key}={_short(value)}" for key, value in event.payload.items() if key != "message")
    trace = f"trace={event.trace_id[:8]}" if event.trace_id else ""
    return f"#{event.id:<4} {clock}.{millis:03d}  {event.kind:<16} {fields:<40} {trace}".rstrip()


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 24 else text[:21] + "..."
