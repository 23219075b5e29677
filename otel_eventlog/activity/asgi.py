"""`make_asgi_app`: the Activity endpoints as an ASGI application, for FastAPI, Starlette and the like.

Long-polls and streams wait with `EventLog.read_async`, so they never block the event loop: while one
waits, the loop answers other requests. The short reads that route a request and open a stream run on
a worker thread, since a log's reads may go over the network (the Redis backend). A stream ends when
its client disconnects, the log is closed, or the server is asked to stop (SIGINT, SIGTERM: see
`_shutdown`); a long-poll then answers at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from otel_eventlog.activity._http import (
    SSE_HEADERS,
    SSE_HEARTBEAT,
    STREAM_REFUSED,
    ActivityApp,
    ActivityLimits,
    PollQuery,
    Request,
    Response,
    StreamQuery,
    new_epoch,
    sse_page,
    stream_ended,
    stream_opening,
    unavailable,
)
from otel_eventlog.activity._shutdown import stopping
from otel_eventlog.backends import EventLog
from otel_eventlog.errors import BackendError
from otel_eventlog.event import Page

__all__ = ["make_asgi_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def make_asgi_app(
    event_log: EventLog,
    *,
    token: str | None = None,
    limits: ActivityLimits | None = None,
    loopback_hosts_only: bool = False,
) -> ASGIApp:
    """Return an ASGI application serving `event_log`'s Activity endpoints.

    Args:
        event_log: The log to serve.
        token: If set, requests must carry ``Authorization: Bearer <token>`` (or ``?token=``).
        limits: What one request may ask for (page size, long-poll time, heartbeat).
        loopback_hosts_only: Answer only requests whose ``Host`` is a loopback name (``localhost``,
            ``127.0.0.1``, ``[::1]``), with a ``403`` otherwise, as the stdlib server does without a
            token: for an app served on the loopback interface without a token, so that a web page
            elsewhere cannot reach it through a DNS rebinding.

    Raises:
        TypeError: If `event_log` is not an event log.
        ValueError: If `token` is empty.
    """
    app = ActivityApp(event_log, token=token, limits=limits, loopback_hosts_only=loopback_hosts_only)

    async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":  # websockets and anything else: not ours
            return
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        request = Request(
            scope["method"],
            path,
            scope.get("query_string", b"").decode("latin-1"),
            {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]},
        )
        action = await asyncio.to_thread(app.route, request)
        if isinstance(action, PollQuery):
            try:
                action = app.page_response(await _poll(app, action), action)
            except BackendError as error:
                action = unavailable(error)
        if isinstance(action, Response):
            await _send_response(send, action, head=request.method == "HEAD")
            return
        await send({"type": "http.response.start", "status": 200, "headers": _encode(SSE_HEADERS)})
        if request.method == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        await _stream_until_disconnect(app, action, receive, send)

    return asgi_app


async def _send_response(send: Send, response: Response, *, head: bool) -> None:
    headers = [*response.headers, ("Content-Length", str(len(response.body)))]
    await send({"type": "http.response.start", "status": response.status, "headers": _encode(headers)})
    await send({"type": "http.response.body", "body": b"" if head else response.body})


async def _poll(app: ActivityApp, query: PollQuery) -> Page:
    """Read the page a long-poll asks for; when the server is asked to stop meanwhile, at once."""
    log = app.event_log

    def read(wait: float) -> Awaitable[Page]:
        return log.read_async(query.since, query.limit, kinds=query.kinds, trace_id=query.trace_id, wait=wait)

    if not query.wait:
        return await read(0)
    stopping.watch()
    stop = stopping.future()
    reading = asyncio.ensure_future(read(query.wait))
    try:
        waiting: set[asyncio.Future[Any]] = {reading, stop}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.forget(stop)
    if reading.done():
        return reading.result()
    reading.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reading
    return await read(0)


async def _stream_until_disconnect(
    app: ActivityApp, query: StreamQuery, receive: Receive, send: Send
) -> None:
    with app.counted_stream() as admitted:
        if admitted:
            await _stream_admitted(app, query, receive, send)
            return
    with contextlib.suppress(OSError):
        await send({"type": "http.response.body", "body": STREAM_REFUSED})


async def _stream_admitted(app: ActivityApp, query: StreamQuery, receive: Receive, send: Send) -> None:
    async def pump() -> None:
        async for chunk in _chunks(app, query):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    stopping.watch()
    stop = stopping.future()
    pumping = asyncio.ensure_future(pump())
    watching = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({pumping, watching, stop}, return_when=asyncio.FIRST_COMPLETED)
        client_left = watching.done()
    finally:
        stopping.forget(stop)
        for task in (pumping, watching):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task
    if not client_left:  # the log was closed, or the server is stopping: end the response
        with contextlib.suppress(OSError):
            await send({"type": "http.response.body", "body": b""})


async def _chunks(app: ActivityApp, query: StreamQuery) -> AsyncIterator[bytes]:
    log, limits = app.event_log, app.limits
    try:
        opening, cursor, epoch = await asyncio.to_thread(stream_opening, app, query)
        yield opening
        while not log.closed:
            page = await log.read_async(
                cursor, limits.max_limit, kinds=query.kinds, trace_id=query.trace_id, wait=limits.heartbeat
            )
            cursor = page.cursor
            if page.epoch != epoch:
                reset, cursor = new_epoch(page)
                epoch = page.epoch
                yield reset
            elif page.events or page.missed:
                for chunk in sse_page(page):
                    yield chunk
            else:
                yield SSE_HEARTBEAT
    except BackendError as error:  # the store is gone for now: end the stream; the client reconnects
        yield stream_ended(error)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _encode(headers: list[tuple[str, str]] | Any) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
