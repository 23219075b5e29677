"""`make_wsgi_app`: the Activity endpoints as a WSGI application, to mount in Flask, Django and the like.

Routes are read from ``PATH_INFO``, so the app works under any mount point (``SCRIPT_NAME``); the page
finds its stream by a relative URL. A stream or a long-poll holds its worker while it waits, as any
WSGI response does: give the server enough threads, or serve streams from the ASGI app.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from otel_eventlog.activity._http import (
    SSE_HEADERS,
    WAIT_SLICE,
    ActivityApp,
    ActivityLimits,
    PollQuery,
    Request,
    Response,
    poll,
    stream,
    unavailable,
)
from otel_eventlog.backends import EventLog
from otel_eventlog.errors import BackendError

__all__ = ["make_wsgi_app"]

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def make_wsgi_app(
    event_log: EventLog,
    *,
    token: str | None = None,
    limits: ActivityLimits | None = None,
    loopback_hosts_only: bool = False,
) -> WSGIApp:
    """Return a WSGI application serving `event_log`'s Activity endpoints.

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
    never = threading.Event().is_set  # a WSGI server stops a response by closing its iterator

    def wsgi_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        request = Request(
            environ.get("REQUEST_METHOD", "GET"),
            environ.get("PATH_INFO") or "/",
            environ.get("QUERY_STRING", ""),
            headers,
        )
        action = app.route(request)
        if isinstance(action, PollQuery):
            try:
                action = app.page_response(poll(app, action, never, WAIT_SLICE), action)
            except BackendError as error:
                action = unavailable(error)
        if isinstance(action, Response):
            start_response(
                _status(action.status), [*action.headers, ("Content-Length", str(len(action.body)))]
            )
            return [] if request.method == "HEAD" else [action.body]
        start_response(_status(200), list(SSE_HEADERS))
        if request.method == "HEAD":
            return []
        return stream(app, action, never, WAIT_SLICE)  # the server closes the generator when the client goes

    return wsgi_app


def _status(code: int) -> str:
    return f"{code} {HTTPStatus(code).phrase}"
