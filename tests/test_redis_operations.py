"""The Redis log under what operators and other clients do to its keys.

Trims, deletions, foreign entries, and a server restored from an older snapshot.
Each is something a Redis in production sees (an ``XTRIM`` to free memory, another service writing to a
key it should not, a crash with RDB persistence); the log must go on, count what went, and never let a
reader miss events silently.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

from otel_eventlog import Entry, RedisEventLog
from otel_eventlog.errors import BackendError
from tests.helpers import ManualClock, until_a_reader_waits
from tests.redis_server import RedisServer, stream_name
from tests.test_redis import WAIT, raw


def ids(log: RedisEventLog, since: int | None = None) -> list[int]:
    """The ids a reader from `since` is given."""
    return [event.id for event in log.read(since).events]


# Another client trims or deletes entries


@pytest.mark.parametrize("trim", [("MAXLEN", "4"), ("MINID", "7-0")])
def test_the_oldest_events_trimmed_by_another_client_are_counted_and_the_log_goes_on(
    log: RedisEventLog, url: str, trim: tuple[str, str]
) -> None:
    """An exact ``XTRIM`` of the six oldest: readers miss exactly those, counted as cleared; writes go on."""
    log.extend([Entry(f"e{number}") for number in range(1, 11)])
    raw(url, "XTRIM", log.stream, *trim)
    assert log.append("after").id == 11
    page = log.read(since=0)
    assert ([event.id for event in page.events], page.missed, page.oldest_id) == ([7, 8, 9, 10, 11], 6, 7)
    stats = log.stats()
    assert (stats["cleared"], stats["resident"], stats["appended"]) == (6, 5, 11)


def test_a_stream_emptied_by_another_client_is_an_empty_log_that_goes_on(
    log: RedisEventLog, url: str
) -> None:
    """``XTRIM MAXLEN 0`` leaves the log empty, ids going on from where they stood."""
    log.extend([Entry("a"), Entry("b"), Entry("c")])
    raw(url, "XTRIM", log.stream, "MAXLEN", "0")
    page = log.read(since=1)
    assert (page.events, page.missed, page.oldest_id, page.latest_id) == ((), 2, None, 3)
    assert log.append("d").id == 4
    assert ids(log) == [4]


def test_entries_deleted_from_the_middle_are_skipped_and_eviction_by_age_still_works(url: str) -> None:
    """``XDEL`` of entries that eviction by age then reaches: every expired event goes, each counted once."""
    clock = ManualClock(1.0)
    log = RedisEventLog(url, stream=stream_name(), ttl_seconds=100, now=clock)
    try:
        for number in range(1, 11):  # event n is stamped n
            clock.now = float(number)
            log.append(f"e{number}")
        raw(url, "XDEL", log.stream, "5-0", "6-0")
        assert ids(log) == [1, 2, 3, 4, 7, 8, 9, 10]
        clock.now = 107.5  # events stamped before 7.5 have expired
        page = log.read(since=0)
        assert ([event.id for event in page.events], page.missed, page.oldest_id) == ([8, 9, 10], 7, 8)
        stats = log.stats()
        assert stats["evicted_by_ttl"] + stats["cleared"] == 7
        assert stats["cleared"] >= 1  # the deleted entries the sweep stepped past
        assert log.append("after").id == 11
    finally:
        log.close()


@pytest.mark.parametrize("kinds", [None, "e*"], ids=["all", "filtered"])
def test_a_reader_paging_past_deleted_entries_never_gets_an_event_twice(
    log: RedisEventLog, url: str, kinds: str | None
) -> None:
    """Pages of five over a stream with six entries deleted from its middle: each event once, gaps missed."""
    log.extend([Entry(f"e{number}") for number in range(1, 21)])
    raw(url, "XDEL", log.stream, *(f"{number}-0" for number in range(4, 10)))
    seen: list[int] = []
    missed = 0
    cursor = 0
    while True:
        page = log.read(since=cursor, limit=5, kinds=kinds)
        seen.extend(event.id for event in page.events)
        missed += page.missed
        if page.cursor == cursor:
            break
        cursor = page.cursor
    assert seen == [1, 2, 3, *range(10, 21)]
    assert missed == 6


def test_an_asynchronous_reader_paging_past_deleted_entries_never_gets_an_event_twice(
    log: RedisEventLog, url: str
) -> None:
    """The same through the asyncio client."""
    log.extend([Entry(f"e{number}") for number in range(1, 11)])
    raw(url, "XDEL", log.stream, "3-0", "4-0")

    async def pages() -> list[int]:
        seen, cursor = [], 0
        while (page := await log.read_async(since=cursor, limit=3)).events:
            seen.extend(event.id for event in page.events)
            cursor = page.cursor
        return seen

    assert asyncio.run(pages()) == [1, 2, 5, 6, 7, 8, 9, 10]


def test_eviction_by_weight_and_count_steps_over_deleted_entries(url: str) -> None:
    """``max_bytes`` and ``max_entries`` eviction reach past entries another client deleted, and go on."""
    log = RedisEventLog(url, stream=stream_name(), max_entries=6, max_bytes=10**6, max_value_bytes=10**6)
    try:
        log.extend([Entry("e", {"n": number}) for number in range(1, 9)])  # 1, 2 evicted by count
        raw(url, "XDEL", log.stream, "5-0", "7-0")
        log.extend([Entry("e", {"n": number}) for number in range(9, 11)])  # 3, 4 by count; 5, 7 deleted
        page = log.read(since=0)
        assert [event.payload["n"] for event in page.events] == [6, 8, 9, 10]
        assert (page.oldest_id, page.missed) == (6, 6)  # 1 to 5 before the oldest, and 7
        heavy = "x" * 400_000
        log.extend([Entry("big", {"v": heavy}), Entry("big", {"v": heavy}), Entry("big", {"v": heavy})])
        assert [event.kind for event in log.read(since=0).events] == ["big", "big"]  # 10**6 holds two
    finally:
        log.close()


def test_evicted_entries_leave_the_stream_even_when_its_nodes_have_no_size_limit(server: RedisServer) -> None:
    """With ``stream-node-max-bytes`` and ``-entries`` at 0, trimming whole nodes would trim nothing."""
    for setting in ("stream-node-max-bytes", "stream-node-max-entries"):
        assert server.command("CONFIG", "SET", setting, "0") == "+OK"
    log = RedisEventLog(server.url, stream=stream_name(), max_entries=100)
    try:
        for start in range(0, 5000, 500):
            log.extend([Entry("e", {"n": n}) for n in range(start, start + 500)])
        assert len(log) == 100
        assert raw(server.url, "XLEN", log.stream) <= 2 * 100 + 1000
    finally:
        log.close()


# Another client writes to the stream


def test_an_entry_another_client_added_makes_writes_fail_naming_it(log: RedisEventLog, url: str) -> None:
    """An ``XADD stream * ...`` of another service: writes fail with a message that says what to do."""
    log.append("ours")
    foreign = raw(url, "XADD", log.stream, "*", "service", "other").decode()
    with pytest.raises(BackendError, match=rf"another client added an entry to {log.stream} \({foreign}"):
        log.append("refused")
    with pytest.raises(BackendError, match="give the event log a stream of its own"):
        log.extend([Entry("refused")])
    page = log.read(since=0)
    assert ([event.kind for event in page.events], page.latest_id) == (["ours"], 1)  # never the foreign one


def test_the_capture_side_counts_batches_refused_for_a_foreign_entry(
    log: RedisEventLog, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Queued writes are refused too, counted as failures, and the warning says why."""
    log.append("ours")
    raw(url, "XADD", log.stream, "*", "service", "other")
    with caplog.at_level(logging.WARNING, logger="otel_eventlog"):
        log.write_batch([Entry("captured")])
        assert log.flush(WAIT)
    assert log.stats()["failures"] == 1
    (record,) = caplog.records
    assert record.exc_info is not None
    assert "give the event log a stream of its own" in str(record.exc_info[1])


def test_a_waiting_reader_does_not_spin_on_an_entry_another_client_added(server: RedisServer) -> None:
    """The watcher reads past a foreign entry once; it does not return to it in a loop."""
    log = RedisEventLog(server.url, stream=stream_name())
    try:
        log.append("ours")
        raw(server.url, "XADD", log.stream, "*", "service", "other")
        raw(server.url, "CONFIG", "RESETSTAT")
        assert log.read(since=1, wait=1.0).events == ()  # a long-poll that runs out its second
        calls = _calls(server.url, "xread")
        assert calls <= 10, f"{calls} XREADs in one second of waiting"
    finally:
        log.close()


def _calls(url: str, command: str) -> int:
    """How many times the server ran `command` since its statistics were reset."""
    stats = raw(url, "INFO", "commandstats")  # redis-py parses it: {"cmdstat_xread": {"calls": ...}}
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


# Keys that belong to another application


@pytest.mark.parametrize(
    "existing",
    [
        ("XADD", "{stream}", "*", "order", "42"),  # another application's stream
        ("HSET", "{stream}", "field", "value"),
        ("SET", "{stream}", "value"),
        ("HSET", "{stream}:meta", "owner", "someone else"),  # a hash of theirs where the state would be
    ],
    ids=["stream", "hash", "string", "meta"],
)
def test_keys_another_application_holds_are_never_deleted(url: str, existing: tuple[str, ...]) -> None:
    """A stream name already in use is refused with a clear error, and what the key held stays."""
    stream = stream_name()
    key = existing[1].format(stream=stream)
    raw(url, existing[0], key, *existing[2:])
    before = raw(url, "DUMP", key)
    log = RedisEventLog(url, stream=stream)
    try:
        with pytest.raises(BackendError, match=rf"FOREIGN {key} .*give the event log a stream of its own$"):
            log.read()
        with pytest.raises(BackendError, match="FOREIGN"):
            log.append("refused")
        assert raw(url, "DUMP", key) == before
    finally:
        log.close()


def test_a_damaged_state_is_an_error_that_says_how_to_begin_again(log: RedisEventLog, url: str) -> None:
    """A state hash someone edited names the field and the way out, instead of a Lua error."""
    log.append("a")
    raw(url, "HDEL", f"{log.stream}:meta", "last")
    with pytest.raises(BackendError, match=rf"{log.stream}:meta holds no number under last: delete"):
        log.read()
    raw(url, "DEL", log.stream, f"{log.stream}:meta")
    assert log.append("b").id == 1


# Redis restored from an older copy


def _restart_from_snapshot(server: RedisServer) -> None:
    """Kill the server and start it again on the snapshot it saved: a crash with RDB persistence."""
    server.stop()
    server.start()


def test_a_log_restored_from_an_older_snapshot_begins_a_new_epoch(server: RedisServer) -> None:
    """A process that saw ids the restored log lacks is given a new epoch: its readers start over."""
    log = RedisEventLog(server.url, stream=stream_name())
    try:
        log.extend([Entry("a"), Entry("b"), Entry("c")])
        assert server.command("SAVE") == "+OK"
        log.extend([Entry("lost"), Entry("lost")])
        before = log.read(since=None)
        assert before.latest_id == 5
        _restart_from_snapshot(server)
        page = log.read(since=before.cursor)
        assert page.epoch != before.epoch  # the reader is told: ids 4 and 5 will mean other events
        assert [event.kind for event in log.read(since=None).events] == ["a", "b", "c"]
        assert log.append("new").id == 4
        assert log.read(since=None).epoch == page.epoch  # one new epoch, not one per call
    finally:
        log.close()


def test_a_waiting_reader_is_told_when_another_process_writes_to_a_restored_log(server: RedisServer) -> None:
    """A reader waiting past the restored log's end is woken with a new epoch by another process's write.

    The writer never saw the lost ids, so its write alone would reuse them in the old epoch; the
    waiting process's watcher finds the log behind what it saw, and begins the new epoch.
    """
    stream = stream_name()
    reader = RedisEventLog(server.url, stream=stream)
    try:
        reader.extend([Entry("a"), Entry("b"), Entry("c")])
        assert server.command("SAVE") == "+OK"
        reader.extend([Entry("lost"), Entry("lost")])
        before = reader.read()
        result: list[Any] = []
        waiting = threading.Thread(target=lambda: result.append(reader.read(since=before.cursor, wait=WAIT)))
        waiting.start()
        until_a_reader_waits(reader)
        _restart_from_snapshot(server)
        writer = RedisEventLog(server.url, stream=stream)
        try:
            writer.append("new")
            waiting.join(WAIT)
            assert result[0].epoch != before.epoch
        finally:
            writer.close()
    finally:
        reader.close()


def test_a_restored_log_that_another_process_wrote_past_the_lost_ids_still_begins_a_new_epoch(
    server: RedisServer,
) -> None:
    """A fresh process writes past the lost ids before the one that saw them calls: its ids are others'.

    Its last id is no longer behind what the first process saw; the entry under that id is stamped
    otherwise, and that tells.
    """
    stream = stream_name()
    reader = RedisEventLog(server.url, stream=stream)
    try:
        reader.extend([Entry("kept") for _ in range(3)])
        assert server.command("SAVE") == "+OK"
        reader.extend([Entry("lost") for _ in range(3)])
        before = reader.read()
        assert before.latest_id == 6
        _restart_from_snapshot(server)
        writer = RedisEventLog(server.url, stream=stream)  # never saw ids 4 to 6
        try:
            writer.extend([Entry("new") for _ in range(5)])  # ids 4 to 8, in the old epoch
        finally:
            writer.close()
        page = reader.read(since=before.cursor)
        assert page.epoch != before.epoch  # not the new events 7 and 8 alone, as if 4 to 6 were seen
    finally:
        reader.close()


# The application instruments redis-py


def test_the_log_s_own_redis_calls_are_not_traced_by_the_redis_instrumentation(url: str) -> None:
    """With opentelemetry-instrumentation-redis on, the log's calls make no spans: no loop through the log.

    The application's own Redis calls are still traced.
    """
    import redis
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_eventlog import EventLogSpanProcessor

    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    log = RedisEventLog(url, stream=stream_name())
    provider.add_span_processor(EventLogSpanProcessor(log, span_lifecycle=True, live_interval=0))
    instrumentor = RedisInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        with provider.get_tracer("app").start_as_current_span("request"):
            log.append("direct")
            client = redis.Redis.from_url(url)
            client.ping()  # the application's own call
            client.close()
        assert log.flush(WAIT)
        assert log.read(since=None, wait=0.5).events  # a read, and a wait on the watcher
        asyncio.run(log.read_async(since=None))
        shown = sorted((event.kind, str(event.payload.get("name"))) for event in log.read(since=0).events)
        assert shown == [
            ("direct", "None"),
            ("span.ended", "PING"),
            ("span.ended", "request"),
            ("span.started", "PING"),
            ("span.started", "request"),
        ], shown  # the application's spans, and nothing the log's own calls made
        log.clear()
        names = sorted(span.name for span in exported.get_finished_spans())
        assert names == ["PING", "request"], names
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
        log.close()
