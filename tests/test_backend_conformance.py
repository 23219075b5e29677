"""The event log contract, run against every backend: the built-in ones and one of the application's own.

A backend joins by adding a factory to `STORING` (or, for one that keeps nothing, to `ALL` alone), as the
Redis backend does: each of its logs is a stream of its own on a throw-away ``redis-server``.
`ListEventLog` (tests/helpers.py) imports nothing private: that it passes shows the public `EventLog`
protocol is enough for a backend of an application's own.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from otel_eventlog import (
    DisabledEventLog,
    Entry,
    EventLog,
    EventLogSpanProcessor,
    InMemoryEventLog,
    RedisEventLog,
)
from otel_eventlog.backends import BatchWriter, Flushable, batch_writer
from tests import redis_server
from tests.helpers import ListEventLog, ManualClock

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"
WAIT = 10.0  # seconds: only ever reached when a test fails

Factory = Callable[..., EventLog]


def redis_log(ttl_seconds: float | None = None, max_entries: int | None = None, **options: Any) -> EventLog:
    """A Redis log on a stream of its own, on the shared throw-away server."""
    return RedisEventLog(
        redis_server.shared().url,
        stream=redis_server.stream_name(),
        ttl_seconds=ttl_seconds,
        max_entries=max_entries,
        **options,
    )


STORING: dict[str, Factory] = {
    "memory": InMemoryEventLog,
    "minimal": ListEventLog,
    "redis": redis_log,
}
ALL: dict[str, Factory] = {
    **STORING,
    "disabled": lambda ttl_seconds=None, max_entries=None, **kw: DisabledEventLog(**kw),
}


@pytest.fixture(params=sorted(STORING))
def make(request: pytest.FixtureRequest, clock: ManualClock) -> Callable[..., EventLog]:
    """A factory of logs of one storing backend, on the test's manual clock."""
    factory = STORING[request.param]
    return lambda ttl_seconds=None, max_entries=None: factory(ttl_seconds, max_entries, now=clock)


@pytest.fixture(params=sorted(ALL))
def make_any(request: pytest.FixtureRequest, clock: ManualClock) -> Callable[[], EventLog]:
    """A factory of logs of any backend, the disabled one included, on the test's manual clock."""
    factory = ALL[request.param]
    return lambda: factory(None, None, now=clock)


@pytest.fixture
def any_log(make_any: Callable[[], EventLog]) -> EventLog:
    """A log of any backend, the disabled one included."""
    return make_any()


def stored(writer: BatchWriter) -> None:
    """Wait until a writer that queues has stored what it was given."""
    if isinstance(writer, Flushable):
        assert writer.flush(WAIT)


def ids(log: EventLog, since: int | None = None) -> list[int]:
    return [event.id for event in log.query(since)]


# ids and appends


def test_every_backend_keeps_the_protocol(any_log: EventLog) -> None:
    """Each backend is an EventLog by the runtime-checkable protocol."""
    assert isinstance(any_log, EventLog)


def test_ids_start_at_one_and_increase_by_one_on_every_backend(any_log: EventLog) -> None:
    """Appends and extends hand out 1, 2, 3, ... and extend returns the range it used."""
    assert [any_log.append("tick").id for _ in range(3)] == [1, 2, 3]
    assert any_log.extend([Entry("a"), Entry("b")]) == range(4, 6)
    assert any_log.append("tick").id == 6


def test_append_returns_the_event_with_what_was_given(any_log: EventLog, clock: ManualClock) -> None:
    """The returned event carries the kind, a copy of the payload, the clock's time and the hex ids."""
    payload = {"turn": 1}
    event = any_log.append("turn.started", payload, trace_id=int(TRACE_ID, 16), span_id=SPAN_ID)
    payload["turn"] = 2
    assert (event.kind, event.payload, event.timestamp) == ("turn.started", {"turn": 1}, clock.now)
    assert (event.trace_id, event.span_id) == (TRACE_ID, SPAN_ID)


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        ((3,), {}, TypeError),
        (("",), {}, ValueError),
        (("tick", [1]), {}, TypeError),
        (("tick",), {"timestamp": float("nan")}, ValueError),
        (("tick",), {"trace_id": "XYZ"}, ValueError),
        (("tick",), {"span_id": 1.5}, TypeError),
    ],
)
def test_bad_appends_raise_and_store_nothing(
    any_log: EventLog, args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception]
) -> None:
    """A wrong argument raises TypeError or ValueError, uses no id and loses nothing stored."""
    any_log.append("kept")
    with pytest.raises(error):
        any_log.append(*args, **kwargs)
    assert any_log.append("next").id == 2


def test_a_bad_entry_stores_none_of_the_batch_and_is_named(any_log: EventLog) -> None:
    """A batch given to extend is all or nothing, and its error names the entry by index."""
    with pytest.raises(ValueError, match=r"entries\[1\]"):
        any_log.extend([Entry("ok"), Entry("")])
    assert any_log.append("next").id == 1


# reading by cursor


def test_query_returns_what_follows_the_cursor_up_to_the_limit(make: Factory) -> None:
    """The cursor is exclusive, oldest first, limit caps, and limit=0 or a cursor at the tip gives []."""
    log = make()
    for n in range(5):
        log.append("tick", {"n": n})
    assert ids(log) == [1, 2, 3, 4, 5]
    assert ids(log, 2) == [3, 4, 5]
    assert [e.id for e in log.query(1, 2)] == [2, 3]
    assert log.query(0, 0) == []
    assert log.query(5) == []
    assert log.query(99) == []


def test_max_entries_evicts_the_oldest_and_ids_go_on(make: Factory) -> None:
    """Past max_entries the oldest go first; a cursor into evicted history gets the resident tail."""
    log = make(max_entries=3)
    for _ in range(5):
        log.append("tick")
    assert ids(log) == [3, 4, 5]
    assert ids(log, 1) == [3, 4, 5]
    assert len(log) == 3


def test_events_expire_after_ttl_on_read_and_on_append(make: Factory, clock: ManualClock) -> None:
    """An event resident for longer than ttl_seconds is gone, whether the next call reads or appends."""
    log = make(ttl_seconds=10)
    log.append("old")
    clock.advance(5)
    log.append("young")
    clock.advance(6)
    assert [e.kind for e in log.query()] == ["young"]
    clock.advance(10)
    assert log.append("new").id == 3
    assert ids(log) == [3]


def test_an_event_exactly_as_old_as_the_ttl_is_still_resident(make: Factory, clock: ManualClock) -> None:
    """The seed's rule: an event goes once its age is greater than ttl_seconds, not when it equals it."""
    log = make(ttl_seconds=10)
    log.append("a")
    clock.advance(10)
    assert [e.kind for e in log.query()] == ["a"]
    clock.advance(0.25)
    assert log.query() == []


def test_clear_drops_everything_but_keeps_counting(make: Factory) -> None:
    """After clear() nothing is resident and the next id follows the last one handed out."""
    log = make()
    log.append("a")
    log.append("b")
    log.clear()
    assert (len(log), log.query()) == (0, [])
    assert log.append("c").id == 3


def test_a_page_says_where_the_reader_stands(make: Factory) -> None:
    """cursor, missed, oldest_id, latest_id and epoch describe the read exactly."""
    log = make(max_entries=3)
    for _ in range(6):
        log.append("tick")
    page = log.read(since=1, limit=2)
    assert [e.id for e in page.events] == [4, 5]
    assert (page.cursor, page.missed, page.oldest_id, page.latest_id) == (5, 2, 4, 6)
    assert page.epoch == log.read().epoch
    assert log.read().missed == 0  # a new reader has missed nothing


def test_filters_keep_the_matching_events_and_move_the_cursor_past_the_rest(make: Factory) -> None:
    """The kinds and trace_id filters keep what matches; the cursor skips what was examined."""
    log = make()
    log.append("turn.started", trace_id=TRACE_ID)
    log.append("tool.called")
    log.append("turn.completed")
    page = log.read(kinds="turn.*")
    assert [e.kind for e in page.events] == ["turn.started", "turn.completed"]
    assert page.cursor == 3
    traced = log.read(trace_id=int(TRACE_ID, 16))
    assert [e.id for e in traced.events] == [1]
    assert traced.cursor == 3
    assert log.read(since=1, limit=1, kinds=["turn.completed"]).cursor == 3


def test_epochs_differ_between_logs_and_stay_put_within_one(make_any: Callable[[], EventLog]) -> None:
    """Two logs of the same backend never share an epoch, so a reader notices a restart."""
    first, second = make_any(), make_any()
    assert first.epoch != second.epoch
    first.append("tick")
    assert first.read().epoch == first.epoch


# threads and waiting


def test_concurrent_appends_get_unique_dense_ids(make: Factory) -> None:
    """Eight threads appending at once get every id from 1 to the total exactly once."""
    log = make(max_entries=100_000)
    got: list[list[int]] = [[] for _ in range(8)]

    def writer(out: list[int]) -> None:
        out.extend(log.append("tick").id for _ in range(500))

    threads = [threading.Thread(target=writer, args=(out,)) for out in got]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(i for out in got for i in out) == list(range(1, 4001))
    assert ids(log) == list(range(1, 4001))


def test_a_waiting_read_returns_when_an_event_arrives(make: Factory) -> None:
    """read(wait=) blocks until another thread appends, then returns that event."""
    log = make()
    started = threading.Event()
    result: list[Any] = []

    def reader() -> None:
        started.set()
        result.append(log.read(since=0, wait=WAIT))

    thread = threading.Thread(target=reader)
    thread.start()
    started.wait(WAIT)
    log.append("arrived")
    thread.join(WAIT)
    assert [e.kind for e in result[0].events] == ["arrived"]


def test_close_wakes_waiting_readers_for_good(any_log: EventLog) -> None:
    """close() ends a waiting read at once and later waits return immediately."""
    done = threading.Event()

    def reader() -> None:
        any_log.read(since=0, wait=WAIT)
        done.set()

    thread = threading.Thread(target=reader)
    thread.start()
    any_log.close()
    assert done.wait(WAIT)
    assert any_log.closed
    assert any_log.read(since=0, wait=WAIT).events == ()


def test_close_ends_waiting_coroutines_at_once(any_log: EventLog) -> None:
    """close() from another thread ends a waiting read_async and a follow() on every backend."""

    async def scenario() -> list[str]:
        async def following() -> str:
            async for _page in any_log.follow(since=any_log.read().cursor):
                pass
            return "follow ended"

        async def polling() -> str:
            await any_log.read_async(since=any_log.read().cursor, wait=WAIT * 6)
            return "read_async returned"

        readers = [asyncio.ensure_future(following()), asyncio.ensure_future(polling())]
        # The library's logs count their waiting readers; the reference log waits on threads of its
        # own and keeps no count, so there the readers may well come to wait after it is closed.
        waiters = getattr(any_log, "_waiters", None)
        while waiters is not None and waiters.waiting < len(readers):
            await asyncio.sleep(0.01)
        threading.Thread(target=any_log.close).start()
        return list(await asyncio.wait_for(asyncio.gather(*readers), WAIT))

    assert asyncio.run(scenario()) == ["follow ended", "read_async returned"]


def test_read_async_and_follow_deliver_new_events(make: Factory) -> None:
    """An asyncio reader gets the first page, then follows each new event as it comes."""
    log = make()
    log.append("first")

    async def scenario() -> list[str]:
        page = await log.read_async(since=0, wait=WAIT)
        seen = [e.kind for e in page.events]
        threading.Timer(0.01, log.append, args=("second",)).start()
        async for news in log.follow(since=page.cursor):
            seen.extend(e.kind for e in news.events)
            break
        return seen

    assert asyncio.run(asyncio.wait_for(scenario(), WAIT)) == ["first", "second"]


# the batch-write contract, directly or through the adapter


class _SpanEvent:
    def __init__(self, name: str, attributes: dict[str, Any]) -> None:
        self.name = name
        self.attributes = attributes


def test_batches_are_stored_in_order_with_span_events_by_reference(make: Factory) -> None:
    """A batch of entries and span event references lands in order, with hex ids and times in seconds."""
    log = make()
    writer = batch_writer(log)
    assert isinstance(writer, BatchWriter)
    batch: list[Any] = [
        (
            1_700_000_000_500_000_000,
            _SpanEvent("turn.started", {"turn": 1}),
            int(TRACE_ID, 16),
            int(SPAN_ID, 16),
        ),
        ("tool.called", {"tool": "search"}, 1_700_000_001.0, None, None),
    ]
    writer.write_batch(batch)
    stored(writer)
    first, second = log.query()
    assert (first.id, first.kind, first.payload, first.timestamp) == (
        1,
        "turn.started",
        {"turn": 1},
        1_700_000_000.5,
    )
    assert (first.trace_id, first.span_id) == (TRACE_ID, SPAN_ID)
    assert (second.id, second.kind, second.payload) == (2, "tool.called", {"tool": "search"})


def test_the_span_processor_writes_to_every_backend(make: Factory) -> None:
    """A real TracerProvider's span events reach each backend, built-in or not, in order."""
    log = make()
    provider = TracerProvider()
    provider.add_span_processor(EventLogSpanProcessor(log, live_interval=0, span_lifecycle=True))
    with provider.get_tracer("test").start_as_current_span("turn") as span:
        span.add_event("turn.started", {"turn": 1})
        span.add_event("turn.completed", {"turn": 1})
    provider.shutdown()
    events = log.query()
    assert [e.kind for e in events] == ["span.started", "turn.started", "turn.completed", "span.ended"]
    assert {e.trace_id for e in events} == {f"{span.get_span_context().trace_id:032x}"}


def test_a_malformed_batch_item_is_left_out_and_the_rest_stored(make: Factory) -> None:
    """write_batch stores every well-formed item in order; the bad one is named, or counted if queued."""
    log = make()
    writer = batch_writer(log)
    batch: list[Any] = [Entry("first"), ("", {}, None, None, None), Entry("third"), (3,)]
    if isinstance(writer, Flushable):  # queued: nobody to raise to, so it counts
        writer.write_batch(batch)
        stored(writer)
        assert writer.failures == 2  # type: ignore[attr-defined]
    else:
        with pytest.raises(ValueError, match=r"batch\[1\]: .*kind must be a non-empty string"):
            writer.write_batch(batch)
    assert [(e.id, e.kind) for e in log.query()] == [(1, "first"), (2, "third")]


def test_a_backend_of_the_application_own_is_adapted_not_trusted() -> None:
    """batch_writer wraps a log without write_batch, and refuses what is not a log at all."""
    log = ListEventLog()
    writer = batch_writer(log)
    assert writer is not log
    assert isinstance(writer, BatchWriter)
    assert batch_writer(InMemoryEventLog()) is not None
    with pytest.raises(TypeError, match="event_log must be an EventLog, got dict"):
        batch_writer({})  # type: ignore[arg-type]


class CappedLog(ListEventLog):
    """A backend of the application's own that refuses batches of more than two entries."""

    def extend(self, entries: Any) -> range:
        """Refuse large batches, store the others."""
        entries = list(entries)
        if len(entries) > 2:
            raise ValueError("at most 2 entries at a time")
        return super().extend(entries)


def test_the_adapter_stores_one_by_one_what_extend_refuses_as_a_batch() -> None:
    """When extend refuses a whole batch, the adapter stores its entries one by one, losing none."""
    log = CappedLog()
    writer = batch_writer(log)
    writer.write_batch([Entry("a"), Entry("b"), Entry("c")])
    stored(writer)
    assert [e.kind for e in log.query()] == ["a", "b", "c"]
    assert repr(writer).startswith("batch_writer(")


def test_a_full_queue_drops_batches_and_counts_them() -> None:
    """A log of the application's own that cannot keep up never makes the writer wait: batches are dropped."""
    from otel_eventlog.backends._adapter import QueuedWriter

    gate = threading.Event()

    class SlowLog(ListEventLog):
        """A log whose extend waits for the test."""

        def extend(self, entries: Any) -> range:
            """Wait for the gate, then store."""
            gate.wait(WAIT)
            return super().extend(entries)

    log = SlowLog()
    writer = QueuedWriter(log, max_events=2)
    for kind in ("a", "b", "c", "d"):
        writer.write_batch([Entry(kind)])
    gate.set()
    assert writer.flush(WAIT)
    assert writer.dropped >= 1
    assert len(log.query()) + writer.dropped == 4


def test_an_item_without_a_length_is_named_and_the_rest_stored() -> None:
    """A batch item that is not a tuple at all is left out and named, as a malformed one is."""
    log = InMemoryEventLog()
    with pytest.raises(TypeError, match=r"batch\[0\]: expected an Entry or a 5-tuple"):
        log.write_batch([7, Entry("kept")])  # type: ignore[list-item]
    assert [e.kind for e in log.query()] == ["kept"]


def test_a_log_that_always_fails_is_counted_not_raised() -> None:
    """When extend raises whatever it is given, each batch and entry is counted; the writer goes on."""

    class BrokenLog(ListEventLog):
        """A log whose extend always fails."""

        def extend(self, entries: Any) -> range:
            """Fail."""
            raise RuntimeError("the store is down")

    writer = batch_writer(BrokenLog())
    writer.write_batch([Entry("a")])
    writer.write_batch([Entry("b"), Entry("c")])
    stored(writer)
    assert writer.failures == 3  # type: ignore[attr-defined]


def test_a_log_is_truthy_even_when_empty(make: Factory) -> None:
    """`if log:` tells whether there is a log, not whether it holds events."""
    log = make()
    assert len(log) == 0
    assert bool(log) is True
