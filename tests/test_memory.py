"""Tests for `InMemoryEventLog`: the event log contract on the embedded default backend."""

from __future__ import annotations

import logging
import math
import random
import types
from collections.abc import Mapping
from typing import Any

import pytest
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import TracerProvider

from otel_eventlog import Entry, Event, InMemoryEventLog
from otel_eventlog.event import PLAIN_SPAN_EVENTS, SpanEventRef
from tests.helpers import ManualClock

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"


def ids(events: list[Event] | tuple[Event, ...]) -> list[int]:
    return [event.id for event in events]


def filled(count: int, **kwargs: object) -> InMemoryEventLog:
    log = InMemoryEventLog(**kwargs)  # type: ignore[arg-type]
    for n in range(count):
        log.append("tick", {"n": n})
    return log


# append


def test_ids_start_at_one_and_increase_by_one() -> None:
    """The first append gets id 1 and each later one the next integer."""
    log = InMemoryEventLog()
    assert [log.append("tick").id for _ in range(5)] == [1, 2, 3, 4, 5]


def test_append_returns_the_stored_event() -> None:
    """The event that append returns is the one a reader later gets."""
    log = InMemoryEventLog()
    event = log.append("turn.started", {"turn": 1})
    assert log.query() == [event]
    assert (event.kind, event.payload) == ("turn.started", {"turn": 1})


def test_omitted_payload_is_an_empty_dict() -> None:
    """An append without a payload stores an empty dict."""
    assert InMemoryEventLog().append("tick").payload == {}


def test_stored_payload_is_a_copy() -> None:
    """Mutating the caller's dict after append does not rewrite history."""
    log = InMemoryEventLog()
    payload = {"turn": 1}
    log.append("turn.started", payload)
    payload["turn"] = 2
    assert log.query()[0].payload == {"turn": 1}


def test_any_mapping_is_accepted_as_payload() -> None:
    """A read-only mapping payload is stored as a plain dict."""
    event = InMemoryEventLog().append("tick", types.MappingProxyType({"a": 1}))
    assert type(event.payload) is dict
    assert event.payload == {"a": 1}


def test_timestamp_is_the_clock_at_append(clock: ManualClock) -> None:
    """Without an explicit time, an event is stamped with the log's clock."""
    log = InMemoryEventLog(now=clock)
    clock.advance(12.5)
    assert log.append("tick").timestamp == clock.now


def test_explicit_event_time_is_kept(clock: ManualClock) -> None:
    """An explicit timestamp is stored as the event's time."""
    log = InMemoryEventLog(now=clock)
    assert log.append("tick", timestamp=123.25).timestamp == 123.25
    assert log.append("tick", timestamp=7).timestamp == 7


def test_trace_and_span_ids_are_kept() -> None:
    """W3C trace and span ids passed to append are stored on the event."""
    event = InMemoryEventLog().append("tick", trace_id=TRACE_ID, span_id=SPAN_ID)
    assert (event.trace_id, event.span_id) == (TRACE_ID, SPAN_ID)


def test_ids_given_as_opentelemetry_ints_are_stored_in_w3c_form() -> None:
    """The ints of an OpenTelemetry SpanContext are accepted and stored as lower-case hex."""
    event = InMemoryEventLog().append("tick", trace_id=int(TRACE_ID, 16), span_id=5)
    assert (event.trace_id, event.span_id) == (TRACE_ID, "0000000000000005")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"kind": ""}, ValueError, "kind must be a non-empty string"),
        ({"kind": None}, TypeError, "kind must be a non-empty string, got NoneType"),
        ({"kind": "k", "payload": [("a", 1)]}, TypeError, "payload must be a mapping or None, got list"),
        ({"kind": "k", "timestamp": "now"}, TypeError, "timestamp must be a number of seconds, got str"),
        ({"kind": "k", "timestamp": True}, TypeError, "timestamp must be a number of seconds, got bool"),
        ({"kind": "k", "timestamp": math.nan}, ValueError, "timestamp must be a finite number"),
        ({"kind": "k", "timestamp": math.inf}, ValueError, "timestamp must be a finite number"),
        ({"kind": "k", "trace_id": TRACE_ID.upper()}, ValueError, "trace_id must be 32 lower-case hex"),
        ({"kind": "k", "trace_id": 1 << 128}, ValueError, "trace_id must be an int of at most 128 bits"),
        ({"kind": "k", "span_id": -1}, ValueError, "span_id must be an int of at most 64 bits, got -1"),
        (
            {"kind": "k", "trace_id": 5.0},
            TypeError,
            "trace_id must be a string of 32 .* or an int, got float",
        ),
        ({"kind": "k", "span_id": True}, TypeError, "span_id must be a string of 16 .* or an int, got bool"),
        ({"kind": "k", "span_id": SPAN_ID + "0"}, ValueError, "span_id must be 16 lower-case hex"),
    ],
)
def test_bad_append_raises_naming_the_argument_and_keeps_the_log(
    kwargs: dict[str, object], error: type, message: str
) -> None:
    """A rejected append names what was wrong, stores nothing and uses up no id."""
    log = InMemoryEventLog()
    first = log.append("kept")
    with pytest.raises(error, match=message):
        log.append(**kwargs)  # type: ignore[arg-type]
    assert log.query() == [first]
    assert log.append("next").id == 2


def test_many_distinct_ids_are_each_checked() -> None:
    """Thousands of distinct valid ids are accepted, and a malformed one is still refused after them."""
    log = InMemoryEventLog(max_entries=10)
    for n in range(5_000):
        log.append("tick", trace_id=f"{n + 1:032x}", span_id=f"{n + 1:016x}")
    assert log.query()[-1].trace_id == f"{5_000:032x}"
    with pytest.raises(ValueError, match="trace_id must be 32 lower-case hex digits"):
        log.append("tick", trace_id=f"{5_000:032X}".replace("0", "G"))


def test_ids_may_be_str_subclasses() -> None:
    """Ids given as str subclasses are checked like strings and stored as plain strings."""

    class Hex(str):
        pass

    event = InMemoryEventLog().append("tick", trace_id=Hex(TRACE_ID), span_id=Hex(SPAN_ID))
    assert (type(event.trace_id), event.trace_id, type(event.span_id)) == (str, TRACE_ID, str)


def test_kind_may_be_a_str_subclass() -> None:
    """A str subclass, such as a string enum member, is a valid kind."""

    class Kind(str):
        pass

    assert InMemoryEventLog().append(Kind("turn.started")).kind == "turn.started"


# query


def test_query_returns_resident_events_in_ascending_order() -> None:
    """Without a cursor, query returns every resident event, oldest first."""
    assert ids(filled(5).query()) == [1, 2, 3, 4, 5]


def test_query_returns_ids_strictly_greater_than_since() -> None:
    """Events at or before the cursor are not returned."""
    assert ids(filled(5).query(since=2)) == [3, 4, 5]


def test_limit_none_is_unlimited_and_limit_zero_is_empty() -> None:
    """limit=None returns everything and limit=0 returns nothing."""
    log = filled(5)
    assert ids(log.query(limit=None)) == [1, 2, 3, 4, 5]
    assert log.query(limit=0) == []
    assert log.query(since=1, limit=0) == []


def test_since_at_or_past_the_tip_is_empty() -> None:
    """A cursor at or beyond the newest id returns nothing."""
    log = filled(3)
    assert log.query(since=3) == []
    assert log.query(since=300) == []


def test_since_into_evicted_history_returns_the_resident_tail() -> None:
    """A cursor pointing at evicted events returns what is still resident, without an error."""
    log = filled(10, max_entries=3)
    assert ids(log.query(since=2)) == [8, 9, 10]


def test_since_and_limit_compose() -> None:
    """The cursor is applied first, then the limit caps the result."""
    log = filled(10)
    assert ids(log.query(since=4, limit=3)) == [5, 6, 7]
    assert ids(log.query(since=8, limit=5)) == [9, 10]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"since": -1}, ValueError, "since must be a non-negative integer or None, got -1"),
        ({"limit": -5}, ValueError, "limit must be a non-negative integer or None, got -5"),
        ({"since": "3"}, TypeError, "since must be a non-negative integer or None, got '3'"),
        ({"limit": 2.0}, TypeError, "limit must be a non-negative integer or None, got 2.0"),
        ({"since": True}, TypeError, "since must be a non-negative integer or None, got True"),
    ],
)
def test_bad_cursor_or_limit_raises_naming_it(kwargs: dict[str, object], error: type, message: str) -> None:
    """A negative or non-integer since or limit is rejected with its name in the message."""
    log = filled(2)
    with pytest.raises(error, match=message):
        log.query(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(error, match=message):
        log.read(**kwargs)  # type: ignore[arg-type]
    assert ids(log.query()) == [1, 2]


# eviction


def test_max_entries_evicts_oldest_first() -> None:
    """Past max_entries, the oldest events go first."""
    log = filled(7, max_entries=4)
    assert ids(log.query()) == [4, 5, 6, 7]
    assert len(log) == 4


def test_ids_keep_counting_across_eviction() -> None:
    """Eviction never makes an id be handed out again."""
    log = filled(10, max_entries=2)
    assert log.append("tick").id == 11


def test_ring_wraps_many_times_and_stays_in_order() -> None:
    """After filling the ring many times over, reads still return the newest events in order."""
    log = filled(1_003, max_entries=10)
    assert ids(log.query()) == list(range(994, 1_004))
    assert ids(log.query(since=997, limit=4)) == [998, 999, 1_000, 1_001]


def test_ttl_evicts_old_events_on_append(clock: ManualClock) -> None:
    """An append sweeps out events that have been resident for longer than ttl_seconds."""
    log = InMemoryEventLog(ttl_seconds=10, now=clock)
    log.append("old")
    clock.advance(5)
    log.append("younger")
    clock.advance(5.5)
    log.append("new")
    assert [event.kind for event in log.query()] == ["younger", "new"]


def test_ttl_is_swept_on_read_once_writes_pause(clock: ManualClock) -> None:
    """With no further appends, a stale tail is not returned by query, read or len."""
    log = InMemoryEventLog(ttl_seconds=10, now=clock)
    log.append("a")
    log.append("b")
    clock.advance(10.5)
    assert log.query() == []
    assert log.read().events == ()
    assert len(log) == 0


def test_event_is_resident_until_it_is_older_than_its_ttl(clock: ManualClock) -> None:
    """An event exactly ttl_seconds old stays (the seed's rule); one any older is gone."""
    clock.now = 1005.0
    log = InMemoryEventLog(ttl_seconds=10, now=clock)
    log.append("a")
    clock.advance(10)  # t=1015: exactly as old as the TTL
    assert len(log) == 1
    assert [event.kind for event in log.query()] == ["a"]
    clock.advance(0.001)
    assert len(log) == 0


def test_the_age_is_judged_without_rounding_surprises(clock: ManualClock) -> None:
    """With ttl_seconds=0.3, an event whose computed age is a hair under 0.3 s is not evicted."""
    log = InMemoryEventLog(ttl_seconds=0.3, now=clock)
    appended = clock.now
    log.append("a")
    clock.advance(0.3)
    assert clock.now - appended < 0.3  # the computed age: 0.29999995 s at this clock's magnitude
    assert appended + 0.3 <= clock.now  # ...though the rounded sum says the TTL is reached
    assert len(log) == 1
    clock.advance(0.001)
    assert len(log) == 0


def test_ttl_counts_from_append_not_from_the_event_time(clock: ManualClock) -> None:
    """An event appended now with an old event time stays resident for the whole TTL."""
    log = InMemoryEventLog(ttl_seconds=10, now=clock)
    log.append("late", timestamp=clock.now - 3600)
    clock.advance(9)
    assert [event.kind for event in log.query()] == ["late"]


def test_infinite_ttl_keeps_events_until_max_entries(clock: ManualClock) -> None:
    """With ttl_seconds=inf only max_entries evicts."""
    log = InMemoryEventLog(ttl_seconds=math.inf, max_entries=2, now=clock)
    log.append("a")
    clock.advance(1e9)
    log.append("b")
    log.append("c")
    assert [event.kind for event in log.query()] == ["b", "c"]


def test_ttl_and_max_entries_evict_together(clock: ManualClock) -> None:
    """Capacity eviction and age eviction combine, and the ring reuses freed slots in order."""
    log = InMemoryEventLog(ttl_seconds=10, max_entries=3, now=clock)
    for _ in range(5):
        log.append("tick")  # ids 1..5, 3..5 resident
    clock.advance(6)
    log.append("tick")  # 6: evicts 3
    clock.advance(5)  # 4 and 5 expire; 6 stays
    log.append("tick")  # 7
    log.append("tick")  # 8
    assert ids(log.query()) == [6, 7, 8]
    clock.advance(6)  # 6 expires
    assert ids(log.query()) == [7, 8]


# clear


def test_clear_drops_everything_and_keeps_the_counter() -> None:
    """After clear nothing is resident and the next id follows the last one handed out."""
    log = filled(4)
    log.clear()
    assert log.query() == []
    assert len(log) == 0
    assert log.append("tick").id == 5
    assert ids(log.query()) == [5]


def test_readers_are_told_about_cleared_events() -> None:
    """Events dropped by clear count as missed for a reader that had not seen them."""
    log = filled(4)
    log.clear()
    log.append("tick")
    page = log.read(since=1)
    assert (ids(page.events), page.missed) == ([5], 3)


# bounds


def test_bounds_default_to_the_class_constants() -> None:
    """A log built without bounds, or with None, uses the documented defaults."""
    for log in (InMemoryEventLog(), InMemoryEventLog(None, None)):
        assert log.ttl_seconds == InMemoryEventLog.DEFAULT_TTL_SECONDS == 3600
        assert log.max_entries == InMemoryEventLog.DEFAULT_MAX_ENTRIES == 10_000


def test_bounds_report_what_is_in_force() -> None:
    """The read-only properties report the bounds the log was built with."""
    log = InMemoryEventLog(ttl_seconds=2.5, max_entries=7)
    assert (log.ttl_seconds, log.max_entries) == (2.5, 7)
    with pytest.raises(AttributeError):
        log.max_entries = 8  # type: ignore[misc]


@pytest.mark.parametrize(("ttl_seconds", "max_entries"), [(0, 5), (-1, 5), (5, 0), (5, -3)])
def test_non_positive_bounds_fall_back_with_a_warning(
    caplog: pytest.LogCaptureFixture, ttl_seconds: float, max_entries: int
) -> None:
    """A non-positive bound is replaced by its default and a warning names it."""
    with caplog.at_level(logging.WARNING, logger="otel_eventlog"):
        log = InMemoryEventLog(ttl_seconds=ttl_seconds, max_entries=max_entries)
    bad = "ttl_seconds" if ttl_seconds <= 0 else "max_entries"
    assert [r.getMessage().split("=")[0] for r in caplog.records] == [bad]
    assert log.ttl_seconds == (3600 if ttl_seconds <= 0 else ttl_seconds)
    assert log.max_entries == (10_000 if max_entries <= 0 else max_entries)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"ttl_seconds": "60"}, TypeError, "ttl_seconds must be a number of seconds or None, got str '60'"),
        ({"ttl_seconds": True}, TypeError, "ttl_seconds must be a number of seconds or None, got bool"),
        ({"ttl_seconds": math.nan}, ValueError, "ttl_seconds must be a number, got NaN"),
        ({"max_entries": 10.0}, TypeError, "max_entries must be an integer or None, got float 10.0"),
        ({"now": 5}, TypeError, "now must be a callable returning seconds, got 5"),
    ],
)
def test_wrong_bound_types_raise(kwargs: dict[str, object], error: type, message: str) -> None:
    """Bounds of the wrong type or a clock that is not callable are rejected at construction."""
    with pytest.raises(error, match=message):
        InMemoryEventLog(**kwargs)  # type: ignore[arg-type]


# read and Page


def test_read_of_an_empty_log() -> None:
    """A fresh log reads as no events, cursor 0, nothing missed, no oldest id."""
    page = InMemoryEventLog().read()
    assert (page.events, page.cursor, page.missed, page.oldest_id, page.latest_id) == ((), 0, 0, None, 0)


def test_read_reports_oldest_and_latest_ids() -> None:
    """A page names the oldest resident id and the newest id handed out."""
    page = filled(10, max_entries=4).read(since=8)
    assert (ids(page.events), page.oldest_id, page.latest_id) == ([9, 10], 7, 10)


def test_cursor_is_the_last_returned_id_when_the_limit_stops_the_read() -> None:
    """A read cut short by its limit hands back the id of its last event."""
    page = filled(10).read(since=2, limit=3)
    assert (ids(page.events), page.cursor) == ([3, 4, 5], 5)


def test_following_the_cursor_sees_every_event_once() -> None:
    """Reading page after page by cursor returns each event exactly once."""
    log = filled(10)
    seen: list[int] = []
    cursor = None
    for _ in range(5):
        page = log.read(since=cursor, limit=3)
        seen += ids(page.events)
        cursor = page.cursor
    assert seen == list(range(1, 11))


def test_cursor_never_moves_backwards() -> None:
    """A cursor past the tip, or a read with limit 0, hands the cursor back unchanged."""
    log = filled(3)
    assert log.read(since=50).cursor == 50
    assert log.read(since=2, limit=0).cursor == 2


def test_missed_counts_events_evicted_past_the_cursor() -> None:
    """A reader whose cursor fell into evicted history learns how many events it lost."""
    log = filled(10, max_entries=3)
    page = log.read(since=2)
    assert (ids(page.events), page.missed) == ([8, 9, 10], 5)
    assert log.read(since=7).missed == 0
    assert log.read(since=9).missed == 0


def test_missed_counts_everything_when_all_was_evicted(clock: ManualClock) -> None:
    """When nothing is resident, every event after the cursor counts as missed."""
    log = InMemoryEventLog(ttl_seconds=1, now=clock)
    for _ in range(5):
        log.append("tick")
    clock.advance(1.5)
    page = log.read(since=1)
    assert (page.events, page.missed, page.oldest_id, page.cursor) == ((), 4, None, 5)


def test_a_fresh_reader_has_missed_nothing() -> None:
    """A read without a cursor reports no missed events, even after eviction."""
    assert filled(10, max_entries=3).read().missed == 0


def test_epoch_is_stable_per_log_and_unique_across_logs() -> None:
    """Two reads of one log share an epoch; two logs never do."""
    log = filled(1)
    assert log.read().epoch == log.read().epoch == log.epoch
    assert InMemoryEventLog().epoch != log.epoch


def test_read_filters_by_exact_kind_and_pattern() -> None:
    """Kinds take exact names and shell-style patterns."""
    log = InMemoryEventLog()
    for kind in ("turn.started", "tool.called", "turn.completed", "session.started"):
        log.append(kind)
    assert [e.kind for e in log.read(kinds="turn.*").events] == ["turn.started", "turn.completed"]
    assert [e.kind for e in log.read(kinds=["tool.called", "session.*"]).events] == [
        "tool.called",
        "session.started",
    ]


def test_filtered_read_moves_the_cursor_past_skipped_events() -> None:
    """A filtered read that finds nothing new still advances the cursor to the tip."""
    log = InMemoryEventLog()
    log.append("turn.started")
    for _ in range(5):
        log.append("heartbeat")
    page = log.read(since=1, kinds="turn.*")
    assert (page.events, page.cursor) == ((), 6)


def test_filtered_read_limit_counts_matching_events() -> None:
    """With a filter, the limit counts matches and the cursor stops at the last one."""
    log = InMemoryEventLog()
    for n in range(10):
        log.append("even" if n % 2 == 0 else "odd")
    page = log.read(kinds="odd", limit=2)
    assert (ids(page.events), page.cursor) == ([2, 4], 4)
    assert log.read(since=4, kinds="odd", limit=0).cursor == 4


def test_filtered_read_spans_a_wrapped_ring() -> None:
    """A filtered read over many more events than one scan chunk, across the ring's seam, finds all."""
    log = InMemoryEventLog(max_entries=1_500)
    for n in range(2_000):
        log.append("hit" if n % 7 == 0 else "miss")
    page = log.read(kinds="hit")
    assert ids(page.events) == [n + 1 for n in range(500, 2_000) if n % 7 == 0]
    assert page.cursor == 2_000


def test_read_filters_by_trace_id() -> None:
    """A trace id filter returns only that trace's events."""
    other = "0" * 31 + "1"
    log = InMemoryEventLog()
    log.append("a", trace_id=TRACE_ID)
    log.append("b", trace_id=other)
    log.append("c")
    log.append("d", trace_id=TRACE_ID)
    assert [e.kind for e in log.read(trace_id=TRACE_ID).events] == ["a", "d"]
    assert [e.kind for e in log.read(trace_id=TRACE_ID, kinds="d").events] == ["d"]


def test_bad_filters_raise() -> None:
    """A malformed trace id or kind filter is rejected, naming it."""
    log = filled(1)
    with pytest.raises(ValueError, match="trace_id must be 32 lower-case hex digits"):
        log.read(trace_id="abc")
    with pytest.raises(TypeError, match="kinds must be a string or an iterable of strings"):
        log.read(kinds=3)  # type: ignore[arg-type]


def test_repr_names_bounds_and_latest_id() -> None:
    """The repr shows the bounds in force and the latest id."""
    assert repr(filled(2, ttl_seconds=5, max_entries=9, max_bytes=4096)) == (
        "InMemoryEventLog(ttl_seconds=5, max_entries=9, max_bytes=4096, latest_id=2)"
    )


# extend


def test_extend_stores_entries_in_order_with_consecutive_ids(clock: ManualClock) -> None:
    """A batch lands in order, after what was there, and extend returns the ids it gave."""
    log = InMemoryEventLog(now=clock)
    log.append("before")
    given = log.extend(
        [
            Entry("turn.started", {"turn": 1}),
            Entry("tool.called", {"tool": "search"}, timestamp=12.5, trace_id=TRACE_ID, span_id=SPAN_ID),
            ("turn.completed", None, None, int(TRACE_ID, 16), int(SPAN_ID, 16)),
        ]
    )
    assert given == range(2, 5)
    started, called, completed = log.query(since=1)
    assert (started.kind, started.payload, started.timestamp) == ("turn.started", {"turn": 1}, clock.now)
    assert (called.timestamp, called.trace_id, called.span_id) == (12.5, TRACE_ID, SPAN_ID)
    assert (completed.payload, completed.trace_id, completed.span_id) == ({}, TRACE_ID, SPAN_ID)
    assert log.append("after").id == 5


def test_extend_copies_payloads_including_opentelemetry_attributes() -> None:
    """Stored payloads are plain dicts, copied from dicts and from OpenTelemetry's BoundedAttributes."""
    payload = {"turn": 1}
    attributes = BoundedAttributes(attributes={"tool": "search"})
    log = InMemoryEventLog()
    log.extend([("a", payload, None, None, None), ("b", attributes, None, None, None)])
    payload["turn"] = 2
    first, second = log.query()
    assert first.payload == {"turn": 1}
    assert type(second.payload) is dict
    assert second.payload == {"tool": "search"}


def test_extend_of_nothing_stores_nothing() -> None:
    """An empty batch uses no id and returns an empty range."""
    log = InMemoryEventLog()
    log.append("tick")
    assert log.extend([]) == range(2, 2)
    assert log.extend(iter(())) == range(2, 2)
    assert log.append("tick").id == 2


def test_extend_wraps_the_ring_and_evicts_like_appends() -> None:
    """A batch that crosses the end of the ring, or exceeds it, keeps the newest max_entries."""
    log = filled(3, max_entries=4)
    log.extend([("batch", {"n": n}, None, None, None) for n in range(3)])
    assert [(e.id, e.payload["n"]) for e in log.query()] == [(3, 2), (4, 0), (5, 1), (6, 2)]
    assert log.extend([("big", {"n": n}, None, None, None) for n in range(10)]) == range(7, 17)
    page = log.read(since=6)
    assert [(e.id, e.payload["n"]) for e in page.events] == [(13, 6), (14, 7), (15, 8), (16, 9)]
    assert page.missed == 6


def test_extend_sweeps_expired_events_first(clock: ManualClock) -> None:
    """Expired events go before a batch is stored, and the batch starts a new TTL."""
    log = InMemoryEventLog(ttl_seconds=10, now=clock)
    log.append("old")
    clock.advance(10.5)
    log.extend([("new", None, None, None, None)] * 2)
    assert [e.kind for e in log.query()] == ["new", "new"]
    clock.advance(10)
    assert len(log) == 2
    clock.advance(0.1)
    assert len(log) == 0


@pytest.mark.parametrize(
    ("entries", "error", "message"),
    [
        ("turn.started", TypeError, "entries must be an iterable of Entry tuples, got str"),
        ({"kind": "a"}, TypeError, "entries must be an iterable of Entry tuples, got dict"),
        (5, TypeError, "entries must be an iterable of Entry tuples, got int"),
        ([("a", None, None, None, None), ["b"]], TypeError, r"entries\[1\]: expected an Entry or a 5-tuple"),
        ([("a", None, None, None)], TypeError, r"entries\[0\]: expected an Entry or a 5-tuple"),
        ([Entry("a"), Entry("")], ValueError, r"entries\[1\]: kind must be a non-empty string"),
        ([Entry("a", payload=[1])], TypeError, r"entries\[0\]: payload must be a mapping or None"),
        ([Entry("a", timestamp=math.nan)], ValueError, r"entries\[0\]: timestamp must be a finite number"),
        ([Entry("a", trace_id="x")], ValueError, r"entries\[0\]: trace_id must be 32 lower-case hex"),
        ([Entry("a", span_id=1 << 64)], ValueError, r"entries\[0\]: span_id must be an int of at most 64"),
    ],
)
def test_bad_extend_raises_naming_the_entry_and_stores_nothing(
    entries: object, error: type, message: str
) -> None:
    """A batch with one bad entry is refused whole, naming the entry, and uses up no id."""
    log = InMemoryEventLog()
    first = log.append("kept")
    with pytest.raises(error, match=message):
        log.extend(entries)  # type: ignore[arg-type]
    assert log.query() == [first]
    assert log.append("next").id == 2


# write_batch: the capture side's way in


class SpanEvent:
    """A span event as the SDK's: a name and attributes, never changed."""

    def __init__(self, name: Any, attributes: Any = None) -> None:
        self.name = name
        self.attributes = attributes


def test_span_events_by_reference_are_copied_only_when_read(clock: ManualClock) -> None:
    """A span event handed over by reference becomes an Event with a copy of its attributes, on read."""
    log = InMemoryEventLog(now=clock)
    attributes = BoundedAttributes(attributes={"tool": "search"}, immutable=True)
    log.write_batch([(1_700_000_000_250_000_000, SpanEvent("tool.called", attributes), 1, 2)])
    [event] = log.query()
    assert (event.kind, event.payload, event.timestamp) == (
        "tool.called",
        {"tool": "search"},
        1_700_000_000.25,
    )
    assert (event.trace_id, event.span_id) == (f"{1:032x}", f"{2:016x}")
    assert type(event.payload) is dict


class FieldsUnlikeProperties:
    """A span event whose ``_name`` and ``_attributes`` are not what its properties return."""

    def __init__(self) -> None:
        self._name = "private name"
        self._attributes = {"private": True}

    @property
    def name(self) -> str:
        """The name readers must see."""
        return "tool.called"

    @property
    def attributes(self) -> Mapping[str, Any]:
        """The attributes readers must see."""
        return {"tool": "search"}


def test_only_span_event_classes_declared_plain_are_read_by_their_fields() -> None:
    """A class in PLAIN_SPAN_EVENTS is read by its fields, quicker; any other by its properties."""
    log = InMemoryEventLog()
    log.write_batch([(1, FieldsUnlikeProperties(), 1, 1)])
    PLAIN_SPAN_EVENTS.add(FieldsUnlikeProperties)
    try:
        log.write_batch([(2, FieldsUnlikeProperties(), 1, 1)])
    finally:
        PLAIN_SPAN_EVENTS.discard(FieldsUnlikeProperties)
    assert [(e.kind, e.payload) for e in log.query()] == [
        ("tool.called", {"tool": "search"}),
        ("private name", {"private": True}),
    ]


def test_span_event_attributes_are_kept_as_they_are_only_when_nothing_can_change_them() -> None:
    """The SDK's immutable attributes are kept by their inner dict; mutable ones, and lookalikes, copied."""
    immutable = BoundedAttributes(attributes={"n": 1}, immutable=True)
    mutable = BoundedAttributes(attributes={"n": 2}, immutable=False)

    class Lookalike(dict[str, Any]):
        _immutable = True
        _dict = ("not", "a", "dict")

    lookalike = Lookalike(n=3)
    log = InMemoryEventLog()
    log.write_batch(
        [
            (n, SpanEvent("e", attributes), 1, 1)
            for n, attributes in enumerate([immutable, mutable, lookalike])
        ]
    )
    stored = [row[2] for row in log._records[1:4]]  # what each slot keeps, before any read
    assert stored[0] is immutable._dict
    assert stored[1] is not mutable._dict
    assert stored[1] == {"n": 2}
    assert type(stored[2]) is dict
    assert stored[2] == {"n": 3}
    assert [e.payload for e in log.query()] == [{"n": 1}, {"n": 2}, {"n": 3}]


def test_a_reference_with_ids_that_are_not_ints_counts_no_cut() -> None:
    """A reference stored as it came, to be read as a marked event, had nothing cut: none is counted."""
    log = InMemoryEventLog(max_value_bytes=100)
    log.write_batch([(1, SpanEvent("e", {"v": "x" * 1_000}), 1.0, 1)])
    assert [e.kind for e in log.query()] == ["otel_eventlog.malformed_span_event"]
    assert log.stats()["truncated"] == 0


def test_a_malformed_reference_is_read_as_a_marked_event_not_an_error() -> None:
    """A reference that breaks the SpanEventRef shape never stops a reader: it reads as a marked event."""
    log = InMemoryEventLog()
    log.write_batch(
        [
            (1, SpanEvent(None), 1, 1),
            (2, object(), 1, 1),
            (
                3,
                SpanEvent("ids"),
                0x1234,
                2**64 + 5,
            ),  # a span id out of range must not bleed into the trace id
            (4, SpanEvent("ids"), -1, 1),
            (5, SpanEvent("ok"), 1, 1),
        ]
    )
    kinds = [e.kind for e in log.query()]
    assert kinds == ["otel_eventlog.malformed_span_event"] * 4 + ["ok"]


def test_write_batch_takes_any_iterable_and_refuses_what_is_not_one() -> None:
    """A tuple or generator of items is a batch too; a string, a mapping or a number is refused whole."""
    log = InMemoryEventLog()
    log.write_batch(item for item in [("a", {}, None, None, None)])  # type: ignore[arg-type]
    for bad in ("a", {"kind": "a"}, 5):
        with pytest.raises(TypeError, match="batch must be a list of Entry and SpanEventRef tuples"):
            log.write_batch(bad)  # type: ignore[arg-type]
    assert [e.kind for e in log.query()] == ["a"]


def test_handed_over_payloads_are_kept_and_others_copied() -> None:
    """A dict payload in a batch is the caller's no more, so it is kept; any other mapping is copied."""
    log = InMemoryEventLog()
    handed = {"n": 1}
    log.write_batch(
        [("a", handed, None, None, None), ("b", BoundedAttributes(attributes={"n": 2}), 1.5, None, None)]
    )
    first, second = log.query()
    assert first.payload is handed
    assert type(second.payload) is dict
    assert second.payload == {"n": 2}


# A model-based check: random appends, clock moves, clears and reads against a plain list.


def test_random_operations_match_a_simple_model(clock: ManualClock) -> None:
    """Under a random mix of operations the ring agrees with an obviously correct list model."""
    rng = random.Random(20261127)
    ttl, capacity = 50.0, 17
    log = InMemoryEventLog(ttl_seconds=ttl, max_entries=capacity, now=clock)
    model: list[tuple[int, float]] = []  # (id, appended at)
    last_id = 0
    for _ in range(5_000):
        op = rng.random()
        if op < 0.5:
            last_id += 1
            assert log.append("tick").id == last_id
            model.append((last_id, clock.now))
            model = model[-capacity:]
        elif op < 0.6:
            count = rng.choice([0, 1, 5, capacity - 1, capacity + 3])
            if rng.random() < 0.5:
                assert log.extend([Entry("tick")] * count) == range(last_id + 1, last_id + count + 1)
            else:  # the capture side's batch: span events by reference and entries, mixed
                batch: list[Any] = [
                    (1, SpanEvent("tick"), 1, 1) if rng.random() < 0.5 else ("tick", {}, None, None, None)
                    for _ in range(count)
                ]
                log.write_batch(batch)
            model.extend((last_id + n, clock.now) for n in range(1, count + 1))
            model = model[-capacity:]
            last_id += count
        elif op < 0.75:
            clock.advance(rng.uniform(0, 20))
        elif op < 0.77:
            log.clear()
            model = []
        else:
            since = rng.choice([None, rng.randint(0, last_id + 2)])
            limit = rng.choice([None, 0, rng.randint(1, capacity)])
            model = [(i, t) for i, t in model if t + ttl > clock.now]
            expected = [i for i, _ in model if since is None or i > since][:limit]
            page = log.read(since, limit)
            assert ids(page.events) == expected
            first = model[0][0] if model else last_id + 1
            assert page.missed == (0 if since is None else max(0, first - since - 1))
            assert page.oldest_id == (model[0][0] if model else None)


def test_a_large_max_entries_costs_nothing_until_events_arrive() -> None:
    """The ring grows as slots are used, so max_entries=10**8 or 2**63 builds at once and small."""
    import tracemalloc

    tracemalloc.start()
    try:
        log = InMemoryEventLog(max_entries=10**8)
        for n in range(1000):
            log.append("tick", {"n": n})
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert used < 2_000_000
    huge = InMemoryEventLog(max_entries=2**63)
    assert [huge.append("tick").id for _ in range(3)] == [1, 2, 3]
    assert len(huge.query()) == 3


def test_an_event_is_built_and_redacted_once_however_often_it_is_read() -> None:
    """The first read stores the built, redacted event; later reads return that same object."""
    log = InMemoryEventLog()
    log.append("login", {"user": "ada", "password": "hunter2"})
    first = log.query()[0]
    assert first.payload == {"user": "ada", "password": "[redacted]"}
    redacted = log.stats()["redacted"]
    again = log.query()[0]
    assert again is first
    assert log.stats()["redacted"] == redacted  # counted once, when it was first read


def test_an_event_evicted_while_it_was_being_read_is_not_brought_back() -> None:
    """A read that finishes after the event it built was evicted leaves the ring as eviction left it."""
    log = InMemoryEventLog(max_entries=2)
    log.append("a")
    rows = log._rows(1, 1)
    log.append("b")
    log.append("c")  # "a" is evicted; its slot now holds "c"
    events = [Event(1, 0.0, "a", {}, None, None)]
    log._keep_built(1, rows, events)
    assert [event.kind for event in log.query()] == ["b", "c"]


def test_a_reference_written_again_into_the_same_slot_keeps_its_new_id() -> None:
    """A read that finishes after the ring wrapped onto the same reference does not bring the old id back."""
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("s") as span:
        span.add_event("tool.called")
    context = span.get_span_context()
    ref = SpanEventRef(span.events[0].timestamp, span.events[0], context.trace_id, context.span_id)
    log = InMemoryEventLog(max_entries=2)
    log.write_batch([ref])
    rows = log._rows(1, 1)
    log.write_batch([ref, ref])  # ids 2 and 3: id 3 lands in id 1's slot, as the same object
    log._keep_built(1, rows, [Event(1, 0.0, "tool.called", {}, None, None)])
    page = log.read(since=2)
    assert [event.id for event in page.events] == [3]
    assert page.cursor == 3
