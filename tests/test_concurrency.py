"""Stress tests: many writer threads, and readers following cursors while they write."""

from __future__ import annotations

import threading

from otel_eventlog import InMemoryEventLog

WRITERS = 8
APPENDS = 200
TOTAL = WRITERS * APPENDS


def _run_writers(log: InMemoryEventLog, start: threading.Barrier) -> list[list[int]]:
    returned: list[list[int]] = [[] for _ in range(WRITERS)]

    def write(n: int) -> None:
        start.wait()
        for i in range(APPENDS):
            returned[n].append(log.append("tick", {"writer": n, "i": i}).id)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return returned


def test_concurrent_appends_never_share_an_id() -> None:
    """Eight threads appending at once get 1,600 distinct ids, and a read returns them in order."""
    log = InMemoryEventLog(max_entries=TOTAL)
    returned = _run_writers(log, threading.Barrier(WRITERS))
    all_ids = sorted(i for ids in returned for i in ids)
    assert all_ids == list(range(1, TOTAL + 1))
    for ids in returned:
        assert ids == sorted(ids)  # each writer sees its own ids increase
    events = log.query()
    assert [e.id for e in events] == list(range(1, TOTAL + 1))
    # Each writer's events are stored in the order it appended them.
    for n in range(WRITERS):
        assert [e.payload["i"] for e in events if e.payload["writer"] == n] == list(range(APPENDS))


def _follow(log: InMemoryEventLog, start: threading.Barrier, seen: list[int], missed: list[int]) -> None:
    start.wait()
    cursor = 0  # from the very first event, so that anything evicted before it counts as missed
    while cursor < TOTAL:
        page = log.read(since=cursor, limit=37)
        seen.extend(e.id for e in page.events)
        missed.append(page.missed)
        cursor = page.cursor


def _run_readers_and_writers(log: InMemoryEventLog, readers: int) -> list[tuple[list[int], int]]:
    start = threading.Barrier(WRITERS + readers)
    results: list[tuple[list[int], list[int]]] = [([], []) for _ in range(readers)]
    threads = [threading.Thread(target=_follow, args=(log, start, *results[n])) for n in range(readers)]
    for thread in threads:
        thread.start()
    _run_writers(log, start)
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    return [(seen, sum(missed)) for seen, missed in results]


def test_readers_following_cursors_see_each_event_once_in_order() -> None:
    """With room for everything, each concurrent reader sees every event exactly once, in order."""
    log = InMemoryEventLog(max_entries=TOTAL)
    for seen, missed in _run_readers_and_writers(log, readers=4):
        assert seen == list(range(1, TOTAL + 1))
        assert missed == 0


def test_readers_behind_eviction_see_each_resident_event_once_and_count_the_rest() -> None:
    """With a small ring, each reader sees resident events once, in order, and is told of the others."""
    log = InMemoryEventLog(max_entries=50)
    for seen, missed in _run_readers_and_writers(log, readers=4):
        assert seen == sorted(set(seen))  # ascending, no duplicates
        assert seen[-1] == TOTAL
        assert len(seen) + missed == TOTAL  # every event was either seen or reported missed
