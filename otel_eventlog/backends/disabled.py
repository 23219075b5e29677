"""`DisabledEventLog`: the ``disabled`` backend, which keeps nothing but still hands out ids."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from otel_eventlog import _forks
from otel_eventlog.backends._common import (
    batch_rows,
    check_append,
    check_cursor,
    check_entries,
    event_filter,
)
from otel_eventlog.backends._waiting import Waiters, WaitingReads
from otel_eventlog.event import BatchItem, EntryLike, Event, Page
from otel_eventlog.redaction import Redaction

__all__ = ["DisabledEventLog"]


class DisabledEventLog(WaitingReads):
    """An event log that retains nothing.

    `append` still validates its arguments and returns an `Event` with a monotonic id, so code that
    propagates ids keeps working when the event log is switched off; `query()` is always ``[]``.
    Readers are told nothing was missed: with the log off, there was nothing for them to keep up with.
    A waiting read waits out its time (or until `close`) and returns an empty page.

    Args:
        now: The clock that stamps appended events, returning seconds since the epoch.
        redaction: Accepted for the same signature as the other backends; nothing is kept, so
            nothing is ever shown to a reader.
    """

    __slots__ = ("__weakref__", "_epoch", "_last_id", "_lock", "_now", "_waiters")

    def __init__(self, *, now: Callable[[], float] = time.time, redaction: Redaction | None = None) -> None:
        self._now = now
        self._epoch = secrets.token_hex(8)
        self._lock = threading.Lock()
        self._last_id = 0
        self._waiters = Waiters()  # a waiting read waits out its time: nothing ever arrives
        _forks.track(self)

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
        """Return an `Event` with the next id without storing it. Thread-safe.

        Raises:
            TypeError: If an argument has the wrong type.
            ValueError: If `kind` is empty or an id or the timestamp is malformed.
        """
        row = check_append(kind, payload, timestamp, trace_id, span_id, now=self._now())
        return Event(self._next_ids(1).start, *row)

    def extend(self, entries: Iterable[EntryLike]) -> range:
        """Return the next ids for `entries` without storing them. Thread-safe; all or nothing.

        Raises:
            TypeError: If `entries` or an entry has the wrong type, naming the entry by its index.
            ValueError: If an entry has a wrong value, naming the entry by its index.
        """
        return self._next_ids(len(check_entries(entries, 0.0)))

    def write_batch(self, batch: list[BatchItem]) -> None:
        """Use up ids for the well-formed items of a batch, without keeping them; the `BatchWriter` contract.

        Raises:
            TypeError: After using the ids, if an item has the wrong type, naming the first such.
            ValueError: After using the ids, if an item has a wrong value, naming the first such.
        """
        stored, error = batch_rows(batch, 0.0)
        self._next_ids(len(stored))
        if error is not None:
            raise error

    def _next_ids(self, count: int) -> range:
        with self._lock:
            first = self._last_id + 1
            self._last_id += count
        return range(first, first + count)

    def query(self, since: int | None = None, limit: int | None = None) -> list[Event]:
        """Return ``[]``, after checking the arguments as every backend does."""
        check_cursor(since, limit)
        return []

    def _reader(
        self,
        since: int | None,
        limit: int | None,
        kinds: str | Iterable[str] | None,
        trace_id: str | int | None,
    ) -> Callable[[int | None], Page]:
        check_cursor(since, limit)
        event_filter(kinds, trace_id)
        return self._read_now

    def _read_now(self, since: int | None) -> Page:
        """Return an empty `Page` whose cursor has moved to the latest id."""
        with self._lock:
            last = self._last_id
        return Page(
            events=(),
            cursor=max(last, since or 0),
            missed=0,
            oldest_id=None,
            latest_id=last,
            epoch=self._epoch,
        )

    def _latest_id(self) -> int:
        return self._last_id

    def _locks_held_across_fork(self) -> tuple[threading.Lock, ...]:
        return (self._lock,)

    def _after_fork_in_child(self) -> None:  # nothing to resume
        """Give the child's copy of the log a working lock, no parent readers, and its own epoch."""
        self._lock = threading.Lock()
        self._waiters.reset_after_fork()
        self._epoch = secrets.token_hex(8)

    def stats(self) -> dict[str, int]:
        """Return the counters every backend reports: ids handed out, and nothing else."""
        return {
            "appended": self._last_id,
            "resident": 0,
            "resident_bytes": 0,
            "evicted_by_count": 0,
            "evicted_by_ttl": 0,
            "evicted_by_bytes": 0,
            "cleared": 0,
            "truncated": 0,
            "waiting_readers": self._waiters.waiting,
            "redacted": 0,
        }

    def clear(self) -> None:
        """Do nothing: there is nothing to drop."""

    def __len__(self) -> int:
        """Return 0: nothing is ever resident."""
        return 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(latest_id={self._last_id})"
