"""Tests for the stdlib Activity server: the JSON API, Server-Sent Events and the page, over real sockets."""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from otel_eventlog import ActivityLimits, InMemoryEventLog, start_activity_server
from otel_eventlog.activity import ActivityServer
from tests.helpers import ListEventLog

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
WAIT = 10.0  # seconds: only ever reached when a test fails


@pytest.fixture
def log() -> InMemoryEventLog:
    return InMemoryEventLog(max_entries=50)


@pytest.fixture
def server(log: InMemoryEventLog) -> Iterator[ActivityServer]:
    """A server on a free port of the loopback interface, with short waits for the tests."""
    with start_activity_server(
        log, port=0, limits=ActivityLimits(max_limit=20, max_wait=5, heartbeat=0.2)
    ) as running:
        yield running


def get(
    server: ActivityServer, target: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(server.addr, server.port, timeout=WAIT)
    try:
        connection.request(method, target, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def get_json(server: ActivityServer, target: str, **kwargs: Any) -> tuple[int, Any]:
    status, headers, body = get(server, target, **kwargs)
    assert headers["content-type"] == "application/json"
    return status, json.loads(body)


class Stream:
    """A Server-Sent Events client that reads one message at a time."""

    def __init__(self, server: ActivityServer, target: str = "/activity/stream", **headers: str) -> None:
        self.connection = http.client.HTTPConnection(server.addr, server.port, timeout=WAIT)
        self.connection.request("GET", target, headers=headers)
        self.response = self.connection.getresponse()
        assert self.response.status == 200
        assert self.response.getheader("Content-Type") == "text/event-stream; charset=utf-8"
        self.epoch: str | None = None  # the log's, from the stream's hello

    def next(self) -> dict[str, str]:
        """Return the next message or comment as its fields (a comment is {"comment": ...})."""
        fields: dict[str, str] = {}
        while True:
            line = self.response.readline().decode()  # through the chunked framing
            assert line, "the stream ended"
            line = line.rstrip("\n")
            if not line:
                if fields.get("event") == "hello":
                    self.epoch = json.loads(fields["data"])["epoch"]
                if fields:
                    return fields
                continue
            name, _, value = line.partition(":")
            fields[name or "comment"] = value.removeprefix(" ")

    def next_event(self) -> dict[str, Any]:
        """Skip to the next event message and return its data."""
        while True:
            message = self.next()
            if "data" in message and "event" not in message:
                data: dict[str, Any] = json.loads(message["data"])
                assert message["id"] == f"{self.epoch}-{data['id']}"  # the id carries the epoch
                return data

    def close(self) -> None:
        """Hang up."""
        self.response.close()
        self.connection.close()


# the JSON page


def test_activity_returns_a_page_by_cursor(server: ActivityServer, log: InMemoryEventLog) -> None:
    """GET /activity?since= returns the wire form of a Page, and its cursor leads to the next one."""
    for n in range(3):
        log.append("turn.started", {"turn": n}, trace_id=TRACE_ID)
    status, page = get_json(server, "/activity?since=1")
    assert status == 200
    assert [e["id"] for e in page["events"]] == [2, 3]
    assert page["events"][0] == {
        "id": 2,
        "timestamp": page["events"][0]["timestamp"],
        "kind": "turn.started",
        "payload": {"turn": 1},
        "trace_id": TRACE_ID,
    }
    assert (page["cursor"], page["missed"], page["oldest_id"], page["latest_id"]) == (3, 0, 1, 3)
    assert page["epoch"] == log.epoch
    assert get_json(server, f"/activity?since={page['cursor']}")[1]["events"] == []


def test_activity_filters_and_limits(server: ActivityServer, log: InMemoryEventLog) -> None:
    """The kind filter (repeated or comma-separated, with patterns), trace_id and limit narrow the page."""
    log.append("turn.started", trace_id=TRACE_ID)
    log.append("heartbeat")
    log.append("tool.called", trace_id=TRACE_ID)
    log.append("turn.completed")
    kinds = lambda target: [e["kind"] for e in get_json(server, target)[1]["events"]]  # noqa: E731
    assert kinds("/activity?kind=turn.*&kind=tool.called") == [
        "turn.started",
        "tool.called",
        "turn.completed",
    ]
    assert kinds("/activity?kind=turn.*,heartbeat&limit=2") == ["turn.started", "heartbeat"]
    assert kinds(f"/activity?trace_id={TRACE_ID}") == ["turn.started", "tool.called"]
    assert kinds("/activity?since=0&_=1700000000") == [
        "turn.started",
        "heartbeat",
        "tool.called",
        "turn.completed",
    ]


def test_limit_is_capped_and_defaults(log: InMemoryEventLog) -> None:
    """A limit above the maximum is capped; with none, the default page size applies."""
    for _ in range(30):
        log.append("tick")
    limits = ActivityLimits(default_limit=5, max_limit=10)
    with start_activity_server(log, port=0, limits=limits) as server:
        assert len(get_json(server, "/activity?limit=1000")[1]["events"]) == 10
        assert len(get_json(server, "/activity")[1]["events"]) == 5


def test_activity_long_polls_until_an_event_arrives(server: ActivityServer, log: InMemoryEventLog) -> None:
    """wait= holds the request until a matching event arrives, then answers at once."""
    log.append("old")
    timer = threading.Timer(0.1, lambda: log.append("turn.started"))
    timer.start()
    start = time.monotonic()
    _, page = get_json(server, "/activity?since=1&wait=4")
    timer.join()
    assert [e["kind"] for e in page["events"]] == ["turn.started"]
    assert time.monotonic() - start < 4


def test_wait_is_capped(log: InMemoryEventLog) -> None:
    """A wait longer than the maximum is cut to it."""
    with start_activity_server(log, port=0, limits=ActivityLimits(max_wait=0.2)) as server:
        start = time.monotonic()
        status, page = get_json(server, "/activity?since=0&wait=3600")
    assert (status, page["events"]) == (200, [])
    assert 0.2 <= time.monotonic() - start < 3


def test_payloads_are_always_valid_json(server: ActivityServer, log: InMemoryEventLog) -> None:
    """Values JSON cannot hold (NaN, objects) are sent as strings rather than breaking the page."""
    log.append("odd", {"ratio": math.nan, "when": object, "ok": 1})
    _, page = get_json(server, "/activity")
    assert page["events"][0]["payload"] == {"ratio": "nan", "when": str(object), "ok": 1}


@pytest.mark.parametrize(
    ("target", "parameter", "message"),
    [
        ("/activity?since=-1", "since", "expected a non-negative integer, got '-1'"),
        ("/activity?since=abc", "since", "expected a non-negative integer, got 'abc'"),
        ("/activity?since=1&since=2", "since", "given more than once"),
        ("/activity?limit=2.5", "limit", "expected a non-negative integer, got '2.5'"),
        ("/activity?wait=-1", "wait", "expected a number of seconds >= 0, got '-1'"),
        ("/activity?wait=soon", "wait", "expected a number of seconds >= 0, got 'soon'"),
        ("/activity?wait=nan", "wait", "expected a number of seconds >= 0, got 'nan'"),
        ("/activity?trace_id=XYZ", "trace_id", "expected 32 lower-case hex digits, got 'XYZ'"),
        ("/activity?kind=", "kind", "expected event names or patterns, got an empty one"),
        (
            "/activity?kind=" + ",".join(f"a*{n}*b" for n in range(65)),
            "kind",
            "expected at most 64 names or patterns, got 65",
        ),
        (
            "/activity/stream?kind=ok&kind=" + "k" * 257,
            "kind",
            f"expected names or patterns of at most 256 characters, got {'k' * 61!r}...",
        ),
        (
            "/activity?epoch=no%20spaces",
            "epoch",
            "expected an epoch: 1 to 128 visible ASCII characters, got 'no spaces'",
        ),
        ("/activity?sinec=3", "sinec", "unknown parameter; known: epoch, kind, limit, since, trace_id, wait"),
        ("/activity/stream?wait=1", "wait", "unknown parameter; known: epoch, kind, since, trace_id"),
        ("/?limit=1", "limit", "unknown parameter; known: since"),
    ],
)
def test_bad_parameters_get_a_400_naming_them(
    server: ActivityServer, target: str, parameter: str, message: str
) -> None:
    """Every parameter a client can get wrong is answered with a 400 and a JSON error naming it."""
    status, body = get_json(server, target)
    assert status == 400
    assert body == {"error": "bad_request", "message": message, "parameter": parameter}


def test_a_bad_last_event_id_gets_a_400(server: ActivityServer) -> None:
    """A Last-Event-ID that is not an event id is refused by name."""
    status, body = get_json(server, "/activity/stream", headers={"Last-Event-ID": "yesterday"})
    assert (status, body["parameter"]) == (400, "Last-Event-ID")


def test_unknown_paths_and_methods(server: ActivityServer) -> None:
    """Unknown paths are 404s and other methods 405s, with JSON bodies."""
    assert get_json(server, "/metrics")[0] == 404
    for method in ("POST", "TRACE", "PROPFIND", "QUERY", "get"):  # whether a do_* exists for it or not
        status, headers, body = get(server, "/activity", method=method)
        assert (status, headers["allow"], headers["content-type"]) == (405, "GET, HEAD", "application/json")
        assert json.loads(body)["error"] == "method_not_allowed"
    assert get(server, "/nowhere", method="TRACE")[0] == 404


def test_head_answers_without_a_body(server: ActivityServer) -> None:
    """HEAD gets the headers of GET and no body."""
    status, headers, body = get(server, "/activity", method="HEAD")
    assert (status, headers["content-type"], body) == (200, "application/json", b"")


def test_the_page_is_served_at_the_root(server: ActivityServer) -> None:
    """GET / returns the self-contained Activity page."""
    status, headers, body = get(server, "/")
    assert (status, headers["content-type"]) == (200, "text/html; charset=utf-8")
    assert b"new EventSource(" in body
    assert b"<script src=" not in body  # nothing fetched from elsewhere


# auth


def test_a_token_is_required_when_configured(log: InMemoryEventLog) -> None:
    """With a token, requests need it as a bearer token or a token parameter; others get a 401."""
    with start_activity_server(log, port=0, token="s3cret") as server:
        status, body = get_json(server, "/activity")
        assert (status, body["error"]) == (401, "unauthorized")
        assert get(server, "/activity")[1]["www-authenticate"] == 'Bearer realm="activity"'
        assert get_json(server, "/activity", headers={"Authorization": "Bearer nope"})[0] == 401
        assert get_json(server, "/activity", headers={"Authorization": "Bearer s3cret"})[0] == 200
        assert get_json(server, "/activity?token=s3cret")[0] == 200
        assert get(server, "/?token=s3cret")[0] == 200


# Server-Sent Events


def test_the_stream_says_hello_then_sends_events_live(server: ActivityServer, log: InMemoryEventLog) -> None:
    """A stream starts with the log's epoch and the retry delay, then the recent events, then new ones."""
    log.append("before")
    stream = Stream(server)
    try:
        hello = stream.next()  # the reconnection delay travels with the first event: no empty message
        assert (hello["retry"], hello["event"]) == ("2000", "hello")
        assert json.loads(hello["data"]) == {"epoch": log.epoch, "latest_id": 1}
        assert stream.next_event()["kind"] == "before"
        log.append("turn.started", {"turn": 1})
        event = stream.next_event()
        assert (event["id"], event["kind"], event["payload"]) == (2, "turn.started", {"turn": 1})
    finally:
        stream.close()


def test_the_stream_resumes_from_last_event_id_without_duplicates_or_loss(
    server: ActivityServer, log: InMemoryEventLog
) -> None:
    """Reconnecting with Last-Event-ID continues right after the last event received."""
    for n in range(3):
        log.append("tick", {"n": n})
    first = Stream(server, "/activity/stream?since=0")
    received = [first.next_event()["id"] for _ in range(2)]
    first.close()
    log.append("tick", {"n": 3})
    second = Stream(server, "/activity/stream?since=0", **{"Last-Event-ID": str(received[-1])})
    try:
        received += [second.next_event()["id"] for _ in range(2)]
    finally:
        second.close()
    assert received == [1, 2, 3, 4]


def test_the_stream_reports_a_gap_after_eviction(server: ActivityServer, log: InMemoryEventLog) -> None:
    """A stream resumed from an evicted event says how many it missed, then goes on."""
    for _ in range(60):  # the log keeps 50
        log.append("tick")
    stream = Stream(server, "/activity/stream", **{"Last-Event-ID": "5"})
    try:
        message = stream.next()
        while message.get("event") != "gap":
            message = stream.next()
        assert json.loads(message["data"]) == {"missed": 5, "oldest_id": 11}
        assert stream.next_event()["id"] == 11
    finally:
        stream.close()


def test_the_stream_filters_by_kind(server: ActivityServer, log: InMemoryEventLog) -> None:
    """A stream with kind= sends only matching events."""
    stream = Stream(server, "/activity/stream?kind=turn.*")
    try:
        log.append("heartbeat")
        log.append("turn.started")
        assert stream.next_event()["kind"] == "turn.started"
    finally:
        stream.close()


def test_a_quiet_stream_sends_heartbeats(server: ActivityServer) -> None:
    """With nothing to send, a stream sends comment lines so that proxies keep it open."""
    stream = Stream(server)
    try:
        message = stream.next()
        while "comment" not in message:
            message = stream.next()
        assert message == {"comment": "heartbeat"}
    finally:
        stream.close()


def request_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "process_request_thread" in t.name]


def test_close_ends_streams_and_long_polls_promptly(log: InMemoryEventLog) -> None:
    """Closing the server with a stream and a long-poll open returns promptly and frees the port."""
    server = start_activity_server(log, port=0, limits=ActivityLimits(max_wait=60, heartbeat=60))
    stream = Stream(server)
    stream.next()
    outcome: list[object] = []

    def long_poll() -> None:
        try:
            outcome.append(get(server, "/activity?since=0&wait=60")[0])
        except OSError as error:  # closed before the request was taken up: reset, as it should be
            outcome.append(type(error))

    poll = threading.Thread(target=long_poll)
    poll.start()
    start = time.monotonic()
    server.close()
    poll.join()
    assert time.monotonic() - start < 5
    assert outcome in (
        [200],
        [ConnectionResetError],
        [ConnectionRefusedError],
        [http.client.RemoteDisconnected],
    )
    for thread in request_threads():  # each is returning from its last call by now
        thread.join(WAIT)
    assert request_threads() == []
    stream.close()
    with start_activity_server(log, port=server.port) as again:  # the port is free again
        assert again.port == server.port


def test_a_disconnected_client_is_let_go(server: ActivityServer, log: InMemoryEventLog) -> None:
    """When a client hangs up mid-stream, the thread serving it ends at the next event."""
    stream = Stream(server)
    stream.next()
    [serving] = request_threads()
    stream.close()
    log.append("after")  # the server's next write to that client fails and ends its stream
    serving.join(WAIT)
    assert not serving.is_alive()


def test_port_zero_reports_the_real_port(server: ActivityServer) -> None:
    """The handle's port and url name the port the kernel chose."""
    assert server.port > 0
    assert urlsplit(server.url).port == server.port
    assert server.url == f"http://127.0.0.1:{server.port}/"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_limit": 0}, "max_limit must be a positive integer, got 0"),
        ({"default_limit": True}, "default_limit must be a positive integer, got True \\(bool\\)"),
        ({"max_wait": -1}, "max_wait must be a positive, finite number of seconds, got -1"),
        ({"heartbeat": math.inf}, "heartbeat must be a positive, finite number of seconds, got inf"),
    ],
)
def test_bad_limits_are_refused(kwargs: dict[str, Any], message: str) -> None:
    """Limits are checked when made, naming the one that is wrong."""
    with pytest.raises((TypeError, ValueError), match=message):
        ActivityLimits(**kwargs)


def test_bad_server_arguments_are_refused(log: InMemoryEventLog) -> None:
    """Something that is not a log, or an empty token, is refused before anything listens."""
    with pytest.raises(TypeError, match="event_log must be an EventLog, got list"):
        start_activity_server([], port=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="token must be a non-empty string or None"):
        start_activity_server(log, port=0, token="")
    for token in ("pässwörd-中", "two words", "tab\there"):
        with pytest.raises(ValueError, match="token must be visible ASCII characters only"):
            start_activity_server(log, port=0, token=token)


def test_a_stream_answers_head_without_a_body(server: ActivityServer) -> None:
    """HEAD on the stream gets its headers only."""
    status, headers, body = get(server, "/activity/stream", method="HEAD")
    assert (status, headers["content-type"], body) == (200, "text/event-stream; charset=utf-8", b"")
    assert repr(server) == f"ActivityServer(url={server.url!r})"


def test_httpx_sse_reads_every_message_as_an_event(server: ActivityServer, log: InMemoryEventLog) -> None:
    """With httpx-sse, the natural loop that decodes each message's data never meets an empty one."""
    import httpx
    from httpx_sse import connect_sse

    log.append("turn.started", {"turn": 1})
    with (
        httpx.Client(timeout=WAIT) as client,
        connect_sse(client, "GET", f"{server.url}activity/stream?since=0") as source,
    ):
        messages = source.iter_sse()
        hello = next(messages)
        assert (hello.event, hello.json()["epoch"], hello.retry) == ("hello", log.epoch, 2000)
        first = next(messages)
        assert (first.event, first.id, first.json()["kind"]) == ("message", f"{log.epoch}-1", "turn.started")


PROMPT = 3.0  # seconds: far more than an event takes, less than a block of heartbeats takes to fill


def deliveries(events: Iterator[Any], kind: Callable[[Any], str]) -> queue.Queue[str]:
    """Read `events` on a thread of their own; each event's kind is put on the returned queue as it comes."""
    arrived: queue.Queue[str] = queue.Queue()

    def read() -> None:
        with contextlib.suppress(Exception):  # the client ends with the test's server
            for event in events:
                arrived.put(kind(event))

    threading.Thread(target=read, daemon=True).start()
    return arrived


def test_clients_that_read_in_blocks_get_each_event_as_it_comes(
    server: ActivityServer, log: InMemoryEventLog
) -> None:
    """sseclient-py and requests-sse (requests underneath) get every event before the next is appended."""
    import requests
    import sseclient
    from requests_sse import EventSource

    response = requests.get(f"{server.url}activity/stream?since=0", stream=True, timeout=WAIT)
    with (
        contextlib.closing(response),
        EventSource(f"{server.url}activity/stream?since=0", timeout=WAIT) as source,
    ):
        clients = [
            deliveries(sseclient.SSEClient(response).events(), lambda event: event.event),  # type: ignore[no-untyped-call]
            deliveries(iter(source), lambda event: event.type),
        ]
        for arrived in clients:
            assert arrived.get(timeout=WAIT) == "hello"
        for n in range(3):
            log.append("tick", {"n": n})
            for arrived in clients:
                # In an unframed body, it waits until the client's read block fills: seconds later.
                assert arrived.get(timeout=PROMPT) == "message"


def test_an_http_1_0_client_gets_the_stream_unframed(server: ActivityServer) -> None:
    """A client that speaks HTTP/1.0 gets a plain body that ends with the connection, as it expects."""
    with socket.create_connection((server.addr, server.port), timeout=WAIT) as connection:
        connection.sendall(b"GET /activity/stream HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        received = b""
        while b"event: hello" not in received:
            chunk = connection.recv(4096)
            assert chunk, "the stream ended"
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200")
    assert b"transfer-encoding" not in head.lower()
    assert body.startswith(b"retry: 2000\nevent: hello\n")


# restarts and impossible cursors


def test_a_stream_resumed_from_another_epoch_starts_over_and_says_so(
    server: ActivityServer, log: InMemoryEventLog
) -> None:
    """A Last-Event-ID of a log that is gone gets a reset message, then the new log from its oldest event."""
    for n in range(3):
        log.append("tick", {"n": n})
    stream = Stream(server, "/activity/stream", **{"Last-Event-ID": "0123456789abcdef-2"})
    try:
        assert stream.next()["event"] == "hello"
        reset = stream.next()
        assert reset["event"] == "reset"
        assert json.loads(reset["data"]) == {"reason": "epoch", "epoch": log.epoch, "oldest_id": 1}
        assert [stream.next_event()["id"] for _ in range(3)] == [1, 2, 3]
    finally:
        stream.close()


def test_a_bare_id_past_the_newest_event_starts_over(server: ActivityServer, log: InMemoryEventLog) -> None:
    """A hand-made client's bare Last-Event-ID beyond the tip (the log restarted) starts over, told so."""
    log.append("after restart")
    stream = Stream(server, "/activity/stream", **{"Last-Event-ID": "30"})
    try:
        stream.next()
        assert json.loads(stream.next()["data"])["reason"] == "beyond_tip"
        assert stream.next_event()["kind"] == "after restart"
    finally:
        stream.close()


def test_a_stream_resumed_in_its_own_epoch_goes_on_without_a_reset(
    server: ActivityServer, log: InMemoryEventLog
) -> None:
    """The id as this server sent it resumes right after that event."""
    for n in range(3):
        log.append("tick", {"n": n})
    stream = Stream(server, "/activity/stream", **{"Last-Event-ID": f"{log.epoch}-2"})
    try:
        assert stream.next()["event"] == "hello"
        message = stream.next()
        assert "event" not in message
        assert json.loads(message["data"])["id"] == 3
    finally:
        stream.close()


def test_a_poll_from_a_gone_log_starts_over_with_a_reset_field(
    server: ActivityServer, log: InMemoryEventLog
) -> None:
    """GET /activity with a cursor past the tip, or another epoch, returns the log from its oldest event."""
    for n in range(3):
        log.append("tick", {"n": n})
    status, page = get_json(server, "/activity?since=30&wait=5")  # answered at once: nothing to wait for
    assert (status, page["reset"], [e["id"] for e in page["events"]]) == (200, "beyond_tip", [1, 2, 3])
    status, page = get_json(server, "/activity?since=2&epoch=0123456789abcdef")
    assert (page["reset"], [e["id"] for e in page["events"]]) == ("epoch", [1, 2, 3])
    status, page = get_json(server, f"/activity?since=2&epoch={log.epoch}")
    assert "reset" not in page
    assert [e["id"] for e in page["events"]] == [3]
    status, body = get_json(server, "/activity?epoch=not%20an%20epoch")
    assert (status, body["parameter"]) == (400, "epoch")
    status, body = get_json(server, "/activity?epoch=" + "e" * 129)
    assert (status, body["parameter"]) == (400, "epoch")


def test_a_log_whose_epoch_is_any_identifier_is_resumed_by_its_own_cursors() -> None:
    """A log of the application's own may name its epoch as it likes (a UUID, say): its cursors work."""
    log = ListEventLog()
    log._epoch = "7c1f0c7e-2b4e-4d0e-9a52-3f0d6c1d2a9b"
    for n in range(3):
        log.append("tick", {"n": n})
    with start_activity_server(log, port=0) as own:
        status, page = get_json(own, f"/activity?since=2&epoch={log.epoch}")
        assert (status, "reset" in page, [e["id"] for e in page["events"]]) == (200, False, [3])
        stream = Stream(own, "/activity/stream", **{"Last-Event-ID": f"{log.epoch}-2"})
        try:
            assert stream.next()["event"] == "hello"
            assert stream.next_event()["id"] == 3  # no reset before it: the cursor was this log's
        finally:
            stream.close()
