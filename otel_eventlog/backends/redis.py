"""`RedisEventLog`: one event log shared by every process and host that names the same Redis stream.

The same contract as the in-memory log, kept by Redis itself (`otel_eventlog.backends._redis_scripts`):
ids are handed out on the server, in the script that adds the entries, so that they are dense and shared
by every writer; eviction by count, age (by the server's clock) and weight happens there too, as part
of each write and read. Nothing leaves the process unredacted: events are checked, redacted, cut to
``max_value_bytes`` and encoded as JSON here, on the writer's thread.

The capture side never waits on the network: `write_batch` puts its items on a bounded queue
(`otel_eventlog.backends._outbox.Outbox`) that a thread of the log's own sends, one round trip per
batch. When Redis is slow or gone, the queue fills and its oldest events are dropped, counted in
`stats()`; the thread retries, backing off, and sends the same batch again under the same number,
which the script recognises, so that a batch whose answer was lost is stored once. `append` and
`extend`, called by the application itself, make one round trip and return the ids readers will see.

Readers wait on ``XREAD BLOCK``: one thread per process watches the stream while anyone waits and wakes
them all, whichever process wrote. Asynchronous reads go through redis-py's asyncio client.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import inspect
import json
import logging
import math
import os
import re
import secrets
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, cast

from otel_eventlog import _defaults, _forks, _json
from otel_eventlog import redaction as _redaction
from otel_eventlog._quiet import quiet
from otel_eventlog._reporting import FailureReporter
from otel_eventlog.backends import _redis_scripts
from otel_eventlog.backends._common import (
    Bounded,
    Row,
    Stored,
    batch_rows,
    bound,
    check_append,
    check_clock,
    check_cursor,
    check_entries,
    check_redaction,
    event_filter,
    span_event_row,
)
from otel_eventlog.backends._outbox import Batch, Outbox
from otel_eventlog.backends._waiting import ReadNow, ReadNowAsync, Waiters, WaitingReads
from otel_eventlog.errors import ArgumentTypeError, ArgumentValueError, BackendError
from otel_eventlog.event import BatchItem, EntryLike, Event, Page
from otel_eventlog.redaction import Redaction

if TYPE_CHECKING:
    import redis
    import redis.asyncio

__all__ = ["RedisEventLog"]

_logger = logging.getLogger(__name__)

# What a script takes as an argument.
_Arg = bytes | str | int | float
#: A read's arguments to the READ script: its cursor (``-1``: none) and how many events (``-1``: all).
_Request = tuple[int, int]
#: Reads that filter take this many events from Redis at a time.
_SCAN_CHUNK = 512
#: How long the watcher blocks in one ``XREAD``, in milliseconds; it looks for a new epoch in between.
_WATCH_BLOCK_MS = 1000
_MALFORMED = "otel_eventlog.malformed_event"
#: How Redis ends the message of an error raised in a script: ``script: <sha1>, on @user_script:12.``
_SCRIPT_PLACE = re.compile(r" script: [0-9a-f]{40}, on @user_script:\d+\.$")
#: The most one batch of the writer weighs, encoded. It is one argument of a script, which Redis takes
#: up to ``proto-max-bulk-len``: 512 MiB by default, and never set below 1 MiB (1,048,576 bytes, room
#: left here for the line breaks between events).
_BATCH_BYTES = 1_000_000
#: The least time between two warnings that events are not sent, in seconds.
_UNSENT_REPORT_SECONDS = 60.0
#: What the watcher's last look saw: the epoch, and the newest stream id its XREAD returned.
_Past = tuple[str, tuple[int, int]] | None
# The errors of a server that will take the same write again soon: a long script running, a replica
# not yet promoted, a primary gone, a full memory that eviction may free. redis-py gives some their
# own classes (`_PASSING_CLASSES`); the others keep their code at the start of the message.
_PASSING_CODES = frozenset({"BUSY", "MASTERDOWN"})
_PASSING_CLASSES = ("ReadOnlyError", "OutOfMemoryError", "TryAgainError")


def _redis() -> Any:
    """Import redis-py, or say which extra installs it."""
    try:
        import redis  # noqa: PLC0415  # an optional dependency: imported when the backend is built
        import redis.asyncio  # noqa: PLC0415
    except ImportError as error:
        raise ImportError(
            "the Redis event log backend needs redis-py: pip install 'otel-eventlog[redis]'"
        ) from error
    return redis


class RedisEventLog(Bounded, WaitingReads):
    """An event log on a Redis stream, shared by every process that uses the same `url` and `stream`.

    Args:
        url: The Redis server: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` for TLS,
            ``unix:///path/to/socket``. Never shown with its password.
        stream: The stream's key; a hash beside it, ``<stream>:meta``, keeps the log's state.
        ttl_seconds: How long an event stays, in seconds; ``math.inf`` keeps it until `max_entries`
            or `max_bytes` push it out. ``None`` or a non-positive value means the default.
        max_entries: How many events stay at most. ``None`` or a non-positive value means the default.
        max_bytes: What the stream's events may weigh together, encoded; the newest is always kept.
        max_value_bytes: How many bytes (UTF-8) of one string value are kept; longer ones are cut.
        now: The clock that judges events' age for ``ttl_seconds``, in seconds since the epoch, and
            gives an event its time when none is passed. ``None``: ages are judged by the Redis
            server's clock, one clock for every process and host, and events' times come from
            `time.time`.
        redaction: What never leaves the process; by default `otel_eventlog.redaction.Redaction` with
            its default key words.
        queue_events: How many events the capture side may queue for sending; beyond, the oldest
            are dropped, counted as ``dropped`` in `stats()`. The queue also weighs at most the
            larger of `max_bytes` and 64 MiB: each event is redacted, cut to `max_value_bytes` and
            weighed as it is queued.
        batch_events: The most events sent in one round trip.
        timeout_seconds: Seconds to wait for Redis to connect or answer, for each call.

    Raises:
        ImportError: If redis-py is not installed (``pip install 'otel-eventlog[redis]'``).
        ArgumentTypeError: If an argument has the wrong type.
        ArgumentValueError: If `url` is not a Redis URL, `stream` is empty or `timeout_seconds` infinite.
    """

    DEFAULT_URL: ClassVar[str] = _defaults.REDIS_URL
    DEFAULT_STREAM: ClassVar[str] = _defaults.REDIS_STREAM

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        stream: str = DEFAULT_STREAM,
        ttl_seconds: float | None = _defaults.TTL_SECONDS,
        max_entries: int | None = _defaults.MAX_ENTRIES,
        max_bytes: int | None = _defaults.MAX_BYTES,
        max_value_bytes: int | None = _defaults.MAX_VALUE_BYTES,
        now: Callable[[], float] | None = None,
        redaction: Redaction | None = None,
        queue_events: int = _defaults.REDIS_QUEUE_EVENTS,
        batch_events: int = _defaults.REDIS_BATCH_EVENTS,
        timeout_seconds: float = _defaults.REDIS_TIMEOUT_SECONDS,
    ) -> None:
        module = _redis()
        self._redaction = _redaction.DEFAULT if redaction is None else check_redaction(redaction)
        self._set_bounds(ttl_seconds, max_entries, max_bytes, max_value_bytes, self._redaction)
        self._uncut_bytes = min(
            self.max_value_bytes, self._max_bytes
        )  # an encoding this long has nothing to cut
        self._clock = None if now is None else check_clock(now)
        self._now: Callable[[], float] = time.time if self._clock is None else self._clock
        if not isinstance(stream, str) or not stream:
            raise ArgumentValueError(f"stream must be a non-empty string, got {stream!r}")
        queue_events = int(bound("queue_events", queue_events, _defaults.REDIS_QUEUE_EVENTS, int))
        batch_events = int(bound("batch_events", batch_events, _defaults.REDIS_BATCH_EVENTS, int))
        self._timeout = bound("timeout_seconds", timeout_seconds, _defaults.REDIS_TIMEOUT_SECONDS, int, float)
        if math.isinf(self._timeout):
            raise ArgumentValueError("timeout_seconds must be a finite number of seconds, got inf")
        self._url = _check_url(url)
        self._shown_url = public_url(url)
        self._stream = stream
        self._keys = [stream, f"{stream}:meta"]
        # How its connections show in CLIENT LIST: which library, which stream.
        self._client_name = "otel-eventlog:" + "".join(
            c if c.isprintable() and c != " " else "_" for c in stream
        )
        self._client = self._connect(module)
        self._address = _address(self._client.connection_pool.connection_kwargs)
        self._scripts = {
            name: self._client.register_script(getattr(_redis_scripts, name))
            for name in ("APPEND", "READ", "CLEAR")
        }
        # What the network does: redis-py's errors, and a socket's own (one closed under a call).
        self._module = module
        self._passing = tuple(
            getattr(module.exceptions, name) for name in _PASSING_CLASSES if hasattr(module.exceptions, name)
        )
        # BackendError: a server error that passes (busy, loading, a replica during failover).
        self._unreachable = (module.ConnectionError, module.TimeoutError, OSError, BackendError)
        self._hangs = (module.TimeoutError, TimeoutError)  # Redis did not answer in time
        self._errors = (module.RedisError, OSError)
        self._truncated = 0
        self._counting = threading.Lock()  # `_truncated` grows on the application's threads too
        self._placeholder = secrets.token_hex(8)  # the epoch until Redis is reached
        # Who writes: each batch of the queue, and each direct write, carries its writer's key and a
        # number, so that a batch sent again after a lost answer is not stored twice.
        self._writer = secrets.token_hex(8)
        self._direct_lock = threading.Lock()
        self._direct_number = 0
        # What the last look at the stream showed: its epoch, its last id, and its first id and counters.
        self._seen: tuple[str | None, int, tuple[int, ...]] = (None, 0, (1, 0, 0, 0, 0))
        self._unsent_reported = -math.inf  # when a flush or close last said what is not sent
        self._malformed = FailureReporter(_logger, "writing a malformed event to Redis")
        self._outbox: Outbox[bytes] = Outbox(
            self._send,
            name="otel-eventlog-redis-writer",
            max_items=queue_events,
            max_weight=max(self._max_bytes, _defaults.MAX_BYTES),  # encoded, as Redis counts them
            batch_items=batch_events,
            batch_weight=_BATCH_BYTES,
            retryable=self._unreachable,
            hangs=self._hangs,
            failures=FailureReporter(_logger, f"writing events to Redis at {self._address}"),
            outage=self._outage,
        )
        self._waiters = Waiters()
        self._waiters.on_wait = self._ensure_watcher
        # The asyncio clients, one per event loop, and what closes each with its loop.
        self._loop_scripts: dict[asyncio.AbstractEventLoop, Any] = {}
        self._keepers: dict[asyncio.AbstractEventLoop, AsyncIterator[None]] = {}
        self._watch_lock = threading.Lock()  # also: `_refresher`
        self._refresher: threading.Thread | None = None  # asks for the counters while Redis is silent
        self._silent = False  # whether this process's last read timed out
        self._watcher: threading.Thread | None = None
        # The newest epoch seen, its last id, and that entry's stamp: what a log restored from an
        # older copy is found behind.
        self._tip: tuple[str | None, int, str] = (None, 0, "")
        self._tip_lock = threading.Lock()
        # Within the socket timeout, or every look would end in a timeout and a new connection.
        self._block_ms = max(1, min(_WATCH_BLOCK_MS, int(self._timeout * 500)))
        _forks.track(self)
        self._outbox.start()  # its first act is to reach Redis: a warning now if it cannot

    def _connect(self, module: Any) -> redis.Redis:
        from redis.backoff import NoBackoff  # noqa: PLC0415
        from redis.retry import Retry  # noqa: PLC0415

        try:
            client = module.Redis.from_url(
                self._url,
                socket_timeout=self._timeout,
                socket_connect_timeout=self._timeout,
                # Once at once, for a connection Redis closed; never after a timeout, which could
                # mean a call that did its work.
                retry=Retry(NoBackoff(), 1, supported_errors=(module.ConnectionError,)),
                client_name=self._client_name,
            )
        except ValueError:  # redis-py's message may quote part of a password: not shown
            raise ArgumentValueError(
                f"url {self._shown_url!r} is not a valid Redis URL: check the host, the port (a number "
                "up to 65535) and the database; a /, # or ? in a password must be percent-encoded"
            ) from None
        return cast("redis.Redis", client)

    # Properties

    @property
    def url(self) -> str:
        """The Redis server's URL, its password hidden."""
        return self._shown_url

    @property
    def stream(self) -> str:
        """The stream's key."""
        return self._stream

    @property
    def epoch(self) -> str:
        """The shared log's identifier, as this process last saw it; it changes when Redis loses the stream.

        Never waits on Redis (``isinstance`` checks against `EventLog` read it): the writer's thread
        looks it up as it starts, and every read and write notes it. Until this process has reached
        Redis, it is a placeholder of this instance's own. Each `Page` carries the epoch of its read.
        """
        epoch = self._seen[0]
        return epoch if epoch is not None else self._placeholder

    # Writing

    def append(
        self,
        kind: str,
        payload: Mapping[str, Any] | None = None,
        *,
        timestamp: float | None = None,
        trace_id: str | int | None = None,
        span_id: str | int | None = None,
    ) -> Event:
        """Store an event in Redis and return it with the id every reader sees.

        Unlike the capture side, this waits for Redis: one round trip, after the events the capture
        side queued before it are sent, so that they keep their order. Thread-safe.

        Raises:
            TypeError: If an argument has the wrong type; nothing is stored.
            ValueError: If an argument has a wrong value; nothing is stored.
            BackendError: If Redis cannot be reached or refuses the write.
        """
        row = check_append(kind, payload, timestamp, trace_id, span_id, now=self._now())
        first = self._store_now([self._encode(row)])
        timestamp, kind, given, trace_id, span_id = row
        return Event(first, timestamp, kind, self._limits.fit(given)[0], trace_id, span_id)

    def extend(self, entries: Iterable[EntryLike]) -> range:
        """Store several events in Redis, in order, with consecutive ids, and return their ids.

        All or nothing, in one round trip (after what the capture side queued before). Thread-safe.

        Raises:
            TypeError: If `entries` or an entry has the wrong type, naming the entry by its index.
            ValueError: If an entry has a wrong value, naming the entry by its index.
            BackendError: If Redis cannot be reached or refuses the write.
        """
        rows = check_entries(entries, self._now())
        encoded = [self._encode(row) for row in rows]
        if not encoded:
            _epoch, last, _first, _counters = self._header(self._call_read((-1, 0)))
            return range(last + 1, last + 1)
        first = self._store_now(encoded)
        return range(first, first + len(encoded))

    def write_batch(self, batch: list[BatchItem]) -> None:
        """Queue a batch from the capture side to be sent to Redis; the `BatchWriter` contract.

        Never waits on Redis and never raises. Each event is checked, redacted, cut to the size limits
        and encoded as it is queued (what is sent is then what was queued), so that a queue that waits
        on Redis holds at most ``queue_events`` events, and ``max_bytes`` of them encoded (64 MiB at
        least): beyond, its oldest events are dropped and counted. Malformed items are left out,
        counted in ``failures``.
        """
        rows: list[Stored] = []
        try:
            rows, error = batch_rows(batch, self._now())
            if error is not None:
                raise error
        except Exception:  # each malformed item of a list counted; not a batch at all, once
            for _ in range(max(1, len(batch) - len(rows) if type(batch) is list else 1)):
                self._malformed.report()
        # Encoded here, as they are sent: the queue holds what it sends, and weighs exactly that.
        encoded = [self._encode(span_event_row(row) if len(row) == 4 else row) for row in rows]
        self._outbox.put(encoded, [len(item) for item in encoded])

    def flush(self, timeout: float) -> bool:
        """Wait until what the capture side queued so far is in Redis, at most `timeout` seconds.

        Returns whether it all is (or was dropped, counted): False as soon as a send fails, and at once
        while Redis does not answer. Called by the processors' ``force_flush`` and ``shutdown``, and at
        exit: what is not sent then is logged, with its count, at most once a minute.
        """
        if self._outbox.flush(timeout):
            return True
        self._report_unsent()
        return False

    def _report_unsent(self) -> None:
        now = time.monotonic()
        if now < self._unsent_reported + _UNSENT_REPORT_SECONDS:
            return
        self._unsent_reported = now
        _logger.warning(
            "otel_eventlog: %d event(s) are not sent to Redis at %s yet (%s); they are sent when it "
            "takes them, and lost if the process exits first",
            self._outbox.queued,
            self._address,
            "it does not answer"
            if self._outbox.hung
            else "writing to it fails"
            if self._outbox.failing
            else "it is slow to take them",
        )

    def _store_now(self, encoded: list[bytes]) -> int:
        """Store events now, after those the capture side queued; within about `timeout_seconds` each."""
        deadline = time.monotonic() + self._timeout
        if not self._outbox.flush(self._timeout):  # what the capture side queued first goes first
            error = self._outbox.last_error
            raise BackendError(
                f"Redis at {self._address}: the events queued before this one are not stored yet ("
                + (_message(error) if error is not None else "it is slow to take them")
                + "); try again later"
            )
        # One at a time, so that a writer's last batch number is enough; never queued behind others
        # for longer than one timeout, whatever Redis does.
        if not self._direct_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise BackendError(
                f"Redis at {self._address}: it has not answered another append for {self._timeout} s; "
                "try again later"
            )
        try:
            self._direct_number += 1
            _epoch, first = self._append(encoded, "direct", self._direct_number)
        except self._errors as error:
            raise self._backend_error(error) from None
        finally:
            self._direct_lock.release()
        return first

    def _append(self, encoded: list[bytes], writer: str, number: int) -> tuple[str, int]:
        """Run the APPEND script for one batch of a writer; return the epoch and the first id."""
        with quiet():
            epoch, first, stamp = self._scripts["APPEND"](
                keys=[*self._keys, f"{self._stream}:writer:{self._writer}:{os.getpid()}:{writer}"],
                args=[
                    *self._prelude_arguments(),
                    number,
                    b"\n".join(encoded),
                ],  # one argument: cheaper to send
            )
        last = int(first) + len(encoded) - 1
        self._saw_epoch(epoch.decode(), last)
        self._saw_tip(epoch.decode(), last, stamp.decode())
        return epoch.decode(), int(first)

    def _send(self, batch: Batch[bytes]) -> None:
        """Send a batch from the queue; runs on the outbox's thread. Batch 0 checks that Redis is there.

        Its events were checked and encoded as they were queued: sent again, it is the same bytes
        under the same number, and what it counted (malformed items, cut and redacted values) is
        counted once.
        """
        if not batch.number:  # reach Redis, and learn the epoch; its errors as they come
            with quiet():
                self._header(self._scripts["READ"](keys=self._keys, args=self._read_arguments((-1, 0))))
            return
        try:  # never empty: a batch has an event at least
            self._append(batch.items, "queue", batch.number)
        except self._module.ResponseError as error:
            if isinstance(error, self._passing) or str(error).split(" ", 1)[0] in _PASSING_CODES:
                raise BackendError(str(error)) from error  # the server will take it again soon
            raise

    def _encode(self, row: Row) -> bytes:
        """Return the row's encoding as it is sent: redacted, then cut to the limits if it must be.

        The encoding is made first: JSON text (all ASCII) is at least as long as the UTF-8 of any
        string in it, so an encoding within both byte limits has nothing to cut, and most events
        pay for no measuring. A longer one has its redacted payload measured and cut
        (`otel_eventlog._sizing.Limits.fit`), and is encoded again.
        """
        timestamp, kind, payload, trace_id, span_id = row
        shown = self._redaction.apply(payload)
        encoded = _json.dumps([timestamp, kind, shown, trace_id, span_id])
        if len(encoded) > self._uncut_bytes:
            shown, _size, cut = self._limits.fit(shown)
            if cut:
                with self._counting:
                    self._truncated += cut
                encoded = _json.dumps([timestamp, kind, shown, trace_id, span_id])
        return encoded

    def _prelude_arguments(self) -> list[_Arg]:
        """Return what every script takes first: a new epoch, should one begin, the limits, what was seen.

        What was seen is the newest epoch and last id this process knows of: a log found behind it
        went back in time (an older snapshot restored), and the script begins a new epoch.
        """
        ttl = -1 if math.isinf(self._ttl_seconds) else repr(float(self._ttl_seconds))
        clock = "" if self._clock is None else repr(float(self._clock()))
        epoch, last, stamp = self._tip
        return [
            secrets.token_hex(8),
            clock,
            ttl,
            self._max_entries,
            self._max_bytes,
            epoch or "",
            last,
            stamp,
        ]

    def _outage(self, error: BaseException | None) -> None:
        if error is not None:
            _logger.warning(
                "otel_eventlog: cannot write to Redis at %s (%s); captured events wait in a queue of %d, "
                "the oldest dropped beyond it, and are sent once Redis takes them (append and extend "
                "raise meanwhile: what they were given is not queued)",
                self._address,
                error,
                self._outbox.max_items,
            )
        else:
            _logger.warning(
                "otel_eventlog: Redis at %s takes events again; %d queued event(s) were dropped meanwhile",
                self._address,
                self._outbox.dropped,
            )

    # Reading

    def query(self, since: int | None = None, limit: int | None = None) -> list[Event]:
        """Return the resident events with ids greater than `since`, ascending, at most `limit`.

        Raises:
            TypeError: If `since` or `limit` is not an integer or ``None``.
            ValueError: If `since` or `limit` is negative.
            BackendError: If Redis cannot be reached.
        """
        return list(self.read(since, limit).events)

    def _reader(
        self,
        since: int | None,
        limit: int | None,
        kinds: str | Iterable[str] | None,
        trace_id: str | int | None,
    ) -> ReadNow:
        check_cursor(since, limit)
        accept = event_filter(kinds, trace_id)
        return lambda cursor: self._drive(self._paging(cursor, limit, accept))

    def _async_reader(
        self,
        since: int | None,
        limit: int | None,
        kinds: str | Iterable[str] | None,
        trace_id: str | int | None,
    ) -> contextlib.AbstractAsyncContextManager[ReadNowAsync]:
        check_cursor(since, limit)
        accept = event_filter(kinds, trace_id)
        return self._async_session(limit, accept)

    @contextlib.asynccontextmanager
    async def _async_session(
        self, limit: int | None, accept: Callable[[Event], bool] | None
    ) -> AsyncIterator[ReadNowAsync]:
        """Read through the running event loop's asyncio client: one per loop, its connections reused."""
        script = await self._loop_script()

        async def read_now(cursor: int | None) -> Page:
            paging = self._paging(cursor, limit, accept)
            try:
                request = next(paging)
                while True:
                    try:
                        with quiet():
                            reply = await script(keys=self._keys, args=self._read_arguments(request))
                    except self._errors as error:
                        raise self._backend_error(error) from None
                    request = paging.send(reply)
            except StopIteration as done:
                page: Page = done.value
                return page

        yield read_now

    async def _loop_script(self) -> Any:
        """Return the READ script on the running loop's asyncio client, making the client on first use.

        The client lives as long as the loop: an asynchronous generator of the loop's own, started
        here and left waiting, closes it when the loop shuts its generators down (``asyncio.run``
        does, as it ends), so that no connection outlives its loop unclosed. The client of a loop
        closed without that is let go when the next loop makes its own.
        """
        loop = asyncio.get_running_loop()
        script = self._loop_scripts.get(loop)
        if script is None:
            for gone in [other for other in list(self._loop_scripts) if other.is_closed()]:
                # Closed without shutting its generators down: its client can only be let go, and
                # its connections close as they are collected.
                self._loop_scripts.pop(gone, None)
                self._keepers.pop(gone, None)
            redis = _redis()
            from redis.asyncio.retry import Retry  # noqa: PLC0415
            from redis.backoff import NoBackoff  # noqa: PLC0415

            client = redis.asyncio.Redis.from_url(
                self._url,
                socket_timeout=self._timeout,
                socket_connect_timeout=self._timeout,
                retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
                client_name=self._client_name,
            )
            script = self._loop_scripts[loop] = client.register_script(_redis_scripts.READ)
            keeper = self._close_with_the_loop(loop, client)
            await keeper.__anext__()  # runs to its yield at once: nothing else runs meanwhile
            self._keepers[loop] = keeper
        return script

    async def _close_with_the_loop(self, loop: asyncio.AbstractEventLoop, client: Any) -> AsyncIterator[None]:
        try:
            yield
        finally:
            self._loop_scripts.pop(loop, None)
            self._keepers.pop(loop, None)
            await client.aclose()

    def _drive(self, paging: Generator[_Request, list[Any], Page]) -> Page:
        """Run a read's paging on this thread, one READ script call per request."""
        try:
            request = next(paging)
            while True:
                request = paging.send(self._call_read(request))
        except StopIteration as done:
            page: Page = done.value
            return page

    def _call_read(self, request: _Request) -> list[Any]:
        try:
            with quiet():
                reply: list[Any] = self._scripts["READ"](keys=self._keys, args=self._read_arguments(request))
        except self._errors as error:
            if isinstance(error, self._hangs):
                self._silent = True
            raise self._backend_error(error) from None
        return reply

    def _read_arguments(self, request: _Request) -> list[_Arg]:
        return [*self._prelude_arguments(), *request]

    def _paging(
        self, since: int | None, limit: int | None, accept: Callable[[Event], bool] | None
    ) -> Generator[_Request, list[Any], Page]:
        """Read one page: yield the READ requests it needs, receive their replies, return the `Page`.

        Written once for the thread and the event loop, which each make the calls their own way. A
        read without filters is one request. A filtered read takes the stream a chunk at a time, up
        to the newest id its first reply named (so it ends, and returns at most `max_entries`); if a
        later chunk shows that the log was lost or evicted past where it stands, it stops there, and
        the next read reports what went.
        """
        cursor = -1 if since is None else since
        chunk = _SCAN_CHUNK if accept is not None and limit != 0 else -1 if limit is None else limit
        first_reply = yield (cursor, chunk)
        epoch, last, first, _counters = self._header(first_reply)
        start = first if since is None else max(since + 1, first)
        if accept is None:
            events = _events(first_reply)
            examined = len(events)
            if limit == 0:
                cursor = start - 1
            elif examined == limit:  # past the last one returned: beyond start + limit, if another
                cursor = events[-1].id  # client deleted entries from the middle of the stream
            else:
                cursor = max(last, start - 1)
        else:
            events, cursor, examined = yield from self._scan(
                first_reply, start, last, epoch, limit=limit, accept=accept
            )
        # Ids from `start` to the cursor that no entry holds: deleted by another client.
        removed = cursor - start + 1 - examined
        return Page(
            events=tuple(events),
            cursor=cursor,
            missed=0 if since is None else max(0, first - since - 1) + removed,
            oldest_id=first if first <= last else None,
            latest_id=last,
            epoch=epoch,
        )

    def _scan(
        self,
        reply: list[Any],
        start: int,
        last: int,
        epoch: str,
        *,
        limit: int | None,
        accept: Callable[[Event], bool],
    ) -> Generator[_Request, list[Any], tuple[list[Event], int, int]]:
        """Return the events accepted from `start` to `last`, at most `limit`; the cursor; how many seen."""
        found: list[Event] = []
        examined = start - 1  # the newest id looked at
        looked = 0
        if limit == 0:
            return found, examined, looked
        while True:
            chunk = _events(reply)
            for event in chunk:
                if event.id > last:  # came after the read began: the next read's
                    return found, examined, looked
                examined = event.id
                looked += 1
                if accept(event):
                    found.append(event)
                    if len(found) == limit:
                        return found, examined, looked
            if len(chunk) < _SCAN_CHUNK or examined >= last:  # all of it, up to `last`, was looked at
                return found, max(examined, last), looked
            reply = yield (examined, _SCAN_CHUNK)
            now_epoch, _last, now_first, _counters = self._header(reply)
            if now_epoch != epoch or now_first > examined + 1:  # lost, or evicted past this reader
                return found, examined, looked

    def _header(self, reply: list[Any]) -> tuple[str, int, int, tuple[int, ...]]:
        """Read the READ script's header: epoch, last id, first id, and the counters; note what it saw."""
        epoch = reply[0].decode()
        last, first = int(reply[1]), int(reply[3])
        counters = tuple(int(value) for value in reply[4:8])
        self._saw_epoch(epoch, last, (first, *counters))
        self._silent = False
        self._saw_tip(epoch, last, reply[2].decode())
        return epoch, last, first, counters

    def _saw_epoch(
        self, epoch: str, last: int | None = None, counters: tuple[int, ...] | None = None
    ) -> None:
        seen = self._seen
        self._seen = (
            epoch,
            seen[1] if last is None else last,
            seen[2] if counters is None else counters,
        )

    def _backend_error(self, error: Exception) -> BackendError:
        return BackendError(f"Redis at {self._address}: {_message(error)}")

    # Waiting: one watcher per process, on XREAD BLOCK

    def _has_news(self, page: Page) -> bool:
        epoch, last, _stamp = self._tip
        return epoch is not None and (epoch != page.epoch or last > page.cursor)

    def _saw_tip(self, epoch: str, last: int, stamp: str) -> None:
        """Note what a read or the watcher saw; a new epoch, or a later id, wakes the waiting readers.

        Whoever moves the tip wakes the readers: a read on another thread may see news before the
        watcher does, and the watcher, finding the tip already there, would then wake nobody.
        """
        with self._tip_lock:  # two threads noting tips of one epoch at once must not move it back
            seen, seen_last, _stamp = self._tip
            if epoch == seen and last <= seen_last:
                return
            self._tip = (epoch, last, stamp)
        if self._waiters.count:  # read without the lock: a reader counts itself before it looks
            self._waiters.notify()

    def _ensure_watcher(self) -> None:
        """Start the watcher, if it is not running; called whenever a reader starts waiting."""
        with self._watch_lock:
            if self._watcher is None or not self._watcher.is_alive():
                self._watcher = threading.Thread(
                    target=self._watch, name="otel-eventlog-redis-watcher", daemon=True
                )
                self._watcher.start()

    def _watch(self) -> None:
        """Wake the waiting readers whenever the stream changes; end when nobody waits."""
        failures = 0  # in a row, up to the count whose pause reaches the longest
        past: _Past = None
        try:
            while not self._waiters.closed and not self._waiters.nobody_waits(self._stop_watching):
                try:
                    with quiet():
                        past = self._look(past)
                    failures = 0
                except Exception:  # Redis is gone for now: the readers' own reads will say so
                    failures = min(failures + 1, 16)
                    time.sleep(min(self._block_ms / 1000, 0.05 * 2**failures))
        finally:  # however it ends, the next reader that waits starts another
            with self._watch_lock:
                if self._watcher is threading.current_thread():
                    self._watcher = None

    def _stop_watching(self) -> None:
        with self._watch_lock:
            self._watcher = None

    def _look(self, past: _Past) -> _Past:
        """Note the stream's epoch and last id, waking readers if they moved; then block until it grows.

        `past` is the epoch and the newest stream id the last look's ``XREAD`` returned; it returns
        this look's. A look blocks after both that id and the log's last id: an entry another client
        added past the log's last id is returned once, not again and again.
        """
        raw_epoch, raw_last, raw_stamp = self._client.hmget(self._keys[1], ["epoch", "last", "stamp"])
        # A missing state is a lost log: "" is an epoch no page has, so waiting readers read again,
        # and the read begins the new log.
        epoch, last = (raw_epoch.decode() if isinstance(raw_epoch, bytes) else "", int(raw_last or 0))
        seen_epoch, seen_last, _stamp = self._tip
        if epoch == seen_epoch and last < seen_last:  # back in time: the READ script begins a new epoch
            self._call_read((-1, 0))
            return None
        self._saw_tip(epoch, last, raw_stamp.decode() if isinstance(raw_stamp, bytes) else "")
        after = (last, 0) if past is None or past[0] != epoch else max((last, 0), past[1])
        reply = self._client.xread({self._stream: f"{after[0]}-{after[1]}"}, count=1, block=self._block_ms)
        return epoch, max(after, _newest_stream_id(reply))

    # The rest of the contract

    def close(self) -> None:
        """Wake every waiting reader for good; send what is queued (within the timeout); stop the writer.

        The log stays readable and writable: a later write starts the writer again.
        """
        super().close()
        if not self._outbox.close(self._timeout):
            self._report_unsent()
        self._client.connection_pool.disconnect(inuse_connections=False)  # readers may be mid-call

    def clear(self) -> None:
        """Drop every resident event, for every process; ids keep counting.

        Raises:
            BackendError: If Redis cannot be reached.
        """
        try:
            with quiet():
                epoch = self._scripts["CLEAR"](keys=self._keys, args=self._prelude_arguments())
        except self._errors as error:
            raise self._backend_error(error) from None
        self._saw_epoch(epoch.decode())

    def stats(self) -> dict[str, int]:
        """Return the counters: the shared log's, as Redis keeps them, and this process's own.

        Shared: ``appended`` (ids handed out), ``resident``, ``resident_bytes`` (encoded),
        ``evicted_by_count``, ``evicted_by_ttl``, ``evicted_by_bytes``, ``cleared`` (by `clear`, or
        removed from the stream by another client). This process:
        ``truncated``, ``redacted``, ``waiting_readers``, ``queued`` (waiting to be sent),
        ``dropped`` (the queue was full) and ``failures`` (batches or events Redis or the checks
        refused). When Redis cannot be reached, the shared counters are the last ones seen. While
        Redis does not answer (a read or a send of this process timed out, and none went through
        since), they are returned at once and asked for in the background: a metrics collection
        never waits out the timeout. Never raises.
        """
        if self._silent or self._outbox.hung:
            self._refresh_in_background()
        else:
            with contextlib.suppress(BackendError):
                self.read(None, 0)
        _epoch, appended, (first, weight, expired, overweight, cleared) = self._seen
        resident = max(0, appended - first + 1) if self._seen[0] is not None else 0
        return {
            "appended": appended,
            "resident": resident,
            "resident_bytes": weight,
            "evicted_by_count": max(0, appended - resident - expired - overweight - cleared),
            "evicted_by_ttl": expired,
            "evicted_by_bytes": overweight,
            "cleared": cleared,
            "truncated": self._truncated,
            "waiting_readers": self._waiters.waiting,
            "redacted": self._redaction.redacted,
            "queued": self._outbox.queued,
            "dropped": self._outbox.dropped,
            "failures": self.failures,
        }

    def _refresh_in_background(self) -> None:
        """Ask Redis for the counters on a thread of its own, if none is asking already."""
        with self._watch_lock:
            if self._refresher is not None and self._refresher.is_alive():
                return
            self._refresher = threading.Thread(
                target=self._refresh, name="otel-eventlog-redis-stats", daemon=True
            )
            self._refresher.start()

    def _refresh(self) -> None:
        with contextlib.suppress(BackendError):
            self.read(None, 0)

    @property
    def failures(self) -> int:
        """How many batches Redis refused, and malformed events left out, in this process."""
        return self._outbox.failures + self._malformed.count

    def __len__(self) -> int:
        """Return how many events are resident.

        Raises:
            BackendError: If Redis cannot be reached.
        """
        page = self.read(None, 0)
        return 0 if page.oldest_id is None else page.latest_id - page.oldest_id + 1

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self._shown_url!r}, stream={self._stream!r}, "
            f"ttl_seconds={self._ttl_seconds!r}, max_entries={self._max_entries!r}, "
            f"max_bytes={self._max_bytes!r})"
        )

    def _locks_held_across_fork(self) -> tuple[threading.Lock, ...]:
        return (self._watch_lock, self._tip_lock, self._counting)  # not `_direct_lock`: held over a call

    def _after_fork_in_child(self) -> None:
        """Drop the parent's connections, readers and watcher; the shared log, and its epoch, stay."""
        self._writer = secrets.token_hex(8)  # a writer of its own: its batches are numbered anew
        self._watch_lock, self._tip_lock = threading.Lock(), threading.Lock()
        self._counting = threading.Lock()
        self._watcher = self._refresher = None
        self._waiters.reset_after_fork()
        self._client.connection_pool.reset()
        self._loop_scripts, self._keepers = {}, {}  # the parent's event loops do not run here
        self._direct_lock = threading.Lock()


def _message(error: BaseException) -> str:
    """Return an error's message for a `BackendError`; a script's without where in the script it arose."""
    return _SCRIPT_PLACE.sub("", str(error))


def _newest_stream_id(reply: Any) -> tuple[int, int]:
    """Return the newest stream id in an ``XREAD`` reply of one stream (RESP2 or RESP3), as numbers."""
    newest = (0, 0)
    for found in reply.values() if isinstance(reply, dict) else (pair[1] for pair in reply or ()):
        entries = found[0] if found and isinstance(found[0], list) else found  # RESP3 nests them once more
        for entry in entries:
            milliseconds, _, sequence = bytes(entry[0]).partition(b"-")
            newest = max(newest, (int(milliseconds), int(sequence or 0)))
    return newest


def _events(reply: list[Any]) -> list[Event]:
    """Decode the events that follow the READ script's header."""
    events = []
    for index in range(8, len(reply), 2):
        raw_id, data = reply[index], reply[index + 1]
        event_id = int(raw_id.partition(b"-")[0])
        try:
            timestamp, kind, payload, trace_id, span_id = json.loads(data)
            if not (isinstance(kind, str) and isinstance(payload, dict)):
                raise ValueError("not an event")  # one place handles every way to fail
            events.append(Event(event_id, float(timestamp), kind, payload, trace_id, span_id))
        except Exception as error:  # written by someone else: readers see it marked and go on
            events.append(Event(event_id, 0.0, _MALFORMED, {"error": str(error)}))
    return events


def _check_url(url: object) -> str:
    if not isinstance(url, str):
        raise ArgumentTypeError(f"url must be a string, got {type(url).__name__}")
    scheme = url.partition("://")[0].lower()
    if scheme not in ("redis", "rediss", "unix"):
        raise ArgumentValueError(
            f"url must start with redis://, rediss:// or unix://, got {public_url(url)!r}"
        )
    problem = url_option_problem(url)
    if problem is not None:
        raise ArgumentValueError(f"url {public_url(url)!r}: {problem}")
    return url


def url_option_problem(url: str) -> str | None:
    """Return what redis-py would refuse in `url`'s database number and options, or None.

    The options are the query's (``?socket_timeout=5&protocol=3``): each must be one that the
    connection of the URL's scheme takes, with a value redis-py can read. Checked when redis-py is
    installed; the password is never part of what is returned.
    """
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # the caller says what is wrong with the URL itself
        return None
    if "@" in parts.path + parts.query + parts.fragment:  # a password with a / ? or #: never quoted
        return None
    scheme = parts.scheme.lower()
    database = parts.path.strip("/") if scheme != "unix" else ""
    options = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    problem = None
    if database and not (database.isascii() and database.isdigit()):
        problem = f"expected a database number after the port, got {database!r}"
    elif any(value not in ("2", "3") for value in options.get("protocol", ())):
        problem = "expected protocol=2 or protocol=3"
    if problem is not None or not options:
        return problem
    try:
        from redis import connection  # noqa: PLC0415  # the optional extra, when installed
    except ImportError:
        return None
    return _unknown_option(connection, scheme, options) or _unreadable_option(connection, scheme, parts.query)


def _unreadable_option(connection: Any, scheme: str, query: str) -> str | None:
    """Say which option redis-py cannot read the value of, if one: its own words, without the URL."""
    parse_url: Callable[[str], object] = connection.parse_url
    try:  # the options alone, on a URL without the password
        parse_url(f"unix:///socket?{query}" if scheme == "unix" else f"{scheme}://host/?{query}")
    except ValueError as error:  # "Invalid value for 'socket_timeout' in connection URL."
        return str(error).rstrip(".").replace(" in connection URL", "")
    return None


def _unknown_option(connection: Any, scheme: str, options: Mapping[str, object]) -> str | None:
    """Say which of `options` a connection pool of redis-py does not take for a URL of `scheme`."""
    kind = {"rediss": connection.SSLConnection, "unix": connection.UnixDomainSocketConnection}.get(
        scheme, connection.Connection
    )
    known = set(inspect.signature(connection.ConnectionPool.__init__).parameters)
    for cls in kind.__mro__:
        init = cls.__dict__.get("__init__")
        if init is not None:
            known.update(inspect.signature(init).parameters)
    known -= {"self", "args", "kwargs", "connection_kwargs"}
    for name in options:
        if name in known:
            continue
        if name.startswith("ssl_") and scheme != "rediss":
            return f"option {name!r} is for TLS connections: rediss:// URLs"
        close = difflib.get_close_matches(name, sorted(known), n=1)
        return f"unknown option {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
    return None


def public_url(url: str) -> str:
    """Return `url` with any password in it replaced by ``***``: fit for logs, ``repr`` and errors.

    Whatever comes between ``://`` and the last ``@`` is user information, even where it holds a
    ``/``, ``#`` or ``?`` that a URL parser would take for the end of it: such a password must not
    slip through, and a name shown masked by mistake costs nothing.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        if "@" in url:  # where a password would end cannot be told: none of it is shown
            return "<a malformed URL>"
        scheme, rest = "", url
    if "@" in rest:
        user_info, _, rest = rest.rpartition("@")
        user = user_info.partition(":")[0] if ":" in user_info else ""
        rest = f"{user}:***@{rest}"
    location, mark, query = rest.partition("?")
    if mark:
        fields = [
            (key, "***" if key.lower() == "password" else value)
            for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True)
        ]
        location = f"{location}?{urllib.parse.urlencode(fields)}"
    return f"{scheme}://{location}" if scheme else location


def _address(kwargs: Mapping[str, Any]) -> str:
    """Return where the client connects, for messages: ``host:port``, or the Unix socket's path."""
    if "path" in kwargs:
        return str(kwargs["path"])
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
