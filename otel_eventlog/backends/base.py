"""The store's contracts: `EventLog` for every backend and reader, `BatchWriter` for the capture side.

A backend of the application's own implements `EventLog` (nothing here needs subclassing) and, if it
takes batches without making the writer wait, also `BatchWriter` (and `Flushable`, if it queues them).
`otel_eventlog.backends.batch_writer` gives the capture side a `BatchWriter` for any `EventLog`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from otel_eventlog.errors import ArgumentTypeError
from otel_eventlog.event import BatchItem, EntryLike, Event, Page

__all__ = ["BatchWriter", "EventLog", "Flushable", "Observable", "check_event_log"]


@runtime_checkable
class EventLog(Protocol):
    """A bounded log of events with monotonic integer ids that readers use as cursors.

    What an implementation must guarantee: ids start at 1, strictly increase and never repeat for the
    lifetime of the log, across eviction and `clear()`; resident ids are contiguous, so that `Page.missed`
    is exact; every method is safe to call from any thread; a wrong argument raises `TypeError` or
    `ValueError` naming it and changes nothing; `append` and `extend` never wait on a reader; a log is
    truthy even when empty (define ``__bool__``: ``__len__`` alone would make an empty log false).
    ``tests/test_backend_conformance.py`` checks all of it, and any backend can join it.
    """

    @property
    def epoch(self) -> str:
        """An identifier of this log instance; readers compare it to notice a restart."""
        ...

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

        Called on the application's threads, so it does not block on readers or do I/O.

        Raises:
            TypeError: If an argument has the wrong type.
            ValueError: If an argument has the right type but a wrong value.
        """
        ...

    def extend(self, entries: Iterable[EntryLike]) -> range:
        """Store several events, in order, with consecutive ids, and return their ids.

        All or nothing: if an entry is malformed, none is stored. Cheaper per event than `append`.
        The capture side writes to a log that is not a `BatchWriter` through this method.

        Raises:
            TypeError: If `entries` or an entry has the wrong type, naming the entry by its index.
            ValueError: If an entry has a wrong value, naming the entry by its index.
        """
        ...

    def query(self, since: int | None = None, limit: int | None = None) -> list[Event]:
        """Return the resident events with ids greater than `since`, ascending, at most `limit`."""
        ...

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

        With ``wait > 0`` and no news (no matching event, nothing missed), wait up to `wait` seconds
        for some: a long-poll that returns as soon as a matching event arrives or the log is closed.
        """
        ...

    async def read_async(
        self,
        since: int | None = None,
        limit: int | None = None,
        *,
        kinds: str | Iterable[str] | None = None,
        trace_id: str | int | None = None,
        wait: float = 0,
    ) -> Page:
        """Like `read`, for asyncio: the long-poll never blocks the event loop."""
        ...

    def follow(
        self,
        since: int | None = None,
        limit: int | None = None,
        *,
        kinds: str | Iterable[str] | None = None,
        trace_id: str | int | None = None,
    ) -> AsyncIterator[Page]:
        """Yield each `Page` with news after `since`, as it comes, until the log is closed."""
        ...

    def close(self) -> None:
        """Wake every waiting reader and make later waits return at once."""
        ...

    @property
    def closed(self) -> bool:
        """Whether `close` was called."""
        ...

    def clear(self) -> None:
        """Drop every resident event; ids keep counting from where they were."""
        ...

    def __len__(self) -> int:
        """Return how many events are resident."""
        ...


@runtime_checkable
class BatchWriter(Protocol):
    """How the capture side hands events to a backend: in batches, by reference where it can.

    The span processor, the log-record processor and the logging handler write through this
    contract, on the application's threads and on the span processor's helper thread.
    """

    def write_batch(self, batch: list[BatchItem]) -> None:
        """Store the batch's items in order, with consecutive ids, or queue them to be stored so.

        What an implementation must guarantee:

        - It returns promptly: it never waits on the network, on a disk or on a reader. A backend
          whose store can block queues the batch (bounded) and writes it from a thread of its own.
        - Items are stored in the order given, each exactly once, with consecutive ids unless
          another writer's batch comes between two batches.
        - Each item is an `Entry`-like 5-tuple or a `SpanEventRef`-like 4-tuple (its length tells).
          A span event by reference is read (``event.name``, ``event.attributes``) only after the
          call, when the backend likes, and never changed: the SDK's events are immutable.
        - The batch list, and the payload dicts of its entries, belong to the backend after the
          call: the caller keeps no reference to them, so the backend may store them uncopied.
        - A malformed item is left out and the others are stored. A writer that checks items as
          they come then raises `TypeError` or `ValueError` naming the first malformed one
          (``batch[i]``); the capture side counts and logs that, at most once a minute, and never
          passes it on to the application. A writer that queues reports what it finds later itself.
        """
        ...


@runtime_checkable
class Flushable(Protocol):
    """A `BatchWriter` that queues batches, and can wait until they are stored."""

    def flush(self, timeout: float) -> bool:
        """Wait until every batch handed over so far is stored, at most `timeout` seconds.

        Returns whether they all were. Called by the capture side's ``force_flush`` and ``shutdown``.
        """
        ...


@runtime_checkable
class Observable(Protocol):
    """A log (or processor) that reports its own counters; the built-in ones do."""

    def stats(self) -> Mapping[str, int]:
        """Return the counters, by name: cheap to call, from any thread, never raising."""
        ...


def check_event_log(event_log: object) -> EventLog:
    """Return `event_log` if it keeps the `EventLog` protocol, else raise naming what it is.

    Raises:
        ArgumentTypeError: If it does not.
    """
    if not isinstance(event_log, EventLog):
        raise ArgumentTypeError(f"event_log must be an EventLog, got {type(event_log).__name__}")
    return event_log
