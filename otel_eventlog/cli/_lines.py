"""One readable line per event, for terminals: what ``otel-eventlog demo`` and ``tail`` print."""

from __future__ import annotations

import json
import time
from typing import Any

from otel_eventlog.activity import encode_json
from otel_eventlog.event import Event

__all__ = ["display_name", "event_json", "event_line"]


def event_line(event: Event) -> str:
    """Return `event` as one line: id, local time, kind, payload fields and the trace id's start.

    Values are shown whole: a plain word as it is, other text quoted as JSON (escapes keep it on one
    line), anything else as compact JSON.
    """
    try:
        when = time.strftime("%H:%M:%S", time.localtime(event.timestamp))
        when += f".{int(event.timestamp * 1000) % 1000:03d}"
    except (OverflowError, OSError, ValueError):  # a time no clock can show: as it was sent
        when = repr(event.timestamp)
    fields = " ".join(
        f"{display_name(str(key))}={_shown(value)}"
        for key, value in event.payload.items()
        if key != "message"
    )
    trace = f"trace={event.trace_id[:8]}" if event.trace_id else ""
    return f"#{event.id:<4} {when}  {display_name(event.kind):<16} {fields:<40} {trace}".rstrip()


def display_name(name: str) -> str:
    """Return a kind or key as it is, or quoted with escapes if it holds what would break the line.

    Whatever a terminal could act on (control characters, C1 controls, bidirectional overrides, line
    and paragraph separators) is escaped, never written.
    """
    return name if name.isprintable() else _visible(json.dumps(name, ensure_ascii=False))


def _shown(value: Any) -> str:
    if isinstance(value, str):
        plain = value and value.isprintable() and not any(c.isspace() or c in '"=' for c in value)
        return (
            value if plain and not _reads_as_json(value) else _visible(json.dumps(value, ensure_ascii=False))
        )
    return _visible(encode_json(value).decode())


def _visible(text: str) -> str:
    """Return JSON `text` with each character that is not printable written as a JSON escape."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(character: str) -> str:
    code = ord(character)
    if code > 0xFFFF:  # as JSON writes it: a surrogate pair
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def event_json(event: Event) -> str:
    """Return `event` as one line of JSON: its wire form, as ``/activity`` sends it."""
    return encode_json(event.to_dict()).decode()


def _reads_as_json(text: str) -> bool:
    """Tell whether `text` shown bare would read as another JSON value: ``123``, ``true``, ``null``."""
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
