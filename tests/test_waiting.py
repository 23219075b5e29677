"""Tests for waiting reads: long-polls on threads, on asyncio, `follow`, and `close`, on every backend."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable

import pytest

from otel_eventlog import DisabledEventLog, Entry, InMemoryEventLog, Page
from tests.helpers import ManualClock

WAIT = 10.0  # seconds: a waiting read that is working returns long before this
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def later(action: Callable[[], object], seconds: float = 0.05) -> threading.Timer:
    """Run `action` on another thread a little later, while the reader waits."""
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def timed(read: Callable[[], Page]) -> tuple[Page, float]:
    start = time.monotonic()
    page = read()
    return page, time.monotonic() - start


def test_a_read_with_news_does_not_wait() -> None:
    """Events already there are returned at once."""
    log = InMemoryEventLog()
    log.append("turn.started")
    page, elapsed = timed(lambda: log.read(since=0, wait=WAIT))
    assert [e.kind for e in page.events] == ["turn.started"]
    assert elapsed < WAIT / 2


def test_a_waiting_read_returns_when_an_event_arrives() -> None:
    """A long-poll past the tip returns the next appended event, long before its time is up."""
    log = InMemoryEventLog()
    log.append("old")
    timer = later(lambda: log.append("turn.started"))
    page, elapsed = timed(lambda: log.read(since=1, wait=WAIT))
    timer.join()
    assert [(e.id, e.kind) for e in page.events] == [(2, "turn.started")]
    assert page.cursor == 2
    assert elapsed < WAIT / 2


@pytest.mark.parametrize(
    "store",
    [
        lambda log: log.extend([Entry("turn.started")]),
        lambda log: log.append("turn.started", trace_id=1, span_id=2),
    ],
)
def test_every_way_of_storing_wakes_a_waiting_read(store: Callable[[InMemoryEventLog], object]) -> None:
    """Batches wake waiting readers as appends do."""
    log = InMemoryEventLog()
    timer = later(lambda: store(log))
    page, elapsed = timed(lambda: log.read(since=0, wait=WAIT))
    timer.join()
    assert [e.kind for e in page.events] == ["turn.started"]
    assert elapsed < WAIT / 2


def test_a_waiting_read_times_out_with_an_empty_page() -> None:
    """With nothing arriving, the read returns an empty page once its time is up."""
    log = InMemoryEventLog()
    log.append("old")
    page, elapsed = timed(lambda: log.read(since=1, wait=0.05))
    assert (page.events, page.cursor, page.missed) == ((), 1, 0)
    assert elapsed >= 0.05


def test_a_filtered_waiting_read_skips_what_does_not_match() -> None:
    """Non-matching events move the cursor on and the read keeps waiting for a match."""
    log = InMemoryEventLog()

    def append_both() -> None:
        log.append("heartbeat")
        log.append("turn.started")

    timer = later(append_both)
    page, elapsed = timed(lambda: log.read(since=0, kinds="turn.*", wait=WAIT))
    timer.join()
    assert [e.kind for e in page.events] == ["turn.started"]
    assert page.cursor == 2
    assert elapsed < WAIT / 2


def test_a_reader_behind_eviction_is_told_at_once() -> None:
    """A gap is news: a read whose cursor fell into evicted history returns without waiting."""
    log = InMemoryEventLog(max_entries=2)
    for _ in range(5):
        log.append("tick")
    page, elapsed = timed(lambda: log.read(since=1, limit=0, wait=WAIT))
    assert page.missed == 2
    assert elapsed < WAIT / 2
    assert log.read(since=1, kinds="none", wait=WAIT).missed == 2


def test_close_wakes_waiting_readers_and_stops_later_waits() -> None:
    """Closing the log ends a long-poll at once; the log stays readable and writable."""
    log = InMemoryEventLog()
    timer = later(log.close)
    page, elapsed = timed(lambda: log.read(since=0, wait=WAIT))
    timer.join()
    assert (page.events, elapsed < WAIT / 2, log.closed) == ((), True, True)
    assert timed(lambda: log.read(since=0, wait=WAIT))[1] < WAIT / 2
    log.append("after")
    assert [e.kind for e in log.read(since=0).events] == ["after"]


def test_the_disabled_log_waits_out_its_time() -> None:
    """Nothing ever arrives in a disabled log: a waiting read returns empty after its time, or on close."""
    log = DisabledEventLog()
    log.append("tick")
    page, elapsed = timed(lambda: log.read(since=0, wait=0.05))
    assert (page.events, page.cursor, elapsed >= 0.05) == ((), 1, True)
    timer = later(log.close)
    assert timed(lambda: log.read(since=1, wait=WAIT))[1] < WAIT / 2
    timer.join()


@pytest.mark.parametrize(
    ("wait", "error", "message"),
    [
        (-1, ValueError, "wait must be a number of seconds >= 0, got -1"),
        (math.nan, ValueError, "wait must be a number of seconds >= 0, got nan"),
        ("soon", TypeError, "wait must be a number of seconds >= 0, got 'soon' \\(str\\)"),
        (True, TypeError, "wait must be a number of seconds >= 0, got True \\(bool\\)"),
    ],
)
def test_bad_waits_are_refused(wait: object, error: type, message: str) -> None:
    """A wrong wait raises naming it, on both forms of read."""
    log = InMemoryEventLog()
    with pytest.raises(error, match=message):
        log.read(wait=wait)  # type: ignore[arg-type]
    with pytest.raises(error, match=message):
        asyncio.run(log.read_async(wait=wait))  # type: ignore[arg-type]


def test_limit_zero_never_waits() -> None:
    """A read that may return nothing returns at once, and cannot be followed."""
    log = InMemoryEventLog()
    assert timed(lambda: log.read(since=0, limit=0, wait=WAIT))[1] < WAIT / 2
    assert asyncio.run(log.read_async(since=0, limit=0, wait=WAIT)).events == ()
    with pytest.raises(ValueError, match="limit must be a positive integer or None to follow a log, got 0"):
        log.follow(limit=0)


# asyncio


def test_read_async_waits_without_blocking_the_loop() -> None:
    """While a coroutine long-polls, other tasks on the same loop keep running."""
    log = InMemoryEventLog()

    async def scenario() -> tuple[Page, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            for _ in range(5):
                ticks += 1
                await asyncio.sleep(0)
            log.append("turn.started")  # from the loop's own thread, once the others had their turn

        reader = asyncio.ensure_future(log.read_async(since=0, wait=WAIT))
        await ticker()
        return await reader, ticks

    page, ticks = asyncio.run(scenario())
    assert ticks == 5
    assert [e.kind for e in page.events] == ["turn.started"]


def test_read_async_is_woken_from_another_thread() -> None:
    """An append on another thread wakes a coroutine waiting on its loop."""
    log = InMemoryEventLog()

    async def scenario() -> tuple[Page, float]:
        timer = later(lambda: log.append("turn.started"))
        start = time.monotonic()
        page = await log.read_async(since=0, wait=WAIT)
        timer.join()
        return page, time.monotonic() - start

    page, elapsed = asyncio.run(scenario())
    assert [e.kind for e in page.events] == ["turn.started"]
    assert elapsed < WAIT / 2


def test_read_async_times_out() -> None:
    """With nothing arriving, read_async returns an empty page when its time is up."""
    log = InMemoryEventLog()
    page = asyncio.run(log.read_async(since=0, wait=0.05))
    assert (page.events, page.cursor) == ((), 0)


def test_follow_yields_pages_as_events_arrive_until_close() -> None:
    """Following the log gets each batch once, gaps included, and ends when the log is closed."""
    log = InMemoryEventLog(max_entries=3)
    log.append("before")

    async def scenario() -> list[tuple[list[str], int]]:
        seen: list[tuple[list[str], int]] = []
        async for page in log.follow(since=1, kinds=["turn.*", "tick"]):
            seen.append(([e.kind for e in page.events], page.missed))
            if len(seen) == 1:
                log.append("heartbeat")  # filtered out: no page for it
                log.append("turn.completed")
            elif len(seen) == 2:
                for _ in range(5):  # more than the log keeps: the next page reports the gap too
                    log.append("tick")
            else:
                log.close()
        return seen

    log.append("turn.started")
    seen = asyncio.run(scenario())
    assert seen == [(["turn.started"], 0), (["turn.completed"], 0), (["tick", "tick", "tick"], 2)]


def test_follow_of_the_disabled_log_ends_on_close() -> None:
    """Following a disabled log yields nothing and ends when it is closed."""
    log = DisabledEventLog()

    async def scenario() -> list[Page]:
        asyncio.get_running_loop().call_later(0.05, log.close)
        return [page async for page in log.follow()]

    assert asyncio.run(scenario()) == []


# the waiters themselves


def test_waiters_return_at_once_when_closed_or_already_past_the_cursor() -> None:
    """A wait that has nothing to wait for does not register at all."""
    from otel_eventlog.backends._waiting import Waiters

    waiters = Waiters()

    async def scenario() -> None:
        await waiters.wait_async(lambda: True, WAIT)
        waiters.close()
        await waiters.wait_async(lambda: False, WAIT)

    start = time.monotonic()
    asyncio.run(scenario())
    assert time.monotonic() - start < WAIT / 2
    assert waiters.count == 0


def test_waiters_woken_twice_before_they_run_wake_once() -> None:
    """Two wake-ups that land before the waiting coroutine runs resolve its future once."""
    from otel_eventlog.backends._waiting import Waiters

    waiters = Waiters()
    latest = 0

    async def scenario() -> None:
        nonlocal latest
        waiting = asyncio.ensure_future(waiters.wait_async(lambda: latest > 0, WAIT))
        await asyncio.sleep(0)  # let it register
        assert waiters.count == 1
        latest = 1
        group = waiters._loops[asyncio.get_running_loop()]
        group.wake()  # as the dispatcher would, twice, before the reader runs
        group.wake()
        await waiting

    asyncio.run(scenario())
    assert waiters.count == 0


def test_the_dispatcher_thread_ends_once_nobody_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The thread that wakes readers stays only while someone waits, and comes back for the next reader."""
    from otel_eventlog.backends import _waiting

    monkeypatch.setattr(_waiting, "_IDLE_SECONDS", 0.01)
    log = InMemoryEventLog()
    timer = threading.Timer(0.05, log.append, args=("tick",))
    timer.start()
    assert log.read(since=0, wait=WAIT).events[0].kind == "tick"
    timer.join()
    dispatcher = log._waiters._dispatcher
    assert dispatcher is not None
    dispatcher.join(WAIT)
    assert not dispatcher.is_alive()
    timer = threading.Timer(0.05, log.append, args=("again",))
    timer.start()
    assert log.read(since=1, wait=WAIT).events[0].kind == "again"
    timer.join()


def test_coroutines_on_one_loop_are_woken_by_one_callback() -> None:
    """Many coroutines waiting on one loop all return when an event arrives from another thread."""
    log = InMemoryEventLog()

    async def scenario() -> list[int]:
        readers = [asyncio.ensure_future(log.read_async(since=0, wait=WAIT)) for _ in range(50)]
        await asyncio.sleep(0.01)  # they register
        threading.Timer(0.01, log.append, args=("tick",)).start()
        pages = await asyncio.gather(*readers)
        return [len(page.events) for page in pages]

    assert asyncio.run(scenario()) == [1] * 50
    assert log._waiters.count == 0


def test_a_closed_event_loop_does_not_stop_the_others_being_woken() -> None:
    """A loop that closed with a reader still registered is passed over; threads are still woken."""
    log = InMemoryEventLog()
    orphan = asyncio.new_event_loop()
    waiting = orphan.create_task(log.read_async(since=0, wait=WAIT))
    orphan.run_until_complete(asyncio.sleep(0.01))  # the reader registers, then its loop stops
    orphan.close()
    timer = threading.Timer(0.05, log.append, args=("tick",))
    timer.start()
    assert log.read(since=0, wait=WAIT).events[0].kind == "tick"
    timer.join()
    del waiting


def test_a_wait_for_ever_is_woken_by_the_next_event() -> None:
    """A coroutine waiting without a time limit sets no timer and wakes on the next append."""
    log = InMemoryEventLog()

    async def scenario() -> int:
        asyncio.get_running_loop().call_soon(log.append, "tick")
        await log._waiters.wait_async(lambda: log._latest_id() > 0, math.inf)
        return log._latest_id()

    assert asyncio.run(asyncio.wait_for(scenario(), WAIT)) == 1


def test_a_reader_outliving_a_reset_leaves_the_new_registry_alone() -> None:
    """A coroutine waiting when the waiters were reset (as after a fork) ends without touching them."""
    from otel_eventlog.backends._waiting import Waiters

    waiters = Waiters()
    latest = 0

    async def scenario() -> None:
        nonlocal latest
        waiting = asyncio.ensure_future(waiters.wait_async(lambda: latest > 0, WAIT))
        await asyncio.sleep(0)
        group = waiters._loops[asyncio.get_running_loop()]
        waiters.reset_after_fork()
        latest = 1
        group.wake()
        await waiting
        assert waiters.count == 0
        assert waiters._loops == {}

    asyncio.run(scenario())


def test_a_deadline_that_expires_before_any_wait_stops_the_first_one() -> None:
    """An expired deadline makes the next wait return at once, with nothing to resolve before it."""
    from otel_eventlog.backends._waiting import Waiters, _Deadline

    waiters, deadline = Waiters(), _Deadline()
    deadline.expire()

    async def scenario() -> None:
        await waiters.wait_in_loop(asyncio.get_running_loop(), lambda: False, deadline)

    asyncio.run(asyncio.wait_for(scenario(), WAIT))
    assert waiters.count == 0


def test_coroutines_are_resumed_only_by_events_they_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Events no waiting coroutine reads wake its loop, not the coroutines; a match resumes each once.

    Each waiting read's own filter is applied on the loop, on its behalf, when the loop is woken; the
    coroutine is resumed only when that read finds news. A resumed coroutine is a resolved future.
    """
    from otel_eventlog.backends import _waiting

    resolved: list[object] = []
    resolve, wake = _waiting._resolve, _waiting._LoopWaiters.wake
    monkeypatch.setattr(_waiting, "_resolve", lambda future: (resolved.append(future), resolve(future)))
    log = InMemoryEventLog()

    async def scenario() -> list[Page]:
        woken = asyncio.Event()

        def noted_wake(group: _waiting._LoopWaiters) -> None:
            wake(group)
            woken.set()

        monkeypatch.setattr(_waiting._LoopWaiters, "wake", noted_wake)
        reads = [log.read_async(since=0, kinds="turn.*", wait=WAIT) for _ in range(100)]
        readers = [asyncio.ensure_future(read) for read in reads]
        while log._waiters.waiting < len(readers):
            await asyncio.sleep(0)
        for _ in range(20):
            log.append("heartbeat")
            await asyncio.wait_for(woken.wait(), WAIT)  # the loop was woken, and read for each reader
            woken.clear()
        assert resolved == []
        assert not any(reader.done() for reader in readers)
        log.append("turn.started")
        return await asyncio.wait_for(asyncio.gather(*readers), WAIT)

    pages = asyncio.run(scenario())
    assert {(tuple(e.kind for e in page.events), page.cursor) for page in pages} == {(("turn.started",), 21)}
    assert len(resolved) == 100
    assert log._waiters.count == 0


def test_a_coroutine_whose_read_fails_on_the_loop_is_resumed_to_raise_it() -> None:
    """A read that raises when the loop reads on a coroutine's behalf resumes it, and it raises there."""

    class Failing(InMemoryEventLog):
        __slots__ = ("fail",)

        def _read_now(self, *args: object, **kwargs: object) -> Page:
            if getattr(self, "fail", False):
                raise RuntimeError("the read failed")
            return super()._read_now(*args, **kwargs)  # type: ignore[arg-type]

    log = Failing()

    async def scenario() -> None:
        reader = asyncio.ensure_future(log.read_async(since=0, kinds="turn.*", wait=WAIT))
        while not log._waiters.waiting:
            await asyncio.sleep(0)
        log.fail = True
        log.append("heartbeat")
        with pytest.raises(RuntimeError, match="the read failed"):
            await asyncio.wait_for(reader, WAIT)

    asyncio.run(scenario())


def test_readers_finding_nothing_in_an_unchanged_log_share_one_page() -> None:
    """The same read (cursor, limit, filter) that finds nothing in an unchanged log is read once.

    Pages with events are read anew each time: a page kept would keep its events' memory alive
    beyond the byte budget. Any change of the log, an eviction by age included, is seen.
    """
    clock = ManualClock()
    log = InMemoryEventLog(ttl_seconds=10, now=clock)
    log.append("turn.started", trace_id=TRACE)
    clock.advance(6)
    log.append("tool.called")
    nothing = log.read(since=1, kinds="turn.*", trace_id=TRACE)
    assert (nothing.events, nothing.cursor) == ((), 2)
    assert log.read(since=1, kinds=["turn.*"], trace_id=int(TRACE, 16)) is nothing
    assert log.read(since=1, kinds="session.*") is not nothing
    found = log.read(since=0, kinds="turn.*")
    assert log.read(since=0, kinds="turn.*") is not found
    log.append("turn.completed", trace_id=TRACE)
    assert [e.kind for e in log.read(since=1, kinds="turn.*", trace_id=TRACE).events] == ["turn.completed"]
    assert log.read(since=3, kinds="turn.*").events == ()
    clock.advance(5)  # the first event is now older than the TTL: evicted when the log is next read
    assert log.read(since=3, kinds="turn.*").missed == 0
    assert log.read(since=0, kinds="session.*").missed == 1
    log.clear()
    assert log.read(since=0, kinds="turn.*").missed == 3


def test_news_found_for_a_coroutine_is_kept_until_it_runs() -> None:
    """Woken again before it runs, a coroutine keeps the page its news was found in, not a later one."""
    from otel_eventlog.backends._waiting import _Probe

    log = InMemoryEventLog()
    read = log._reader(0, None, "turn.*", None)
    first = read(0)
    probe = _Probe(read, first, first, log._waiters, log._has_news)
    assert not probe()
    log.append("turn.started")
    assert probe()
    log.append("turn.completed")
    assert probe()
    assert [e.kind for e in probe.page.events] == ["turn.started"]


def test_a_coroutine_waiting_for_news_that_never_comes_is_ended_by_close() -> None:
    """Whatever a coroutine waits for, closing the log ends its wait at once."""
    from otel_eventlog.backends._waiting import Waiters

    waiters = Waiters()

    async def scenario() -> None:
        waiting = asyncio.ensure_future(waiters.wait_async(lambda: False, WAIT * 6))
        while not waiters.waiting:
            await asyncio.sleep(0)
        threading.Thread(target=waiters.close).start()
        await asyncio.wait_for(waiting, WAIT)

    asyncio.run(scenario())
    assert waiters.count == 0
