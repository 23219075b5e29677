"""Helpers shared by the tests: a manual clock, and an event log backend written against the public API.

`ListEventLog` is what an application's own backend could look like: it imports nothing private, keeps
the `otel_eventlog.EventLog` protocol, and joins the backend conformance suite unchanged. It does not
implement `BatchWriter`, so the capture side reaches it through the adapter that `batch_writer` makes.
"""

from __future__ import annotations

import asyncio
import fnmatch
import http.server
import math
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from otel_eventlog import Event, Page
from otel_eventlog.backends import Observable


class ManualClock:
    """A clock that only moves when a test moves it."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        """Return the current reading."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by `seconds`."""
        self.now += seconds


class ListEventLog:
    """A plain, obviously correct event log: a list behind a condition variable, scanned on every read."""

    def __init__(
        self,
        ttl_seconds: float | None = None,
        max_entries: int | None = None,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._ttl = 3600.0 if ttl_seconds is None else ttl_seconds
        self._max = 10_000 if max_entries is None else max_entries
        self._now = now
        self._epoch = uuid.uuid4().hex[:16]
        self._changed = threading.Condition()
        self._events: list[tuple[float, Event]] = []  # (appended at, event), oldest first
        self._last_id = 0
        self._closed = False

    @property
    def epoch(self) -> str:
        """This instance's identifier."""
        return self._epoch

    @property
    def closed(self) -> bool:
        """Whether `close` was called."""
        return self._closed

    def append(
        self,
        kind: str,
        payload: Mapping[str, Any] | None = None,
        *,
        timestamp: float | None = None,
        trace_id: str | int | None = None,
        span_id: str | int | None = None,
    ) -> Event:
        """Store one event."""
        return self._store([(kind, payload, timestamp, trace_id, span_id)])[0]

    def extend(self, entries: Iterable[tuple[Any, ...]]) -> range:
        """Store several events, all or nothing."""
        if isinstance(entries, (str, bytes, Mapping)):
            raise TypeError(f"entries must be an iterable of Entry tuples, got {type(entries).__name__}")
        stored = self._store(list(entries), numbered=True)
        return (
            range(stored[0].id, stored[-1].id + 1) if stored else range(self._last_id + 1, self._last_id + 1)
        )

    def _store(self, entries: list[tuple[Any, ...]], *, numbered: bool = False) -> list[Event]:
        now = self._now()
        checked = []
        for index, entry in enumerate(entries):
            try:
                checked.append(_check(entry, now))
            except (TypeError, ValueError) as error:
                if not numbered:
                    raise
                raise type(error)(f"entries[{index}]: {error}") from None
        with self._changed:
            self._expire(now)
            events = []
            for fields in checked:
                self._last_id += 1
                event = Event(self._last_id, *fields)
                self._events.append((now, event))
                events.append(event)
            del self._events[: max(0, len(self._events) - self._max)]
            self._changed.notify_all()
        return events

    def query(self, since: int | None = None, limit: int | None = None) -> list[Event]:
        """The resident events after `since`, at most `limit`."""
        return list(self.read(since, limit).events)

    def read(
        self,
        since: int | None = None,
        limit: int | None = None,
        *,
        kinds: str | Iterable[str] | None = None,
        trace_id: str | int | None = None,
        wait: float = 0,
    ) -> Page:
        """A page of the matching events after `since`, waiting up to `wait` seconds for news."""
        for name, value in (("since", since), ("limit", limit)):
            if value is not None and (type(value) is not int or value < 0):
                raise (TypeError if type(value) is not int else ValueError)(
                    f"{name} must be a non-negative integer"
                )
        if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not wait >= 0:
            raise ValueError(f"wait must be a number of seconds >= 0, got {wait!r}")
        patterns = [kinds] if isinstance(kinds, str) else None if kinds is None else list(kinds)
        trace = _hex(trace_id, 32, "trace_id")
        deadline = time.monotonic() + wait
        cursor = since
        with self._changed:
            while True:
                page = self._page(cursor, limit, patterns, trace)
                remaining = deadline - time.monotonic()
                if page.events or page.missed or self._closed or remaining <= 0 or limit == 0:
                    return page
                cursor = page.cursor
                self._changed.wait(remaining)

    def _page(self, since: int | None, limit: int | None, kinds: list[str] | None, trace: str | None) -> Page:
        self._expire(self._now())
        oldest = self._events[0][1].id if self._events else None
        first = self._last_id + 1 if oldest is None else oldest
        missed = 0 if since is None else max(0, first - since - 1)
        found: list[Event] = []
        cursor = max(since or 0, first - 1)
        for _, event in self._events:
            if since is not None and event.id <= since:
                continue
            if limit is not None and len(found) >= limit:
                break
            cursor = event.id
            if (kinds is None or any(fnmatch.fnmatchcase(event.kind, k) for k in kinds)) and (
                trace is None or event.trace_id == trace
            ):
                found.append(event)
        if limit is None or len(found) < limit:
            cursor = max(cursor, self._last_id)
        return Page(tuple(found), cursor, missed, oldest, self._last_id, self._epoch)

    async def read_async(
        self,
        since: int | None = None,
        limit: int | None = None,
        *,
        kinds: str | Iterable[str] | None = None,
        trace_id: str | int | None = None,
        wait: float = 0,
    ) -> Page:
        """Like `read`, on a worker thread so that the event loop never blocks."""
        return await asyncio.to_thread(self.read, since, limit, kinds=kinds, trace_id=trace_id, wait=wait)

    async def follow(
        self,
        since: int | None = None,
        limit: int | None = None,
        *,
        kinds: str | Iterable[str] | None = None,
        trace_id: str | int | None = None,
    ) -> AsyncIterator[Page]:
        """Each page with news, until `close`."""
        cursor = since
        while not self._closed:
            page = await self.read_async(cursor, limit, kinds=kinds, trace_id=trace_id, wait=0.05)
            cursor = page.cursor
            if page.events or page.missed:
                yield page

    def close(self) -> None:
        """Wake every waiting reader for good."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def clear(self) -> None:
        """Drop every resident event."""
        with self._changed:
            self._events.clear()

    def __bool__(self) -> bool:
        """True: a log, empty or not."""
        return True

    def __len__(self) -> int:
        """How many events are resident."""
        with self._changed:
            self._expire(self._now())
            return len(self._events)

    def _expire(self, now: float) -> None:
        while self._events and now - self._events[0][0] > self._ttl:
            del self._events[0]


def _check(entry: tuple[Any, ...], now: float) -> tuple[Any, ...]:
    if not isinstance(entry, tuple) or len(entry) != 5:
        raise TypeError(f"expected an Entry or a 5-tuple like it, got {entry!r}")
    kind, payload, timestamp, trace_id, span_id = entry
    if not isinstance(kind, str):
        raise TypeError(f"kind must be a non-empty string, got {type(kind).__name__}")
    if not kind:
        raise ValueError("kind must be a non-empty string")
    if payload is not None and not isinstance(payload, Mapping):
        raise TypeError(f"payload must be a mapping or None, got {type(payload).__name__}")
    if timestamp is not None and (isinstance(timestamp, bool) or not isinstance(timestamp, (int, float))):
        raise TypeError(f"timestamp must be a number of seconds, got {type(timestamp).__name__}")
    if timestamp is not None and not math.isfinite(timestamp):
        raise ValueError(f"timestamp must be a finite number of seconds, got {timestamp!r}")
    return (
        now if timestamp is None else timestamp,
        kind,
        dict(payload or {}),
        _hex(trace_id, 32, "trace_id"),
        _hex(span_id, 16, "span_id"),
    )


def _hex(value: str | int | None, digits: int, name: str) -> str | None:
    if value is None:
        return None
    if type(value) is int and 0 <= value < 1 << (4 * digits):
        return f"{value:0{digits}x}"
    if isinstance(value, str) and len(value) == digits and all(c in "0123456789abcdef" for c in value):
        return value
    raise (ValueError if isinstance(value, (str, int)) else TypeError)(
        f"{name} must be {digits} lower-case hex digits"
    )


@contextmanager
def serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve `handler` on a free loopback port, on a thread of its own; yield its URL, ending in ``/``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def until_a_reader_waits(log: Observable, timeout: float = 30.0) -> None:
    """Return once a reader waits on `log`: the only sign of it is the count in its stats."""
    deadline = time.monotonic() + timeout
    while log.stats()["waiting_readers"] == 0:
        assert time.monotonic() < deadline, "no reader came to wait"
        time.sleep(0.01)
