"""Tests for the WSGI and ASGI apps, under real servers: wsgiref's, threaded, and uvicorn."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import uvicorn

from otel_eventlog import ActivityLimits, EventLogHandler, InMemoryEventLog, start_activity_server
from otel_eventlog.activity.asgi import make_asgi_app
from otel_eventlog.activity.wsgi import make_wsgi_app
from tests.test_activity_server import WAIT, Stream, get, get_json

LIMITS = ActivityLimits(max_limit=20, max_wait=5, heartbeat=0.2)


@dataclass
class Served:
    """Where a test server listens, as the request helpers want it."""

    addr: str
    port: int


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


@contextmanager
def wsgi_served(app: Any) -> Iterator[Served]:
    server = make_server("127.0.0.1", 0, app, _ThreadingWSGIServer, _QuietHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Served("127.0.0.1", server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def asgi_served(app: Any) -> Iterator[Served]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # connections wait in the backlog until uvicorn takes them: no start-up race
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        yield Served("127.0.0.1", listener.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(WAIT)
        listener.close()


@contextmanager
def served(kind: str, log: InMemoryEventLog, **options: Any) -> Iterator[Served]:
    if kind == "stdlib":
        with start_activity_server(log, port=0, limits=LIMITS, **options) as running:
            yield Served(running.addr, running.port)
    elif kind == "wsgi":
        with wsgi_served(make_wsgi_app(log, limits=LIMITS, **options)) as server:
            yield server
    else:
        with asgi_served(make_asgi_app(log, limits=LIMITS, **options)) as server:
            yield server


KINDS = ["wsgi", "asgi"]


@pytest.mark.parametrize("kind", KINDS)
def test_the_json_page_and_its_errors(kind: str) -> None:
    """GET /activity pages by cursor; bad parameters get 400s naming them; unknown paths 404s."""
    log = InMemoryEventLog()
    for n in range(3):
        log.append("tick", {"n": n})
    with served(kind, log) as server:
        status, page = get_json(server, "/activity?since=1&limit=1")  # type: ignore[arg-type]
        assert (status, [e["id"] for e in page["events"]], page["cursor"]) == (200, [2], 2)
        status, body = get_json(server, "/activity?limit=-5")  # type: ignore[arg-type]
        assert (status, body["parameter"]) == (400, "limit")
        assert get_json(server, "/nope")[0] == 404  # type: ignore[arg-type]
        status, _, body = get(server, "/activity", method="HEAD")  # type: ignore[arg-type]
        assert (status, body) == (200, b"")


@pytest.mark.parametrize("kind", KINDS)
def test_loopback_hosts_only_refuses_a_foreign_host(kind: str) -> None:
    """With loopback_hosts_only, an app answers loopback Host names only: a DNS rebinding gets a 403."""
    log = InMemoryEventLog()
    with served(kind, log, loopback_hosts_only=True) as server:
        status, body = get_json(server, "/activity", headers={"Host": "rebind.attacker.example"})  # type: ignore[arg-type]
        assert (status, body["error"]) == (403, "forbidden")
        for host in ("localhost", "127.0.0.1:8000", "[::1]"):
            assert get_json(server, "/activity", headers={"Host": host})[0] == 200  # type: ignore[arg-type]
    with served(kind, log) as server:  # by default, as before: the app's server decides who reaches it
        assert get_json(server, "/activity", headers={"Host": "app.example"})[0] == 200  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", KINDS)
def test_a_long_poll_returns_when_an_event_arrives(kind: str) -> None:
    """wait= holds the request until an event arrives."""
    log = InMemoryEventLog()
    with served(kind, log) as server:
        timer = threading.Timer(0.1, lambda: log.append("turn.started"))
        timer.start()
        start = time.monotonic()
        _, page = get_json(server, "/activity?since=0&wait=4")  # type: ignore[arg-type]
        timer.join()
    assert [e["kind"] for e in page["events"]] == ["turn.started"]
    assert time.monotonic() - start < 4


@pytest.mark.parametrize("kind", KINDS)
def test_the_stream_sends_events_resumes_and_reports_gaps(kind: str) -> None:
    """The SSE stream sends events live, resumes from Last-Event-ID, and says when events were missed."""
    log = InMemoryEventLog(max_entries=5)
    log.append("before")
    with served(kind, log) as server:
        stream = Stream(server)  # type: ignore[arg-type]
        try:
            assert stream.next_event()["kind"] == "before"
            log.append("turn.started")
            assert stream.next_event()["id"] == 2
        finally:
            stream.close()
        for _ in range(10):
            log.append("tick")
        resumed = Stream(server, **{"Last-Event-ID": "2"})  # type: ignore[arg-type]
        try:
            message = resumed.next()
            while message.get("event") != "gap":
                message = resumed.next()
            assert json.loads(message["data"]) == {"missed": 5, "oldest_id": 8}
            assert resumed.next_event()["id"] == 8
        finally:
            resumed.close()


@pytest.mark.parametrize("kind", KINDS)
def test_the_page_and_auth(kind: str) -> None:
    """GET / serves the page; with a token, requests without it get a 401."""
    with served(kind, InMemoryEventLog(), token="s3cret") as server:
        assert get(server, "/")[0] == 401  # type: ignore[arg-type]
        status, headers, body = get(server, "/", headers={"Authorization": "Bearer s3cret"})  # type: ignore[arg-type]
        assert (status, headers["content-type"]) == (200, "text/html; charset=utf-8")
        assert b"EventSource" in body


def test_the_wsgi_app_works_under_a_mount_point() -> None:
    """Routes are read from PATH_INFO, so the app can live under a prefix."""
    log = InMemoryEventLog()
    log.append("tick")
    inner = make_wsgi_app(log)

    def mounted(environ: dict[str, Any], start_response: Any) -> Any:
        prefix = "/ops"
        environ["SCRIPT_NAME"], environ["PATH_INFO"] = prefix, environ["PATH_INFO"][len(prefix) :]
        return inner(environ, start_response)

    with wsgi_served(mounted) as server:
        assert [e["kind"] for e in get_json(server, "/ops/activity")[1]["events"]] == ["tick"]  # type: ignore[arg-type]


def test_the_asgi_app_works_under_a_root_path() -> None:
    """A root_path set by the framework that mounts the app is stripped before routing."""
    log = InMemoryEventLog()
    log.append("tick")
    inner = make_asgi_app(log)

    async def mounted(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = {**scope, "root_path": "/ops"}
        await inner(scope, receive, send)

    with asgi_served(mounted) as server:
        assert [e["kind"] for e in get_json(server, "/ops/activity")[1]["events"]] == ["tick"]  # type: ignore[arg-type]


def test_the_asgi_app_answers_others_while_a_stream_and_a_long_poll_wait() -> None:
    """On one event loop, a waiting stream and long-poll do not hold up another request."""
    log = InMemoryEventLog()
    with asgi_served(make_asgi_app(log, limits=ActivityLimits(max_wait=30, heartbeat=30))) as server:
        stream = Stream(server)  # type: ignore[arg-type]
        stream.next()
        poll = threading.Thread(target=get, args=(server, "/activity?since=0&wait=30"))
        poll.start()
        start = time.monotonic()
        status, page = get_json(server, "/activity?since=0")  # type: ignore[arg-type]
        assert (status, page["events"]) == (200, [])
        assert time.monotonic() - start < 2  # answered while the others wait
        log.append("turn.started")  # ends the long-poll
        poll.join(WAIT)
        assert stream.next_event()["kind"] == "turn.started"
        stream.close()


def test_the_asgi_stream_ends_when_the_log_is_closed() -> None:
    """Closing the log ends the streams it feeds."""
    log = InMemoryEventLog()
    with asgi_served(make_asgi_app(log, limits=LIMITS)) as server:
        stream = Stream(server)  # type: ignore[arg-type]
        stream.next()
        log.close()

        def read_to_the_end() -> None:
            while True:
                stream.next()

        with pytest.raises(AssertionError, match="the stream ended"):
            read_to_the_end()
        stream.close()


def test_the_asgi_app_ignores_other_connection_types() -> None:
    """Websocket connections are not the app's: it returns without sending anything."""
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "websocket.connect"}

    asyncio.run(make_asgi_app(InMemoryEventLog())({"type": "websocket"}, receive, send))
    assert sent == []


class Unprintable:
    """An object whose __str__ raises."""

    def __str__(self) -> str:
        raise RuntimeError("no")


@pytest.mark.parametrize("kind", ["stdlib", *KINDS])
def test_a_poison_event_is_served_marked_and_the_feed_goes_on(kind: str) -> None:
    """A logged cycle, deep nesting and an unprintable object reach readers as placeholders, not errors."""
    log = InMemoryEventLog()
    logger = logging.getLogger("tests.poison")
    logger.propagate = False
    handler = EventLogHandler(log)
    logger.addHandler(handler)
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    deep: list[Any] = []
    for _ in range(5_000):
        deep = [deep]
    try:
        logger.warning(
            "bad",
            extra={"event_name": "tool.called", "arguments": cyclic, "deep": deep, "obj": Unprintable()},
        )
    finally:
        logger.removeHandler(handler)
    log.append("turn.completed")
    with served(kind, log) as server:
        status, page = get_json(server, "/activity?since=0")  # type: ignore[arg-type]
        assert status == 200
        assert [e["kind"] for e in page["events"]] == ["tool.called", "turn.completed"]
        assert page["events"][0]["payload"]["arguments"] == {"self": "<cycle>"}
        assert page["events"][0]["payload"]["obj"] == "<Unprintable>"  # an object: shown by its type
        stream = Stream(server, "/activity/stream?since=0")  # type: ignore[arg-type]
        try:
            assert stream.next_event()["payload"]["arguments"] == {"self": "<cycle>"}
            assert stream.next_event()["kind"] == "turn.completed"
        finally:
            stream.close()


UVICORN_APP_SCRIPT = """
import socket, sys
import uvicorn
from otel_eventlog import InMemoryEventLog
from otel_eventlog.activity.asgi import make_asgi_app

log = InMemoryEventLog()
log.append("turn.started", {"turn": 1})
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
print(listener.getsockname()[1], flush=True)
uvicorn.Server(uvicorn.Config(make_asgi_app(log), log_level="info", lifespan="on")).run(sockets=[listener])
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_uvicorn_stops_at_once_with_a_stream_and_a_long_poll_open(signum: int) -> None:
    """Asked to stop, uvicorn ends the open stream and answers the long-poll, then exits: no endless wait."""
    import httpx

    command = [sys.executable, "-c", UVICORN_APP_SCRIPT]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        base = f"http://127.0.0.1:{int(process.stdout.readline())}"
        with httpx.Client(timeout=WAIT) as client, client.stream("GET", f"{base}/activity/stream") as stream:
            lines = stream.iter_lines()
            assert next(line for line in lines if line.startswith("data:"))  # the stream is open and live
            polled: list[httpx.Response] = []
            poller = threading.Thread(
                target=lambda: polled.append(client.get(f"{base}/activity", params={"since": 1, "wait": 25}))
            )
            poller.start()
            _wait_until_waiting(base)
            process.send_signal(signum)
            list(lines)  # the stream ends: no exception, no hang
            poller.join(WAIT)
        assert process.wait(WAIT) == -signum  # uvicorn, done, raises the signal it got once more
        _output, errors = process.communicate()
        assert "Application shutdown complete" in errors  # a graceful stop, lifespan and all
        assert "Waiting for connections to close" not in errors
        assert polled[0].status_code == 200
        assert polled[0].json()["events"] == []
    finally:
        process.kill()
        process.communicate()


def _wait_until_waiting(base: str) -> None:
    """Return once the app has a long-poll waiting: its log's stats say so."""
    import httpx

    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:  # each request paces the next
        if httpx.get(f"{base}/activity/stats", timeout=WAIT).json()["log"]["waiting_readers"] >= 2:
            return  # the stream's read and the long-poll's
    raise AssertionError("the long-poll never started waiting")
