"""Append a few agent events to an in-memory event log and read them back by cursor.

Run it with ``python examples/quickstart.py``. It shows the reader's side of the contract: a cursor that
never repeats an event, a kind filter, and the ``missed`` count a reader gets when it fell behind
eviction.
"""

from __future__ import annotations

import json

from otel_eventlog import Page, load_config

CONFIG = """
observability:
  event_log:
    backend: memory
    ttl_seconds: 600
    max_entries: 8
"""


def show(title: str, page: Page) -> None:
    print(f"\n== {title}: cursor={page.cursor} missed={page.missed} latest_id={page.latest_id}")
    for event in page.events:
        print(f"  #{event.id:<3} {event.kind:<15} {json.dumps(event.payload)}")


def main() -> None:
    log = load_config(CONFIG).event_log.create_event_log()
    print(f"event log: {log!r}")

    for turn in (1, 2):
        log.append("turn.started", {"session": "s-1", "turn": turn})
        log.append("tool.called", {"session": "s-1", "turn": turn, "tool": "search"})
        log.append("turn.completed", {"session": "s-1", "turn": turn, "tokens": 120 * turn})

    # A reader polls by cursor: each page says where to continue from.
    first = log.read(since=0, limit=4)
    show("read(since=0, limit=4)", first)
    show(f"read(since={first.cursor})", log.read(since=first.cursor))

    # Readers can ask for some kinds only, by name or shell-style pattern.
    show("read(kinds='turn.*')", log.read(kinds="turn.*"))

    # A reader that falls behind eviction (max_entries=8 here) is told how much it missed.
    for turn in range(3, 6):
        log.append("turn.started", {"session": "s-1", "turn": turn})
    show("after 3 more appends, read(since=0) of a ring of 8", log.read(since=0))
    print("\nthe wire format of one event:", json.dumps(log.query(limit=1)[0].to_dict()))


if __name__ == "__main__":
    main()
