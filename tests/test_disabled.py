"""Tests for `DisabledEventLog`, the backend that keeps nothing."""

from __future__ import annotations

import pytest

from otel_eventlog import DisabledEventLog, Entry
from tests.helpers import ManualClock


def test_append_returns_events_with_monotonic_ids(clock: ManualClock) -> None:
    """Appends return events with ids 1, 2, 3 and the clock's time, as a real log would."""
    log = DisabledEventLog(now=clock)
    events = [log.append("tick", {"n": n}) for n in range(3)]
    assert [e.id for e in events] == [1, 2, 3]
    assert events[0].timestamp == clock.now
    assert events[2].payload == {"n": 2}
    assert log.append("tick", timestamp=5.0).timestamp == 5.0


def test_extend_hands_out_ids_and_checks_entries() -> None:
    """A batch gets the next ids and is checked like any backend's, without being kept."""
    log = DisabledEventLog()
    log.append("tick")
    assert log.extend([Entry("a"), Entry("b", {"n": 1})]) == range(2, 4)
    with pytest.raises(ValueError, match=r"entries\[1\]: kind must be a non-empty string"):
        log.extend([Entry("c"), Entry("")])
    assert log.append("tick").id == 4
    assert log.query() == []


def test_nothing_is_retained() -> None:
    """Query is always empty and len is 0, whatever was appended."""
    log = DisabledEventLog()
    log.append("tick")
    log.clear()
    assert log.query() == []
    assert log.query(since=0, limit=10) == []
    assert len(log) == 0


def test_read_reports_the_latest_id_and_nothing_missed() -> None:
    """A read is empty, moves the cursor to the latest id and reports nothing missed."""
    log = DisabledEventLog()
    for _ in range(4):
        log.append("tick")
    page = log.read(since=1, kinds="t*")
    assert (page.events, page.cursor, page.missed, page.oldest_id, page.latest_id) == ((), 4, 0, None, 4)
    assert page.epoch == log.epoch
    assert log.read(since=9).cursor == 9


def test_bad_arguments_are_rejected_like_any_backend() -> None:
    """The disabled log checks its arguments as the others do, so switching backends hides no bug."""
    log = DisabledEventLog()
    with pytest.raises(ValueError, match="kind must be a non-empty string"):
        log.append("")
    with pytest.raises(ValueError, match="since must be a non-negative integer"):
        log.query(since=-1)
    with pytest.raises(ValueError, match="limit must be a non-negative integer"):
        log.read(limit=-1)
    assert log.append("ok").id == 1


def test_repr_names_the_latest_id() -> None:
    """The repr shows how many ids were handed out."""
    log = DisabledEventLog()
    log.append("tick")
    assert repr(log) == "DisabledEventLog(latest_id=1)"


def test_span_events_use_ids_but_are_not_kept() -> None:
    """Behind a span processor the disabled log hands out ids for span events and keeps none."""
    from opentelemetry.sdk.trace import TracerProvider

    from otel_eventlog import EventLogSpanProcessor

    log = DisabledEventLog()
    provider = TracerProvider()
    provider.add_span_processor(EventLogSpanProcessor(log, live_interval=0))
    with provider.get_tracer("test").start_as_current_span("turn") as span:
        span.add_event("turn.started")
        span.add_event("turn.completed")
    assert log.query() == []
    assert log.append("next").id == 3


def test_write_batch_uses_ids_for_the_well_formed_items_only() -> None:
    """A batch from the capture side uses one id per stored-looking item; a bad one is named."""
    log = DisabledEventLog()
    log.write_batch([("a", {}, None, None, None), (1, object(), 1, 1)])
    with pytest.raises(ValueError, match=r"batch\[0\]"):
        log.write_batch([("", {}, None, None, None), ("b", {}, None, None, None)])
    assert log.append("next").id == 4
    assert log.query() == []
