"""`InMemoryEventLog`: the embedded default, a ring buffer with TTL, max-entries and max-bytes eviction.

The resident events always have contiguous ids, oldest first, so the event with id ``n`` lives at a slot
computed from ``n`` alone: finding a reader's cursor is O(1) and a read costs O(events returned). Each
append takes the lock once and does work in proportion to its payload (each item is looked at once, to
charge and cut it), plus the evictions it causes. The ring has at most ``max_entries`` slots and each
event is charged its size (`otel_eventlog._sizing`), so memory stays bounded by ``max_entries`` events
and by ``max_bytes``. An event is built (and redacted) when it is first read, and kept in its slot.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from otel_eventlog import _defaults, _forks
from otel_eventlog import redaction as _redaction
from otel_eventlog.backends._common import (
    Bounded,
    Row,
    Stored,
    batch_rows,
    check_append,
    check_clock,
    check_cursor,
    check_entries,
    check_redaction,
    event_filter,
    fit_rows,
    span_event_row,
)
from otel_eventlog.backends._waiting import Waiters, WaitingReads
from otel_eventlog.event import BatchItem, EntryLike, Event, Page
from otel_eventlog.redaction import Redaction

__all__ = ["InMemoryEventLog"]

_new_event = tuple.__new__
_EVENT_FIELDS = len(Event._fields)
# Built events stored back per taking of the lock.
_KEEP_CHUNK = 64
# Empty pages kept for the readers that ask the same again before the log changes.
_PAGES_KEPT = 64
# What a page is read for: the cursor, the limit and the filter (filters are shared: see `event_filter`).
_PageKey = tuple[int | None, int | None, Callable[[Event], bool] | None]
# What a slot holds: what was stored, until a reader has built its event; then the event.
Kept = Stored | Event
# Filtered reads build events in chunks, so that a read stopped by its limit builds few beyond it.
_SCAN_CHUNK = 512


class InMemoryEventLog(Bounded, WaitingReads):
    """A bounded, thread-safe, in-process event log.

    Events are evicted oldest first when more than `max_entries` are resident, when together they
    would cost more than `max_bytes`, and once they have been resident for longer than `ttl_seconds`
    (judged by the clock at append time, swept on every append and read). Each string value is cut to
    `max_value_bytes` as it is stored, the cut marked (``"...[1032192 bytes truncated]"``).

    Args:
        ttl_seconds: How long an event stays resident, in seconds; ``math.inf`` keeps events until
            `max_entries` pushes them out. ``None`` or a non-positive value means
            `DEFAULT_TTL_SECONDS` (the latter with a logged warning).
        max_entries: How many events stay resident at most. ``None`` or a non-positive value means
            `DEFAULT_MAX_ENTRIES` (the latter with a logged warning).
        max_bytes: How many bytes the resident events may cost together, as `otel_eventlog._sizing`
            estimates them; the newest event is always kept, cut to fit. ``None`` or a non-positive
            value means `DEFAULT_MAX_BYTES` (the latter with a logged warning).
        max_value_bytes: How many bytes (UTF-8) of one string or bytes value are kept; ``None`` or a
            non-positive value means `DEFAULT_MAX_VALUE_BYTES` (the latter with a logged warning).
        now: The clock, returning seconds since the epoch. It is called with the log's lock held.
        redaction: What readers never see; by default `otel_eventlog.redaction.Redaction` with its
            default key words. Applied as events are read: an append pays nothing for it.

    Raises:
        ArgumentTypeError: If `ttl_seconds` is not a number or `max_entries`, `max_bytes` or
            `max_value_bytes` not an integer.
        ArgumentValueError: If `ttl_seconds` is NaN.
    """

    __slots__ = (
        "__weakref__",
        "_allocated",
        "_bytes",
        "_cleared",
        "_epoch",
        "_expired",
        "_last_id",
        "_lock",
        "_next_expiry",
        "_now",
        "_overweight",
        "_pages",
        "_records",
        "_redaction",
        "_size",
        "_sizes",
        "_stamps",
        "_truncated",
        "_waiters",
    )

    def __init__(
        self,
        ttl_seconds: float | None = _defaults.TTL_SECONDS,
        max_entries: int | None = _defaults.MAX_ENTRIES,
        *,
        max_bytes: int | None = _defaults.MAX_BYTES,
        max_value_bytes: int | None = _defaults.MAX_VALUE_BYTES,
        now: Callable[[], float] = time.time,
        redaction: Redaction | None = None,
    ) -> None:
        self._redaction = _redaction.DEFAULT if redaction is None else check_redaction(redaction)
        self._set_bounds(ttl_seconds, max_entries, max_bytes, max_value_bytes, self._redaction)
        self._now = check_clock(now)
        self._epoch = secrets.token_hex(8)
        self._lock = threading.Lock()
        self._waiters = Waiters()
        _forks.track(self)
        self._last_id = 0
        # The ring: the event with id n lives in slot n % max_entries: its row (the fields of its `Event`
        # but the id, which the slot implies; once read, the `Event` itself) in `_records`, the clock
        # reading when it was appended in `_stamps` and what it costs in bytes in `_sizes` (0 once it
        # is evicted). The resident events are the newest `_size`; together they cost `_bytes`. The
        # lists grow, doubling, as slots are first used (`_allocated` of them so far), so that a large
        # max_entries costs nothing until events arrive.
        self._records: list[Kept | None] = []
        self._stamps: list[float] = []
        self._sizes: list[int] = []
        self._allocated = 0
        self._bytes = 0
        self._expired = 0  # events evicted by age, so far
        self._overweight = 0  # events evicted by max_bytes, so far
        self._cleared = 0  # events dropped by clear(), so far
        self._truncated = 0  # values cut to max_value_bytes (or to fit max_bytes), so far
        self._size = 0
        # When the oldest resident event expires. It may run early (capacity eviction moves the oldest
        # on without updating it), which costs one needless sweep, never a missed one.
        self._next_expiry = math.inf
        # The empty pages read since the log last changed, by what was asked (cursor, limit, filter):
        # readers that wait on the same filter from the same cursor, woken by an event that does not
        # match it, share one read.
        self._pages: tuple[tuple[int, int], dict[_PageKey, Page]] = ((0, 0), {})

    @property
    def epoch(self) -> str:
        """An identifier of this log instance, random and fixed for its lifetime."""
        return self._epoch

    def append(
        self,
        kind: str,
        payload: Mapping[str, Any] | None = None,
        *,
        timestamp: float | None = None,
        trace_id: str | int | None = None,
        span_id: str | int | None = None,
    ) -> Event:
        """Store an event and return it with its id.

        Thread-safe; takes the lock once, and waits on a reader only while it copies out its page.

        Args:
            kind: The event's name, such as ``"turn.started"``.
            payload: The event's attributes; the log keeps a shallow copy, long values cut to
                `max_value_bytes`. ``None`` means ``{}``.
            timestamp: When the event happened, in seconds since the epoch; by default, now.
            trace_id: The trace id of the span the event belongs to: 32 lower-case hex digits (W3C),
                or the int of OpenTelemetry's ``SpanContext``. Stored in the hex form.
            span_id: The span id of the span the event belongs to: 16 lower-case hex digits, or the
                int of OpenTelemetry's ``SpanContext``. Stored in the hex form.

        Raises:
            TypeError: If an argument has the wrong type; nothing is stored.
            ValueError: If `kind` is empty or an id or the timestamp is malformed; nothing is stored.
        """
        now = self._now()
        row: Row
        if (  # the common case: nothing else to check
            type(kind) is str
            and kind
            and type(payload) is dict
            and timestamp is None
            and trace_id is None
            and span_id is None
        ):
            payload = payload.copy()
            size, cut = self._limits.charge(payload), 0
            if size < 0:  # not only text and numbers, or a lot of it: measured, and cut to fit
                payload, size, cut = self._limits.measure(payload)
            row = (now, kind, payload, None, None)
        else:
            row = check_append(kind, payload, timestamp, trace_id, span_id, now=now)
            payload, size, cut = self._limits.fit(row[2])
            row = (row[0], row[1], payload, row[3], row[4])
        # Under the GIL a thread can only be switched out at a call or a backward jump. The locked
        # section below makes neither (but for the rare sweep), so the lock is never held by a thread
        # waiting for the GIL: that is what keeps concurrent writers from convoying on it. That is why
        # the row is built before the lock is taken and the `Event` after it is released.
        with self._lock:
            if now > self._next_expiry:
                self._evict_expired(now)
            event_id = self._last_id + 1
            self._last_id = event_id
            slot = event_id % self._max_entries
            if slot >= self._allocated:
                self._grow(slot + 1)
            self._records[slot] = row
            self._stamps[slot] = now
            sizes = self._sizes
            weight = self._bytes + size - sizes[slot]  # the slot's event is evicted, if it was resident
            sizes[slot] = size
            self._bytes = weight
            if self._size < self._max_entries:
                if not self._size:
                    self._next_expiry = now + self._ttl_seconds
                self._size += 1
            if weight > self._max_bytes or cut:
                self._evict_overweight(cut)
        if self._waiters.count:
            self._waiters.notify()
        if row[0] is now and row[3] is None and row[4] is None:  # the common row: no unpacking
            return _new_event(Event, (event_id, now, kind, payload, None, None))
        return _new_event(Event, (event_id, *row))

    def extend(self, entries: Iterable[EntryLike]) -> range:
        """Store several events, in order, with consecutive ids, and return their ids.

        All or nothing: every entry is checked first, and if one is malformed nothing is stored and no
        id is used. Thread-safe; takes the lock once for the whole batch, which makes it several
        times cheaper per event than `append`.

        Args:
            entries: `Entry` tuples (or plain 5-tuples in the same order), the arguments of `append`.

        Returns:
            The ids given to the entries, in order: ``range(first, last + 1)``.

        Raises:
            TypeError: If `entries` or an entry has the wrong type, naming the entry by its index.
            ValueError: If an entry has a wrong value, naming the entry by its index.
        """
        now = self._now()
        rows: list[Stored] = check_entries(entries, now)  # type: ignore[assignment]  # rows are Stored
        return self._store(rows, now)

    def write_batch(self, batch: list[BatchItem]) -> None:
        """Store a batch from the capture side, in order, with consecutive ids; the `BatchWriter` contract.

        Span events are kept by reference and made into `Event`s when read; entries' payload dicts are
        kept as handed over. Thread-safe; takes the lock once for the whole batch; no I/O.

        Raises:
            TypeError: After storing the rest, if an item has the wrong type, naming the first such.
            ValueError: After storing the rest, if an item has a wrong value, naming the first such.
        """
        now = self._now()
        stored, error = batch_rows(batch, now)
        self._store(stored, now)
        if error is not None:
            raise error

    def _store(self, rows: list[Stored], now: float) -> range:
        """Store checked rows with consecutive ids, the clock reading `now`, and return their ids."""
        count = len(rows)
        capacity = self._max_entries
        if count > capacity:  # the oldest of the batch would be evicted at once
            rows = rows[-capacity:]
        kept = len(rows)
        sizes, cut = fit_rows(rows, self._limits)
        weight = sum(sizes)
        stamps = [now] * kept if kept > 1 else None
        # As in `append`, the locked section makes no Python-level call and no backward jump.
        with self._lock:
            if now > self._next_expiry:
                self._evict_expired(now)
            first = self._last_id + 1
            self._last_id += count
            start = (first + count - kept) % capacity
            end = start + kept
            if end > self._allocated:
                self._grow(end)
            if stamps is None:  # one row, as a logging handler writes them: no slices to make
                if kept:
                    self._records[start] = rows[0]
                    self._stamps[start] = now
                    weight -= self._sizes[start]  # the slot's event is evicted, if it was resident
                    self._sizes[start] = sizes[0]
            elif end <= capacity:
                self._records[start:end] = rows
                self._stamps[start:end] = stamps
                if self._size + kept > capacity:  # resident events are overwritten: uncharge them
                    weight -= sum(self._sizes[start:end])
                self._sizes[start:end] = sizes
            else:  # the batch wraps around the end of the ring
                split = capacity - start
                self._records[start:] = rows[:split]
                self._records[: end - capacity] = rows[split:]
                self._stamps[start:] = stamps[:split]
                self._stamps[: end - capacity] = stamps[split:]
                weight -= sum(self._sizes[start:]) + sum(self._sizes[: end - capacity])
                self._sizes[start:] = sizes[:split]
                self._sizes[: end - capacity] = sizes[split:]
            if count and not self._size:
                self._next_expiry = now + self._ttl_seconds
            size = self._size + count
            self._size = size if size < capacity else capacity
            self._bytes += weight
            if self._bytes > self._max_bytes or cut:
                self._evict_overweight(cut)
        if self._waiters.count:
            self._waiters.notify()
        return range(first, first + count)

    def query(self, since: int | None = None, limit: int | None = None) -> list[Event]:
        """Return the resident events with ids greater than `since`, ascending, at most `limit`.

        `since` at or past the newest id gives ``[]``; a `since` that points into evicted history
        gives the resident tail. ``limit=None`` is unlimited and ``limit=0`` gives ``[]``.
        Thread-safe; costs O(events returned).

        Raises:
            TypeError: If `since` or `limit` is not an integer or ``None``.
            ValueError: If `since` or `limit` is negative.
        """
        return list(self.read(since, limit).events)

    def _latest_id(self) -> int:
        return self._last_id

    def _reader(
        self,
        since: int | None,
        limit: int | None,
        kinds: str | Iterable[str] | None,
        trace_id: str | int | None,
    ) -> Callable[[int | None], Page]:
        """Check a read's arguments once; return what reads a page from a cursor without waiting."""
        check_cursor(since, limit)
        accept = event_filter(kinds, trace_id)
        return lambda cursor: self._read_now(cursor, limit, accept)

    def _read_now(self, since: int | None, limit: int | None, accept: Callable[[Event], bool] | None) -> Page:
        key = (since, limit, accept)
        with self._lock:
            self._sweep()
            last = self._last_id
            first = last - self._size + 1  # the oldest resident id, or last + 1 when none is
            # The resident events are those from `first` to `last`, each immutable: the same read of
            # the same ids gives the same page.
            state, pages = self._pages
            if state != (last, first):
                state, pages = (last, first), {}
                self._pages = (state, pages)
            elif key in pages:
                return pages[key]
            if since is None:
                start, missed = first, 0
            else:
                start, missed = max(since + 1, first), max(0, first - since - 1)
            stop = last if accept is not None or limit is None else min(last, start + limit - 1)
            rows = self._rows(start, stop)
            oldest = first if self._size else None
        # The events are built once the lock is released: rows are immutable once stored.
        if accept is None:
            events = _events(start, rows, self._redaction)
            cursor = max(stop, start - 1)
        else:
            events, cursor = _scan(start, rows, limit, accept, self._redaction)
        if rows and not len(rows[0]) == len(rows[-1]) == _EVENT_FIELDS:  # some read for the first time
            self._keep_built(start, rows, events)
        page = Page(
            events=tuple(events),
            cursor=cursor,
            missed=missed,
            oldest_id=oldest,
            latest_id=last,
            epoch=self._epoch,
        )
        # Only pages without events are kept: they hold no memory the byte budget does not count, and
        # they are what readers waiting on a filter read, again and again, as events they skip arrive.
        # Once the log changes, `pages` is no longer the log's, and what goes into it no longer matters.
        if not events and len(pages) < _PAGES_KEPT:
            pages[key] = page
        return page

    def _keep_built(self, start: int, rows: list[Kept], events: list[Event]) -> None:
        """Store the events built from `rows` (ids from `start` on) in their place, for the next readers.

        An event replaces its row only if that id is still resident and its slot still holds that
        row, so that a row evicted, cleared or written again meanwhile is left alone. Not done when
        redaction rewrites text: a redacted string can be longer than the one it was charged as.
        The lock is taken for a few events at a time, so that writers wait for no more than that.
        """
        if self._redaction.rewrites_text:
            return
        capacity = self._max_entries
        fresh = [
            (event.id, event.id % capacity, rows[event.id - start], event)
            for event in events
            if len(rows[event.id - start]) != _EVENT_FIELDS
        ]
        for chunk in range(0, len(fresh), _KEEP_CHUNK):
            with self._lock:
                first, records = self._last_id - self._size + 1, self._records
                for event_id, slot, row, event in fresh[chunk : chunk + _KEEP_CHUNK]:
                    if event_id >= first and records[slot] is row:
                        records[slot] = event

    def _locks_held_across_fork(self) -> tuple[threading.Lock, ...]:
        return (self._lock,)

    def _after_fork_in_child(self) -> None:  # nothing to resume
        """Give the child's copy of the log a working lock, no parent readers, and its own epoch."""
        self._lock = threading.Lock()
        self._waiters.reset_after_fork()
        self._epoch = secrets.token_hex(8)
        self._pages = ((0, 0), {})  # pages of the parent's epoch

    def clear(self) -> None:
        """Drop every resident event; ids keep counting from where they were. Thread-safe."""
        with self._lock:
            self._records, self._stamps, self._sizes, self._allocated = [], [], [], 0
            self._cleared += self._size
            self._size = self._bytes = 0
            self._next_expiry = math.inf

    def stats(self) -> dict[str, int]:
        """Return the log's counters: what was appended, what is resident, and where the rest went.

        ``appended`` (ids handed out), ``resident``, ``resident_bytes`` (what the resident events cost,
        as estimated), ``evicted_by_count`` (pushed out by ``max_entries``), ``evicted_by_ttl``,
        ``evicted_by_bytes`` (pushed out by ``max_bytes``), ``cleared``, ``truncated`` (values cut to
        ``max_value_bytes`` or to fit ``max_bytes``), ``waiting_readers`` and ``redacted`` (values the
        log's redaction replaced, once per event, for every log that shares it). Thread-safe; O(1).
        """
        with self._lock:
            self._sweep()
            appended, resident, weight = self._last_id, self._size, self._bytes
            expired, overweight, cleared = self._expired, self._overweight, self._cleared
            truncated = self._truncated
        return {
            "appended": appended,
            "resident": resident,
            "resident_bytes": weight,
            "evicted_by_count": appended - resident - expired - overweight - cleared,
            "evicted_by_ttl": expired,
            "evicted_by_bytes": overweight,
            "cleared": cleared,
            "truncated": truncated,
            "waiting_readers": self._waiters.waiting,
            "redacted": self._redaction.redacted,
        }

    def __len__(self) -> int:
        """Return how many events are resident, after sweeping expired ones."""
        with self._lock:
            self._sweep()
            return self._size

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(ttl_seconds={self._ttl_seconds!r}, "
            f"max_entries={self._max_entries!r}, max_bytes={self._max_bytes!r}, latest_id={self._last_id})"
        )

    # The methods below run with the lock held.

    def _grow(self, slots: int) -> None:
        """Make room for at least `slots` slots (at most `max_entries`), doubling to keep growth rare."""
        size = min(self._max_entries, max(slots, 2 * self._allocated, 16))
        self._records.extend([None] * (size - self._allocated))
        self._stamps.extend([0.0] * (size - self._allocated))
        self._sizes.extend([0] * (size - self._allocated))
        self._allocated = size

    def _sweep(self) -> None:
        now = self._now()
        if now > self._next_expiry:
            self._evict_expired(now)

    def _evict_expired(self, now: float) -> None:
        ttl, stamps = self._ttl_seconds, self._stamps
        resident = self._size
        # The seed's rule: an event goes once its age is greater than the TTL, the age computed as such
        # (`stamp + ttl <= now` would round the sum and evict some events a little early).
        while self._size and now - stamps[(self._last_id - self._size + 1) % self._max_entries] > ttl:
            self._evict_oldest()
        self._expired += resident - self._size
        oldest = (self._last_id - self._size + 1) % self._max_entries
        self._next_expiry = stamps[oldest] + ttl if self._size else math.inf

    def _evict_overweight(self, cut: int) -> None:
        """Count `cut` values cut; evict the oldest events until the rest fit `max_bytes`, but the newest."""
        self._truncated += cut
        resident = self._size
        while self._bytes > self._max_bytes and self._size > 1:
            self._evict_oldest()
        self._overweight += resident - self._size

    def _evict_oldest(self) -> None:
        slot = (self._last_id - self._size + 1) % self._max_entries
        self._records[slot] = None  # let the payload go now, not when the slot is reused
        self._bytes -= self._sizes[slot]
        self._sizes[slot] = 0
        self._size -= 1

    def _rows(self, start: int, stop: int) -> list[Kept]:
        """Return the rows of the resident events with ids from `start` to `stop`, both included."""
        count = stop - start + 1
        if count <= 0:
            return []
        capacity = self._max_entries
        first_slot = start % capacity
        end_slot = first_slot + count
        if end_slot <= capacity:
            return self._records[first_slot:end_slot]  # type: ignore[return-value]  # resident: no None
        return self._records[first_slot:] + self._records[: end_slot - capacity]  # type: ignore[return-value]


def _events(first_id: int, rows: list[Kept], redaction: Redaction) -> list[Event]:
    """Return the events whose rows are `rows`, the first with id `first_id`, redacted.

    A row that a reader built before is its event already: it is returned as it is.
    """
    apply = redaction.apply
    events: list[Event] = []
    for event_id, stored in enumerate(rows, first_id):
        if len(stored) == _EVENT_FIELDS:
            events.append(stored)  # type: ignore[arg-type]  # an Event
            continue
        row = span_event_row(stored) if len(stored) == 4 else stored
        time, kind, payload, trace_id, span_id = row  # type: ignore[misc]
        events.append(_new_event(Event, (event_id, time, kind, apply(payload), trace_id, span_id)))
    return events


def _scan(
    start: int, rows: list[Kept], limit: int | None, accept: Callable[[Event], bool], redaction: Redaction
) -> tuple[list[Event], int]:
    """Return the accepted events among `rows` (ids from `start` on), at most `limit`, and the cursor."""
    found: list[Event] = []
    if limit == 0:
        return found, start - 1
    for offset in range(0, len(rows), _SCAN_CHUNK):
        for event in _events(start + offset, rows[offset : offset + _SCAN_CHUNK], redaction):
            if accept(event):
                found.append(event)
                if len(found) == limit:
                    return found, event.id
    return found, start + len(rows) - 1
