"""Waiting reads, shared by the backends: long-polls on threads and on asyncio event loops.

A backend keeps a `Waiters` and calls `Waiters.notify` after it stored events, but only when
`Waiters.count` says someone waits, so that an append with no reader waiting pays one attribute test.
Threads wait on a condition variable; coroutines wait on futures of their own event loops, so a waiting
coroutine never blocks its loop and needs no thread of its own.

The writer never wakes the readers itself: `notify` only signals a dispatcher thread (one per log,
started when the first reader waits), which wakes the waiting threads and sends one callback to each
event loop that has waiting coroutines; that callback resolves them on the loop's own thread. So an
append costs the same whether nobody, a thousand threads or a thousand coroutines wait. Coroutines
register on their own loop's thread without a lock, and an asynchronous read sets one timer for its
whole wait, so that a woken reader costs its loop little.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager

from otel_eventlog._checks import check_seconds
from otel_eventlog.errors import ArgumentValueError
from otel_eventlog.event import Page

# How long the dispatcher thread stays when nobody waits, before it ends.
_IDLE_SECONDS = 5.0
# Reads a page from `since` on, without waiting: on the calling thread, or on an event loop.
ReadNow = Callable[[int | None], Page]
ReadNowAsync = Callable[[int | None], Awaitable[Page]]
# Whether the log has news for a reader whose last page was this one.
HasNews = Callable[[Page], bool]
# Whether there is news now.
News = Callable[[], bool]


class Waiters:
    """The readers waiting for a log's next events, and whether the log was closed. Thread-safe."""

    def __init__(self) -> None:
        self.closed = False
        #: Called, with the lock held, whenever a reader starts waiting: a backend whose writers live
        #: in other processes starts what watches them here.
        self.on_wait: Callable[[], None] | None = None
        self.reset_after_fork()

    def reset_after_fork(self) -> None:
        """Forget the parent's readers and dispatcher in a forked child: none of them runs there."""
        self._changed = threading.Condition()
        self._threads = 0
        self._loops: dict[asyncio.AbstractEventLoop, _LoopWaiters] = {}
        self._signal = _new_signal()
        self._dispatcher: threading.Thread | None = None
        #: Nonzero while anyone waits (each waiting thread counts, and each event loop with waiting
        #: coroutines); writers read it without the lock, to skip `notify` when 0.
        self.count = 0

    @property
    def waiting(self) -> int:
        """How many readers wait now: threads and coroutines."""
        return self._threads + sum(len(group.futures) for group in list(self._loops.values()))

    def notify(self) -> None:
        """Have every waiting reader woken. Called by writers after they stored events; O(1)."""
        try:  # noqa: SIM105  # contextlib.suppress would cost the writer a Python-level call
            self._signal.release()  # wakes the dispatcher, if it is not already due to run
        except RuntimeError:  # a signal is pending already: one round wakes everybody
            pass

    def close(self) -> None:
        """Wake every waiting reader for good: later waits return at once."""
        with self._changed:
            self.closed = True
        self.notify()

    def wait(self, news: News, timeout: float) -> None:
        """Block until `news()` is true, the log is closed or `timeout` seconds passed."""
        with self._changed:
            self._ensure_dispatcher()
            self._threads += 1
            self.count += 1
            try:
                self._changed.wait_for(lambda: self.closed or news(), _bounded(timeout))
            finally:
                self._threads -= 1
                self.count -= 1

    async def wait_async(self, news: News, timeout: float) -> None:
        """Like `wait`, without blocking the running event loop."""
        loop = asyncio.get_running_loop()
        deadline = _Deadline()
        seconds = _bounded(timeout)
        timer = None if seconds is None else loop.call_later(seconds, deadline.expire)
        try:
            await self.wait_in_loop(loop, news, deadline)
        finally:
            if timer is not None:
                timer.cancel()

    async def wait_in_loop(self, loop: asyncio.AbstractEventLoop, news: News, deadline: _Deadline) -> None:
        """Wait on the running `loop` until `news()` is true, the log closes or `deadline` expires.

        The caller owns `deadline` and its timer, so that a read that waits several times sets one
        timer, not one per wait. Only the loop's own thread touches its waiting futures: waiting
        takes no lock, but when the loop's first coroutine starts waiting or its last one stops.
        """
        group = self._loops.get(loop)
        if group is None:
            group = self._join(loop)  # counted before `news` is looked at: a writer now signals
        future: asyncio.Future[None] = loop.create_future()
        deadline.future = future
        group.futures[future] = news
        try:
            if not (deadline.expired or self.closed or news()):
                await future
        finally:
            group.futures.pop(future, None)
            if not group.futures:
                self._leave(loop, group)

    def _join(self, loop: asyncio.AbstractEventLoop) -> _LoopWaiters:
        with self._changed:
            self._ensure_dispatcher()
            group = self._loops[loop] = _LoopWaiters(self)
            self.count += 1
            return group

    def _leave(self, loop: asyncio.AbstractEventLoop, group: _LoopWaiters) -> None:
        with self._changed:
            if self._loops.get(loop) is group:
                del self._loops[loop]
                self.count -= 1

    def nobody_waits(self, then: Callable[[], None]) -> bool:
        """If nobody waits, call `then` before anyone can start to, and return True."""
        with self._changed:
            if self.count:
                return False
            then()
            return True

    def _ensure_dispatcher(self) -> None:
        """Start the dispatcher thread if it is not running. Hold `_changed`."""
        if self.on_wait is not None:
            self.on_wait()
        if self._dispatcher is None or not self._dispatcher.is_alive():
            self._dispatcher = threading.Thread(
                target=self._dispatch, name="otel-eventlog-wakeups", daemon=True
            )
            self._dispatcher.start()

    def _dispatch(self) -> None:
        """Wake the readers each time a writer signals; end once nobody has waited for a while."""
        signal = self._signal
        while True:
            if not signal.acquire(timeout=_IDLE_SECONDS):  # taking it takes the pending signal
                with self._changed:
                    if self.count == 0:  # a reader that comes later starts another dispatcher
                        self._dispatcher = None
                        return
                continue
            with self._changed:
                self._changed.notify_all()
                groups = list(self._loops.items())
            for loop, group in groups:
                with contextlib.suppress(RuntimeError):  # that loop is closed: its readers are gone
                    loop.call_soon_threadsafe(group.wake)


class _LoopWaiters:
    """The coroutines of one event loop waiting on a log: their futures, each with what it waits for.

    Touched on that loop's thread only.
    """

    __slots__ = ("futures", "waiters")

    def __init__(self, waiters: Waiters) -> None:
        self.waiters = waiters
        self.futures: dict[asyncio.Future[None], News] = {}

    def wake(self) -> None:
        """Resolve the future of each coroutine that has news now, or of all once the log is closed.

        Runs on the loop's thread. A coroutine whose news is not there (events came, but none it
        reads) is not resumed at all: waking a thousand coroutines to find nothing was what a waiting
        coroutine cost its loop.
        """
        closed = self.waiters.closed
        for future, news in list(self.futures.items()):
            try:
                woken = closed or news()
            except Exception:  # the coroutine's own read, once resumed, raises it where it is seen
                woken = True
            if woken:
                _resolve(future)


class _Deadline:
    """When one asynchronous read stops waiting: its timer resolves whatever future it waits on then."""

    __slots__ = ("expired", "future")

    def __init__(self) -> None:
        self.expired = False
        self.future: asyncio.Future[None] | None = None

    def expire(self) -> None:
        self.expired = True
        if self.future is not None:
            _resolve(self.future)


def _bounded(timeout: float) -> float | None:
    """Return `timeout` as the waits take it: ``None`` (for ever) beyond what a thread can wait."""
    return None if timeout >= threading.TIMEOUT_MAX else timeout


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():  # woken twice, or cancelled: once is enough
        future.set_result(None)


def _new_signal() -> threading.Lock:
    """Return a signal with none pending: a lock held while no writer has signalled since it was taken.

    A writer signals by releasing it, one C call; the dispatcher takes the signal by acquiring it.
    """
    signal = threading.Lock()
    signal.acquire()
    return signal


def check_wait(wait: object) -> float:
    """Return `wait` as seconds, or raise naming it."""
    return check_seconds(wait, "wait", finite=False)


def read_waiting(
    read_now: ReadNow, since: int | None, wait: float, waiters: Waiters, has_news: HasNews
) -> Page:
    """Return the first page after `since` that has news, waiting up to `wait` seconds for it.

    News is an event, a gap (`Page.missed`) or a new epoch. Events that arrive but do not match the
    read's filters move the cursor on and the wait goes on, so a filtered long-poll still returns
    promptly on a match and never re-examines what it skipped.
    """
    page = first = read_now(since)
    deadline = time.monotonic() + wait
    while _no_news(page, first, waiters):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        waiters.wait(lambda: has_news(page), remaining)  # noqa: B023  # waits for this page's news
        page = read_now(page.cursor)
    return page


def _no_news(page: Page, first: Page, waiters: Waiters) -> bool:
    return not page.events and not page.missed and page.epoch == first.epoch and not waiters.closed


async def read_waiting_async(
    read_now: ReadNowAsync,
    since: int | None,
    wait: float,
    waiters: Waiters,
    has_news: HasNews,
    *,
    epoch: str | None = None,
    read_at_once: ReadNow | None = None,
) -> Page:
    """Like `read_waiting`, without blocking the running event loop.

    `epoch` is the log the reader knows, if any: a first page of another epoch is news already.
    `read_at_once` is `read_now` without I/O, if the log has it: then a coroutine is resumed only
    when a read finds news for it (see `_Probe`).
    """
    page = first = await read_now(since)
    if epoch is not None and page.epoch != epoch:
        return page
    if not _no_news(page, first, waiters):
        return page
    loop = asyncio.get_running_loop()
    deadline = _Deadline()
    seconds = _bounded(wait)
    timer = None if seconds is None else loop.call_later(seconds, deadline.expire)  # one per read
    try:
        while _no_news(page, first, waiters) and not deadline.expired:
            if read_at_once is None:
                await waiters.wait_in_loop(loop, lambda: has_news(page), deadline)  # noqa: B023
                page = await read_now(page.cursor)
                continue
            probe = _Probe(read_at_once, page, first, waiters, has_news)
            await waiters.wait_in_loop(loop, probe, deadline)
            page = probe.page if probe.found else read_at_once(probe.page.cursor)
    finally:
        if timer is not None:
            timer.cancel()
    return page


class _Probe:
    """What a coroutine waits for, when its log reads without I/O: news its own read would return.

    Called when the loop is woken, before the coroutine is: it reads on the coroutine's behalf, and
    moves its cursor past events that do not match, so that only a coroutine with news is resumed.
    """

    __slots__ = ("first", "found", "has_news", "page", "read_at_once", "waiters")

    def __init__(
        self, read_at_once: ReadNow, page: Page, first: Page, waiters: Waiters, has_news: HasNews
    ) -> None:
        self.read_at_once, self.page, self.first = read_at_once, page, first
        self.waiters, self.has_news = waiters, has_news
        self.found = False

    def __call__(self) -> bool:
        if self.found:
            return True
        if self.has_news(self.page):  # events came: read them, as the coroutine would
            self.page = self.read_at_once(self.page.cursor)
            self.found = not _no_news(self.page, self.first, self.waiters)
        return self.found


async def follow(
    reading: AbstractAsyncContextManager[ReadNowAsync], since: int | None, waiters: Waiters, has_news: HasNews
) -> AsyncIterator[Page]:
    """Yield each page with news after `since`, as it comes, until the log is closed.

    When the log begins again under the reader (a new epoch: a shared log its store lost), the next
    page holds the new log from its oldest event, and is yielded even if empty, so that the reader
    sees the new epoch; the old cursor means nothing there.
    """
    cursor, epoch = since, None
    at_once = _at_once(reading)
    async with reading as read_now:
        while not waiters.closed:
            page = await read_waiting_async(
                read_now, cursor, math.inf, waiters, has_news, epoch=epoch, read_at_once=at_once
            )
            began_again = epoch is not None and page.epoch != epoch
            if began_again:
                page = await read_now(None)
            epoch, cursor = page.epoch, page.cursor
            if page.events or page.missed or began_again:
                yield page


class _OnTheLoop:
    """Runs a backend's reads that never wait on I/O as coroutines, for the asynchronous readers."""

    __slots__ = ("read_at_once",)

    def __init__(self, read_now: ReadNow) -> None:
        self.read_at_once = read_now

    async def __aenter__(self) -> ReadNowAsync:
        return self._read

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def _read(self, since: int | None) -> Page:
        return self.read_at_once(since)


def _at_once(reading: AbstractAsyncContextManager[ReadNowAsync]) -> ReadNow | None:
    """Return how `reading` reads without I/O, if it does."""
    return reading.read_at_once if isinstance(reading, _OnTheLoop) else None


class WaitingReads:
    """The reading methods every backend shares, on top of its own `_reader` and `_waiters`.

    A backend defines `_reader` (check a read's arguments once, return a function that reads a page
    from a cursor without waiting), `_latest_id` and a `Waiters` in `_waiters`. A backend whose reads
    do I/O also defines `_async_reader`, so that asynchronous reads never block the event loop, and
    `_has_news`, if its epoch can change under a waiting reader.
    """

    __slots__ = ()

    _waiters: Waiters

    def _reader(
        self,
        since: int | None,
        limit: int | None,
        kinds: str | Iterable[str] | None,
        trace_id: str | int | None,
    ) -> ReadNow:
        raise NotImplementedError

    def _async_reader(
        self,
        since: int | None,
        limit: int | None,
        kinds: str | Iterable[str] | None,
        trace_id: str | int | None,
    ) -> AbstractAsyncContextManager[ReadNowAsync]:
        """Check a read's arguments once; return what gives a coroutine reading a page from a cursor."""
        return _OnTheLoop(self._reader(since, limit, kinds, trace_id))

    def _latest_id(self) -> int:
        raise NotImplementedError

    def _has_news(self, page: Page) -> bool:
        """Whether events came after `page`: what a waiting reader waits for."""
        return self._latest_id() > page.cursor

    def read(
        self,
        since: int | None = None,
        limit: int | None = None,
        *,
        kinds: str | Iterable[str] | None = None,
        trace_id: str | int | None = None,
        wait: float = 0,
    ) -> Page:
        """Return a `Page` of the matching events after `since` and where the reader now stands.

        Args:
            since: The reader's cursor: only events with greater ids are returned. ``None`` starts
                at the oldest resident event.
            limit: At most this many events; ``None`` is unlimited.
            kinds: Only events whose kind is one of these names or matches one of these shell-style
                patterns (``"turn.*"``). ``None`` means every kind.
            trace_id: Only events of this trace (32 lower-case hex digits, or OpenTelemetry's int).
            wait: When there is no news (no matching event, nothing missed), wait up to this many
                seconds for some: a long-poll. It returns as soon as a matching event arrives or
                the log is closed.

        Thread-safe. Blocks the calling thread only while it waits.

        Raises:
            TypeError: If an argument has the wrong type.
            ValueError: If `since`, `limit` or `wait` is negative, or a filter is malformed.
        """
        read_now = self._reader(since, limit, kinds, trace_id)
        if not check_wait(wait) or limit == 0:
            return read_now(since)
        return read_waiting(read_now, since, wait, self._waiters, self._has_news)

    async def read_async(
        self,
        since: int | None = None,
        limit: int | None = None,
        *,
        kinds: str | Iterable[str] | None = None,
        trace_id: str | int | None = None,
        wait: float = 0,
    ) -> Page:
        """Like `read`, for asyncio: a long-poll that never blocks the event loop.

        Raises:
            TypeError: If an argument has the wrong type.
            ValueError: If `since`, `limit` or `wait` is negative, or a filter is malformed.
        """
        reading = self._async_reader(since, limit, kinds, trace_id)
        waits = check_wait(wait) and limit != 0
        async with reading as read_now:
            if not waits:
                return await read_now(since)
            return await read_waiting_async(
                read_now, since, wait, self._waiters, self._has_news, read_at_once=_at_once(reading)
            )

    def follow(
        self,
        since: int | None = None,
        limit: int | None = None,
        *,
        kinds: str | Iterable[str] | None = None,
        trace_id: str | int | None = None,
    ) -> AsyncIterator[Page]:
        """Yield, for asyncio, each `Page` with news after `since` as it comes, until `close`.

        ``async for page in log.follow(since=cursor): ...``; each page holds new matching events
        (at most `limit`) or reports missed ones. The loop never blocks the event loop.

        Raises:
            TypeError: If an argument has the wrong type.
            ValueError: If `since` is negative, `limit` is not positive, or a filter is malformed.
        """
        if limit == 0:
            raise ArgumentValueError("limit must be a positive integer or None to follow a log, got 0")
        reading = self._async_reader(since, limit, kinds, trace_id)
        return follow(reading, since, self._waiters, self._has_news)

    def close(self) -> None:
        """Wake every waiting reader and make later waits return at once. Thread-safe.

        The log stays readable and writable: closing is how a server shuts its readers down.
        """
        self._waiters.close()

    @property
    def closed(self) -> bool:
        """Whether `close` was called."""
        return self._waiters.closed

    def __bool__(self) -> bool:
        """Return True, empty or not: ``if get_event_log():`` asks whether there is a log, not events."""
        return True
