"""The `EventLog` protocol: the contract every backend keeps and every reader relies on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from otel_eventlog.event import EntryLike, Event, Page

__all__ = ["EventLog", "check_event_log"]


@runtime_checkable
class EventLog(Protocol):
    """A bounded log of events with monotonic integer ids that readers use as cursors.

    Ids start at 1, strictly increase and never repeat for the lifetime of the log, across eviction and
    `clear()`. Every method is safe to call from any thread.
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

        All or nothing: if an entry is malformed, none is stored. Cheaper per event than `append`;
        `EventLogSpanProcessor` hands its events to a log of the application's own this way (the
        built-in backends take them by reference, through a private method).

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


def check_event_log(event_log: object) -> EventLog:
    """Return `event_log` if it keeps the `EventLog` protocol, else raise naming what it is.

    Raises:
        TypeError: If it does not.
    """
    if not isinstance(event_log, EventLog):
        raise TypeError(f"event_log must be an EventLog, got {type(event_log).__name__}")
    return event_log
