"""The HTTP side of the Activity readers, independent of any server: requests in, responses out.

`ActivityApp` answers ``GET /activity`` (a JSON page), ``GET /activity/stream`` (Server-Sent Events),
``GET /activity/stats`` (the log's counters) and ``GET /`` (the Activity page). The stdlib server, the
WSGI app and the ASGI app are thin adapters around it. Everything a client sends is checked here: a
bad parameter is a ``400`` with a JSON body naming it, an unknown path a ``404``, a missing or wrong
token a ``401``, a foreign ``Host`` without a token a ``403``, one stream too many a ``503``; never a
``500``.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar
from urllib.parse import parse_qs

from otel_eventlog import _defaults
from otel_eventlog._checks import check_count, check_seconds, check_trace_id, is_header_token
from otel_eventlog._json import dumps
from otel_eventlog.backends import EventLog, Observable, check_event_log
from otel_eventlog.errors import ArgumentValueError, BackendError, BadRequest
from otel_eventlog.event import Event, Page

__all__ = ["WAIT_SLICE", "ActivityApp", "ActivityLimits", "PollQuery", "Request", "Response", "StreamQuery"]

#: How long a request served on a thread (stdlib server, WSGI) waits at a time before it looks at
#: whether to stop, so that closing the server ends it promptly.
WAIT_SLICE = _defaults.WAIT_SLICE_SECONDS

_PARAMETERS = {
    "/activity": frozenset({"since", "epoch", "limit", "kind", "trace_id", "wait"}),
    "/activity/stream": frozenset({"since", "epoch", "kind", "trace_id"}),
    "/activity/stats": frozenset(),
    "/": frozenset({"since"}),  # read by the page's script, for its stream
}


@dataclass(frozen=True, kw_only=True, slots=True)
class ActivityLimits:
    """What one request may ask for.

    Attributes:
        default_limit: Events per ``/activity`` page when the request names no ``limit``.
        max_limit: The most events one page returns; larger ``limit`` values are capped.
        max_wait: The longest long-poll, in seconds; larger ``wait`` values are capped.
        heartbeat: Seconds between two comment lines on a quiet stream, so that proxies keep it open.
        max_streams: The most streams open at once; more are refused with a ``503``.
        max_connections: The most connections the stdlib server serves at once; more get a ``503``.
        io_timeout: Seconds the stdlib server waits on a connection that sends nothing (a half-sent
            request) or reads nothing (a stalled stream) before it drops it; a request must also
            arrive whole within it.
    """

    default_limit: int = _defaults.DEFAULT_LIMIT
    max_limit: int = _defaults.MAX_LIMIT
    max_wait: float = _defaults.MAX_WAIT_SECONDS
    heartbeat: float = _defaults.HEARTBEAT_SECONDS
    max_streams: int = _defaults.MAX_STREAMS
    max_connections: int = _defaults.MAX_CONNECTIONS
    io_timeout: float = _defaults.IO_TIMEOUT_SECONDS

    def __post_init__(self) -> None:
        check_count(self.default_limit, "default_limit")
        check_count(self.max_limit, "max_limit")
        check_count(self.max_streams, "max_streams")
        check_count(self.max_connections, "max_connections")
        object.__setattr__(self, "io_timeout", check_seconds(self.io_timeout, "io_timeout", positive=True))
        object.__setattr__(self, "max_wait", check_seconds(self.max_wait, "max_wait", positive=True))
        object.__setattr__(self, "heartbeat", check_seconds(self.heartbeat, "heartbeat", positive=True))


@dataclass(frozen=True, slots=True)
class Request:
    """An HTTP request, as much of it as the Activity endpoints read."""

    method: str
    path: str
    query_string: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)  # names in lower case


@dataclass(frozen=True, slots=True)
class Response:
    """A complete response: status, headers and body."""

    status: int
    headers: Sequence[tuple[str, str]]
    body: bytes


@dataclass(frozen=True, slots=True)
class PollQuery:
    """A checked ``/activity`` request: the arguments of the read, and how long it may wait."""

    since: int | None
    limit: int
    kinds: tuple[str, ...] | None
    trace_id: str | None
    wait: float
    #: The epoch `since` belongs to, when the reader said (``epoch=``).
    epoch: str | None = None
    #: Why the reader starts over from the oldest event, when its cursor cannot be this log's.
    reset: str | None = None


@dataclass(frozen=True, slots=True)
class StreamQuery:
    """A checked ``/activity/stream`` request: where to start and what to send."""

    since: int | None
    kinds: tuple[str, ...] | None
    trace_id: str | None
    #: The epoch `since` belongs to: from ``Last-Event-ID`` (``<epoch>-<id>``) or ``epoch=``.
    epoch: str | None = None
    #: Why the reader starts over from the oldest event, when its cursor cannot be this log's.
    reset: str | None = None


#: Why a reader starts over: its cursor is another log's (a restarted application), or past the newest
#: event (a restarted application whose new log is still shorter than the old one).
RESET_EPOCH = "epoch"
RESET_BEYOND_TIP = "beyond_tip"

_JSON = "application/json"
_NO_STORE = ("Cache-Control", "no-store")


_Query = TypeVar("_Query", PollQuery, StreamQuery)


class ActivityApp:
    """Answers Activity requests over one event log. Thread-safe; shared by every adapter.

    Args:
        event_log: The log to serve.
        token: If set, every request must carry ``Authorization: Bearer <token>`` (or, for browsers'
            EventSource, which cannot set headers, a ``token`` query parameter); compared in constant
            time.
        limits: What one request may ask for.
        page: The HTML of ``GET /``; by default the built-in Activity page.
        loopback_hosts_only: Answer only requests whose ``Host`` is a loopback name (``localhost``,
            ``127.0.0.1``, ``[::1]``), as a server without a token on the loopback interface should:
            a web page elsewhere cannot then reach it through a DNS rebinding.
        bound_name: The name the server was bound to, when that name resolves to the loopback
            interface (``--addr myhost``): accepted as a ``Host`` too, so that its own URL answers.
    """

    def __init__(
        self,
        event_log: EventLog,
        *,
        token: str | None = None,
        limits: ActivityLimits | None = None,
        page: bytes | None = None,
        loopback_hosts_only: bool = False,
        bound_name: str | None = None,
    ) -> None:
        check_event_log(event_log)
        if token is not None and (not isinstance(token, str) or not token):
            raise ArgumentValueError("token must be a non-empty string or None")
        if token is not None and not is_header_token(token):
            raise ArgumentValueError("token must be visible ASCII characters only: an HTTP header carries it")
        self.event_log = event_log
        self.limits = limits if limits is not None else ActivityLimits()
        self._token = None if token is None else token.encode()
        self._page = page if page is not None else _builtin_page()
        self._loopback_hosts_only = loopback_hosts_only
        self._bound_name = None if bound_name is None else bound_name.lower()
        self._streams_lock = threading.Lock()
        #: How many streams are open now.
        self.open_streams = 0

    # The shared first step of every adapter.

    def route(self, request: Request) -> Response | PollQuery | StreamQuery:
        """Check `request` and say what to do: send a response, make a read, or run a stream."""
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        try:
            action = self._action(request, self._params(request))
        except _Unauthorized as error:
            return error_response(401, "unauthorized", error.problem)
        except BadRequest as error:
            return error_response(400, "bad_request", error.problem, parameter=error.parameter)
        except BackendError as error:
            return unavailable(error)
        if isinstance(action, StreamQuery) and self.open_streams >= self.limits.max_streams:
            return error_response(
                503, "unavailable", f"{self.open_streams} streams are open, the most allowed"
            )
        return action

    def _refusal(self, request: Request) -> Response | None:
        """Return the response to a request for no endpoint, by another method, or to a foreign host."""
        if request.path not in _PARAMETERS:
            return error_response(404, "not_found", f"no such path: {request.path}")
        if request.method not in ("GET", "HEAD"):
            return error_response(
                405, "method_not_allowed", f"{request.method} is not allowed", allow="GET, HEAD"
            )
        host = request.headers.get("host")
        if (
            self._loopback_hosts_only
            and host is not None
            and not is_loopback(name := host_name(host))
            and name != self._bound_name
        ):
            message = f"this server has no token and answers loopback host names only, not {_shown(host)}"
            return error_response(403, "forbidden", message)
        return None

    def stats(self) -> dict[str, Any]:
        """Return what ``GET /activity/stats`` answers: the log's counters and the open streams."""
        log = self.event_log
        if isinstance(log, Observable):
            counters = dict(log.stats())
        else:  # a log of the application's own that keeps no counters: what every log can tell
            counters = {"appended": log.read(None, 0).latest_id, "resident": len(log)}
        return {"epoch": log.epoch, "log": counters, "open_streams": self.open_streams}

    @contextlib.contextmanager
    def counted_stream(self) -> Iterator[bool]:
        """Count a stream as open while the block runs, if the limit leaves room; yield whether it did.

        `route` answers a ``503`` to a stream beyond the limit; two requests it let through at once
        may still find room for one of them only, which is told here, so that the limit always holds.
        """
        with self._streams_lock:
            admitted = self.open_streams < self.limits.max_streams
            if admitted:
                self.open_streams += 1
        try:
            yield admitted
        finally:
            if admitted:
                with self._streams_lock:
                    self.open_streams -= 1

    def _action(self, request: Request, params: dict[str, list[str]]) -> Response | PollQuery | StreamQuery:
        if request.path == "/":
            return Response(200, [("Content-Type", "text/html; charset=utf-8"), _NO_STORE], self._page)
        if request.path == "/activity/stats":
            return Response(200, [("Content-Type", _JSON), _NO_STORE], dumps(self.stats()))
        if request.path == "/activity/stream":
            since, epoch = _cursor(params, "since"), _epoch(params)
            resume = _last_event_id(request.headers.get("last-event-id"))  # a reconnecting browser's
            if resume is not None:
                epoch, since = resume
            return self._start_over(
                StreamQuery(since=since, kinds=_kinds(params), trace_id=_trace_id(params), epoch=epoch)
            )
        limit = _cursor(params, "limit")
        return self._start_over(
            PollQuery(
                since=_cursor(params, "since"),
                limit=min(self.limits.default_limit if limit is None else limit, self.limits.max_limit),
                kinds=_kinds(params),
                trace_id=_trace_id(params),
                wait=_wait(params, self.limits.max_wait),
                epoch=_epoch(params),
            )
        )

    def _start_over(self, query: _Query) -> _Query:
        """Return `query` from the oldest event, with the reason, if its cursor cannot be this log's.

        A cursor from another epoch, or past the newest event, belongs to a log that is gone (the
        application restarted): followed as it is, it would skip the new log's events, or wait for
        ids that mean something else. The reader is told, and starts over.
        """
        head = self.event_log.read(None, 0)  # also: a log that cannot be read is a 503 now, not a 200
        if query.since is None and query.epoch is None:
            return query
        if query.epoch is not None and query.epoch != head.epoch:
            reason = RESET_EPOCH
        elif query.since is not None and query.since > head.latest_id:
            reason = RESET_BEYOND_TIP
        else:
            return query
        return replace(query, since=None, reset=reason)

    def _params(self, request: Request) -> dict[str, list[str]]:
        params = parse_qs(request.query_string, keep_blank_values=True)
        token = params.pop("token", None)
        if self._token is not None:
            given = request.headers.get("authorization", "")
            presented = given[7:] if given[:7].lower() == "bearer " else (token[-1] if token else "")
            if not hmac.compare_digest(presented.encode(), self._token):
                raise _Unauthorized
        allowed = _PARAMETERS[request.path]
        for name in params:
            if name not in allowed and not name.startswith("_"):  # _=... is a cache buster
                known = ", ".join(sorted(allowed)) or "none"
                raise BadRequest(name, f"unknown parameter; known: {known}")
        return params

    def page_response(self, page: Page, query: PollQuery | None = None) -> Response:
        """Return the JSON response for a page of ``/activity``, with ``reset`` if the reader starts over.

        The events take at most `MAX_BODY_BYTES` of it, encoded (at least one is always there): a
        page of large events ends early, its cursor after the last one in it, and the reader's next
        poll gets the rest. Memory held for a reader that does not read is bounded so.
        """
        encoded = list(_within_body(page.events))
        if len(encoded) < len(page.events):
            page = replace(page, events=page.events[: len(encoded)], cursor=page.events[len(encoded) - 1].id)
        rest = page.to_dict()
        del rest["events"]
        if query is not None and query.reset is not None:
            rest["reset"] = query.reset
        body = b'{"events":[' + b",".join(encoded) + b"]," + dumps(rest)[1:]
        return Response(200, [("Content-Type", _JSON), _NO_STORE], body)


class _Unauthorized(BadRequest):
    """The request's token is missing or wrong: answered with a ``401``, not a ``400``."""

    def __init__(self) -> None:
        super().__init__("token", "a valid bearer token is required")


def host_name(host: str) -> str:
    """Return the name in a ``Host`` header, without its port or an IPv6 address's brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def is_loopback(name: str) -> bool:
    """Tell whether a host name or address names this machine's loopback interface."""
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return bool(address.is_loopback)


def unavailable(error: BackendError) -> Response:
    """Return the ``503`` for a log whose store cannot be read now (Redis is down, say)."""
    return error_response(503, "unavailable", f"the event log cannot be read now: {error}")


def error_response(status: int, error: str, message: str, **extra: str) -> Response:
    """Return a JSON error response: ``{"error", "message"}`` plus `extra` (``parameter``, ``allow``)."""
    allow = extra.pop("allow", None)
    body: dict[str, Any] = {"error": error, "message": message, **extra}
    headers = [("Content-Type", _JSON), _NO_STORE]
    if allow is not None:
        headers.append(("Allow", allow))
    if status == 401:
        headers.append(("WWW-Authenticate", 'Bearer realm="activity"'))
    if status == 503:
        headers.append(("Retry-After", "5"))
    return Response(status, headers, dumps(body))


def _one(params: Mapping[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest(name, "given more than once")
    return values[0]


def _cursor(params: Mapping[str, list[str]], name: str) -> int | None:
    text = _one(params, name)
    return None if text is None else _non_negative(text, name)


# Ids beyond this many digits cannot exist; refusing them also keeps int() under CPython's digit limit.
_MAX_DIGITS = 30


def _non_negative(text: str, name: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise BadRequest(name, f"expected a non-negative integer, got {_shown(text)}")
    if len(text) > _MAX_DIGITS:
        raise BadRequest(
            name, f"expected a non-negative integer of at most {_MAX_DIGITS} digits, got {len(text)}"
        )
    return int(text)


def _shown(text: str) -> str:
    """Return a client's text for an error message: quoted, and cut when long."""
    return repr(text) if len(text) <= 64 else f"{text[:61]!r}..."


def _wait(params: Mapping[str, list[str]], most: float) -> float:
    text = _one(params, "wait")
    if text is None:
        return 0.0
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds < math.inf:
        raise BadRequest("wait", f"expected a number of seconds >= 0, got {_shown(text)}")
    return min(seconds, most)


# What one reader's `kind` filter may hold: every event read is matched against it, so a filter of
# thousands of patterns would make each read (and, for an ASGI server, its event loop) slow.
MAX_KINDS = 64
MAX_KIND_LENGTH = 256


def _kinds(params: Mapping[str, list[str]]) -> tuple[str, ...] | None:
    values = params.get("kind")
    if values is None:
        return None
    kinds = tuple(name.strip() for value in values for name in value.split(","))
    if not all(kinds):
        raise BadRequest("kind", "expected event names or patterns, got an empty one")
    if len(kinds) > MAX_KINDS:
        raise BadRequest("kind", f"expected at most {MAX_KINDS} names or patterns, got {len(kinds)}")
    longest = max(kinds, key=len)
    if len(longest) > MAX_KIND_LENGTH:
        raise BadRequest(
            "kind",
            f"expected names or patterns of at most {MAX_KIND_LENGTH} characters, got {_shown(longest)}",
        )
    return kinds


def _trace_id(params: Mapping[str, list[str]]) -> str | None:
    text = _one(params, "trace_id")
    if text is None:
        return None
    try:
        return check_trace_id(text)
    except ArgumentValueError:
        raise BadRequest("trace_id", f"expected 32 lower-case hex digits, got {_shown(text)}") from None


def _last_event_id(header: str | None) -> tuple[str | None, int] | None:
    """Read ``Last-Event-ID``: ``<epoch>-<id>`` as this server sends it, or a bare id (hand-made clients)."""
    if header is None or not header.strip():
        return None
    epoch, _, event_id = header.strip().rpartition("-")
    name = "Last-Event-ID"
    return (_checked_epoch(epoch, name) if epoch else None), _non_negative(event_id, name)


# A log's epoch as a cursor may carry it: visible ASCII, no spaces (a log of the application's own may use
# any such identifier, a UUID with its dashes, say; the built-in logs use hex digits).
_EPOCH = re.compile(r"[!-~]{1,128}")


def _epoch(params: Mapping[str, list[str]]) -> str | None:
    text = _one(params, "epoch")
    return None if text is None else _checked_epoch(text, "epoch")


def _checked_epoch(text: str, name: str) -> str:
    if not _EPOCH.fullmatch(text):
        raise BadRequest(name, f"expected an epoch: 1 to 128 visible ASCII characters, got {_shown(text)}")
    return text


def sse_event(event: Event, epoch: str) -> bytes:
    """Return the Server-Sent Events message for `event`: its id, with the log's epoch, and its wire form."""
    return b"id: %s-%d\ndata: %s\n\n" % (epoch.encode(), event.id, dumps(event.to_dict()))


def sse_message(kind: str, data: Mapping[str, Any]) -> bytes:
    """Return a named Server-Sent Events message (``hello``, ``gap``)."""
    return b"event: %s\ndata: %s\n\n" % (kind.encode(), dumps(data))


SSE_HEADERS = [
    ("Content-Type", "text/event-stream; charset=utf-8"),
    ("Cache-Control", "no-store"),
    ("X-Accel-Buffering", "no"),  # tells nginx not to buffer the stream
]
SSE_HEARTBEAT = b": heartbeat\n\n"
#: All a stream sends when, started together with others, it finds the most streams open: the client
#: reconnects later, as after any stream that ends.
STREAM_REFUSED = b": refused: the most streams allowed are open\n\n"


def stream_opening(app: ActivityApp, query: StreamQuery) -> tuple[bytes, int, str]:
    """Return a stream's opening lines, the cursor it starts from and the log's epoch.

    The opening is a ``hello`` naming the log's epoch, with the reconnection delay, then a ``reset``
    when the reader's cursor was another log's; the cursor is the request's, else just before the most
    recent events (or before the oldest, for a reader starting over).
    """
    start = app.event_log.read(None, 0)
    cursor = query.since
    oldest = start.latest_id + 1 if start.oldest_id is None else start.oldest_id
    if query.reset is not None:  # a cursor of a log that is gone: everything this one holds
        cursor = oldest - 1
    elif cursor is None:  # a new reader: the most recent events first, and no gap to report
        cursor = max(start.latest_id - app.limits.default_limit, oldest - 1)
    # The reconnection delay travels in the hello's own block: a block with no event in it reads, to
    # some clients (httpx-sse), as an empty message.
    opening = b"retry: 2000\n" + sse_message("hello", {"epoch": start.epoch, "latest_id": start.latest_id})
    if query.reset is not None:
        opening += sse_message("reset", {"reason": query.reset, "epoch": start.epoch, "oldest_id": oldest})
    return opening, cursor, start.epoch


def new_epoch(page: Page) -> tuple[bytes, int]:
    """Return the ``reset`` for a stream whose log began again under it, and the cursor to go on from.

    A shared log begins again when its store loses it (Redis flushed or restarted): the reader's
    cursor means nothing in the new log, so the stream starts over from the new log's oldest event.
    """
    oldest = page.latest_id + 1 if page.oldest_id is None else page.oldest_id
    reset = sse_message("reset", {"reason": RESET_EPOCH, "epoch": page.epoch, "oldest_id": oldest})
    return reset, oldest - 1


def stream_ended(error: BackendError) -> bytes:
    """Return the comment that ends a stream whose log cannot be read now; the client reconnects."""
    return b": unavailable: " + " ".join(str(error).split()).encode("utf-8", "replace") + b"\n\n"


#: The most one poll's response, or one write of a stream, holds of encoded events (one event alone may
#: hold more): what a reader that does not read can make the server keep for it.
MAX_BODY_BYTES = 1024 * 1024


def _within_body(events: Sequence[Event]) -> Iterator[bytes]:
    """Yield the events' encodings, oldest first, as long as they come to `MAX_BODY_BYTES` (one at least)."""
    size = 0
    for event in events:
        encoded = dumps(event.to_dict())
        size += len(encoded) + 1
        if size > MAX_BODY_BYTES and size > len(encoded) + 1:
            return
        yield encoded


def sse_page(page: Page) -> Iterator[bytes]:
    """Yield the messages for one page of a stream, a ``gap`` first if events were missed.

    Joined into writes of at most `MAX_BODY_BYTES` (one large event alone may be more).
    """
    chunk = [sse_message("gap", {"missed": page.missed, "oldest_id": page.oldest_id})] if page.missed else []
    size = sum(map(len, chunk))
    for event in page.events:
        message = sse_event(event, page.epoch)
        if chunk and size + len(message) > MAX_BODY_BYTES:
            yield b"".join(chunk)
            chunk, size = [], 0
        chunk.append(message)
        size += len(message)
    if chunk:
        yield b"".join(chunk)


def _builtin_page() -> bytes:
    from importlib.resources import files  # noqa: PLC0415  # read once, when an app is made

    return files("otel_eventlog.activity").joinpath("page.html").read_bytes()


def poll(app: ActivityApp, query: PollQuery, stopped: Callable[[], bool], slice_seconds: float) -> Page:
    """Read ``/activity``'s page, waiting for news up to `query.wait` in slices, until `stopped()`."""

    def read(since: int | None, wait: float = 0) -> Page:
        return app.event_log.read(since, query.limit, kinds=query.kinds, trace_id=query.trace_id, wait=wait)

    page = read(query.since)
    if query.limit == 0:  # a read for no events has nothing to wait for
        return page
    deadline = time.monotonic() + query.wait
    while not (page.events or page.missed) and not stopped():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        page = read(page.cursor, min(remaining, slice_seconds))
    return page


def stream(
    app: ActivityApp, query: StreamQuery, stopped: Callable[[], bool], slice_seconds: float
) -> Iterator[bytes]:
    """Yield the chunks of ``/activity/stream`` as events come, until `stopped()` or the log is closed.

    It waits on the log in slices of `slice_seconds`, so that `stopped` is looked at that often, and
    yields a heartbeat comment after `ActivityLimits.heartbeat` quiet seconds.
    """
    log, limits = app.event_log, app.limits
    with app.counted_stream() as admitted:
        if not admitted:
            yield STREAM_REFUSED
            return
        try:
            opening, cursor, epoch = stream_opening(app, query)
            yield opening
            quiet_since = time.monotonic()
            while not stopped() and not log.closed:
                page = log.read(
                    cursor, limits.max_limit, kinds=query.kinds, trace_id=query.trace_id, wait=slice_seconds
                )
                cursor = page.cursor
                if page.epoch != epoch:
                    reset, cursor = new_epoch(page)
                    epoch = page.epoch
                    yield reset
                elif page.events or page.missed:
                    yield from sse_page(page)
                elif time.monotonic() - quiet_since >= limits.heartbeat:
                    yield SSE_HEARTBEAT
                else:
                    continue
                quiet_since = time.monotonic()
        except BackendError as error:  # the store is gone for now: end the stream; the client reconnects
            yield stream_ended(error)
