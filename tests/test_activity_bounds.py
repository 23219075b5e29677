"""The stdlib Activity server's bounds: exposure, connection and stream caps, timeouts, a prompt close."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from otel_eventlog import ActivityLimits, InMemoryEventLog, start_activity_server
from otel_eventlog.activity import ActivityServer

WAIT = 10.0  # seconds: only ever reached when a test fails


def request(server: ActivityServer, target: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(server.addr, server.port, timeout=WAIT)
    try:
        connection.request("GET", target, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_an_address_beyond_loopback_needs_a_token_or_an_explicit_yes() -> None:
    """Binding 0.0.0.0 without a token is refused, naming the settings that allow it."""
    with pytest.raises(
        ValueError, match=r"refusing to serve the activity feed on 0.0.0.0 without a token"
    ) as caught:
        start_activity_server(InMemoryEventLog(), port=0, addr="0.0.0.0")
    assert "allow_unauthenticated" in str(caught.value)
    assert "OTEL_EVENTLOG_ACTIVITY_TOKEN" in str(caught.value)
    with start_activity_server(InMemoryEventLog(), port=0, addr="0.0.0.0", token="s3cret"):
        pass
    with start_activity_server(InMemoryEventLog(), port=0, addr="0.0.0.0", allow_unauthenticated=True):
        pass


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def test_the_server_takes_an_ipv6_address_bare_or_in_brackets_and_a_name() -> None:
    """``::1`` and ``[::1]`` (as URLs write it) serve on IPv6; ``localhost`` is loopback by what it names."""
    if not _ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback interface")
    for addr in ("::1", "[::1]"):
        with start_activity_server(InMemoryEventLog(), port=0, addr=addr) as server:
            assert server.url == f"http://[::1]:{server.port}/"
            status, _ = request(server, "/activity", {"Host": f"[::1]:{server.port}"})
            assert status == 200
    with start_activity_server(InMemoryEventLog(), port=0, addr="localhost") as server:
        assert server.url == f"http://localhost:{server.port}/"


def test_a_name_of_the_loopback_interface_serves_without_a_token_and_answers_its_own_url() -> None:
    """``127.1`` (or a host name that resolves to 127.0.1.1) is loopback: its own URL answers, others not."""
    with start_activity_server(InMemoryEventLog(), port=0, addr="127.1") as server:
        assert server.url == f"http://127.1:{server.port}/"
        assert request(server, "/activity", {"Host": f"127.1:{server.port}"})[0] == 200
        assert request(server, "/activity", {"Host": f"evil.example:{server.port}"})[0] == 403


def test_an_address_that_names_nothing_is_an_oserror_naming_why() -> None:
    """An unresolvable name fails as binding it would, before any word about tokens."""
    with pytest.raises(OSError, match=r"Name or service not known|nodename nor servname"):
        start_activity_server(InMemoryEventLog(), port=0, addr="nothing-here.invalid")


def test_a_token_less_loopback_server_answers_loopback_host_names_only() -> None:
    """A page on another site cannot reach the feed through DNS rebinding: a foreign Host gets a 403."""
    with start_activity_server(InMemoryEventLog(), port=0) as server:
        status, body = request(server, "/activity", {"Host": "evil.example:9450"})
        assert status == 403
        assert "evil.example" in json.loads(body)["message"]
        for host in (
            f"localhost:{server.port}",
            f"127.0.0.1:{server.port}",
            f"[::1]:{server.port}",
            "app.localhost",
        ):
            assert request(server, "/activity", {"Host": host})[0] == 200
    with start_activity_server(InMemoryEventLog(), port=0, token="s3cret") as server:
        headers = {"Host": "activity.internal", "Authorization": "Bearer s3cret"}
        assert request(server, "/activity", headers)[0] == 200


def test_close_returns_promptly_whatever_the_clients_do() -> None:
    """A half-sent request, an idle connection and a stream nobody reads do not hold close() up."""
    log = InMemoryEventLog()
    server = start_activity_server(log, port=0, limits=ActivityLimits(io_timeout=30))
    half = socket.create_connection((server.addr, server.port), timeout=WAIT)
    half.sendall(b"GET /activity HT")
    idle = socket.create_connection((server.addr, server.port), timeout=WAIT)
    stalled = socket.create_connection((server.addr, server.port), timeout=WAIT)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(b"GET /activity/stream HTTP/1.1\r\nHost: localhost\r\n\r\n")
    for n in range(2000):
        log.append("tick", {"text": "x" * 1000, "n": n})
    started = time.monotonic()
    server.close()
    assert time.monotonic() - started < 3
    for client in (half, idle, stalled):
        client.close()


def test_a_half_sent_request_is_dropped_after_the_io_timeout() -> None:
    """A client that starts a request and stops sending is disconnected once io_timeout passes."""
    with start_activity_server(InMemoryEventLog(), port=0, limits=ActivityLimits(io_timeout=0.3)) as server:
        client = socket.create_connection((server.addr, server.port), timeout=WAIT)
        client.sendall(b"GET /activity HTTP/1.1\r\nHost: localhost\r\n")  # never finished
        started = time.monotonic()
        assert client.recv(1024) == b""
        assert time.monotonic() - started < WAIT
        client.close()


def test_a_request_sent_a_byte_at_a_time_must_still_arrive_within_the_io_timeout() -> None:
    """A client keeping each silence under io_timeout cannot hold a connection for ever (slowloris)."""
    with start_activity_server(InMemoryEventLog(), port=0, limits=ActivityLimits(io_timeout=0.5)) as server:
        client = socket.create_connection((server.addr, server.port), timeout=WAIT)
        client.sendall(b"GET /activity HTTP/1.1\r\nHost: localhost\r\n")
        started = time.monotonic()
        try:
            while time.monotonic() - started < WAIT:  # a header byte every 0.1 s, for as long as it is let
                client.sendall(b"X")
                time.sleep(0.1)  # the client's pace: what the test is about
        except OSError:  # the server closed the connection: the next byte finds it gone
            pass
        with contextlib.suppress(ConnectionResetError):  # closed with a byte of ours unread: as closed
            assert client.recv(1024) == b""
        assert time.monotonic() - started < WAIT / 2
        client.close()
        assert request(server, "/activity")[0] == 200  # the server serves on


def test_connections_beyond_the_cap_get_a_503() -> None:
    """With max_connections open, the next connection is answered 503 at once and closed."""
    limits = ActivityLimits(max_connections=2, io_timeout=30)
    with start_activity_server(InMemoryEventLog(), port=0, limits=limits) as server:
        held = [socket.create_connection((server.addr, server.port), timeout=WAIT) for _ in range(2)]
        for client in held:
            client.sendall(b"GET /activity?wait=20 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, body = request(server, "/activity")
        assert status == 503
        assert json.loads(body)["error"] == "unavailable"
        for client in held:
            client.close()


def test_streams_beyond_the_cap_get_a_503_with_retry_after() -> None:
    """With max_streams open, another stream is refused with a 503 and Retry-After; polls still work."""
    with start_activity_server(InMemoryEventLog(), port=0, limits=ActivityLimits(max_streams=1)) as server:
        first = http.client.HTTPConnection(server.addr, server.port, timeout=WAIT)
        first.request("GET", "/activity/stream")
        opened = first.getresponse()
        assert opened.status == 200
        opened.readline()  # the stream is open once its first line came
        second = http.client.HTTPConnection(server.addr, server.port, timeout=WAIT)
        second.request("GET", "/activity/stream")
        refused = second.getresponse()
        assert (refused.status, refused.getheader("Retry-After")) == (503, "5")
        assert request(server, "/activity")[0] == 200
        first.close()
        second.close()


def test_streams_started_together_never_exceed_the_cap() -> None:
    """Two streams let through at once by the first check: the second finds no room, and is ended."""
    from otel_eventlog.activity._http import STREAM_REFUSED, ActivityApp, StreamQuery, stream

    app = ActivityApp(InMemoryEventLog(), limits=ActivityLimits(max_streams=1))
    query = StreamQuery(since=None, kinds=None, trace_id=None)
    first = stream(app, query, lambda: False, 0.01)
    assert next(first).startswith(b"retry: 2000\nevent: hello")  # the first holds the only slot
    assert list(stream(app, query, lambda: False, 0.01)) == [STREAM_REFUSED]
    assert app.open_streams == 1
    first.close()
    assert app.open_streams == 0


def test_a_client_reading_a_large_event_steadily_is_never_cut_off() -> None:
    """io_timeout drops a client that reads nothing for that long, not one slow to read a big event."""
    log = InMemoryEventLog()
    log.append("big", {f"v{n}": "x" * 16_000 for n in range(400)})  # 6.4 MB, each value within the cap
    with start_activity_server(log, port=0, limits=ActivityLimits(io_timeout=0.3)) as server:
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        client.settimeout(WAIT)
        client.connect((server.addr, server.port))
        client.sendall(b"GET /activity?since=0 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        received = 0
        while chunk := client.recv(32 * 1024):  # some 3 MB/s: the whole event takes seconds
            received += len(chunk)
            time.sleep(0.01)
        client.close()
    assert received > 6_400_000


def test_a_running_server_never_keeps_the_interpreter_alive() -> None:
    """A process that forgets to close its server, with a client connected, still exits."""
    script = textwrap.dedent(
        """
        import socket
        from otel_eventlog import InMemoryEventLog, start_activity_server

        server = start_activity_server(InMemoryEventLog(), port=0)
        client = socket.create_connection((server.addr, server.port))
        client.sendall(b"GET /activity/stream HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n")
        client.recv(10)
        print("exiting")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert (result.returncode, result.stdout.strip()) == (0, "exiting"), result.stderr


def test_a_stream_whose_client_hung_up_frees_its_place_at_once() -> None:
    """A reader that leaves a quiet stream is noticed within a wait slice, not at the next heartbeat."""
    limits = ActivityLimits(max_streams=1, heartbeat=600)
    with start_activity_server(InMemoryEventLog(), port=0, limits=limits) as server:
        for _ in range(3):  # each time, the one place is free again
            client = http.client.HTTPConnection(server.addr, server.port, timeout=WAIT)
            client.request("GET", "/activity/stream")
            response = client.getresponse()
            assert response.status == 200
            response.readline()  # open: its first line came
            response.close()
            client.close()
            deadline = time.monotonic() + WAIT
            while server.app.open_streams:
                assert time.monotonic() < deadline, "the stream of a client that left stayed open"
                time.sleep(0.01)  # nothing to wait on but the count


def test_a_page_of_large_events_ends_within_the_body_bound_and_the_next_poll_goes_on() -> None:
    """Events that escape to six bytes a character: each poll holds about MAX_BODY_BYTES, none is lost."""
    from otel_eventlog.activity._http import MAX_BODY_BYTES

    log = InMemoryEventLog()
    for n in range(200):
        log.append("big", {"n": n, "v": "\x01" * 16_000})  # some 96 KB each, encoded
    seen: list[int] = []
    with start_activity_server(log, port=0) as server:
        cursor = 0
        while True:
            status, body = request(server, f"/activity?since={cursor}&limit=1000")
            assert status == 200
            assert len(body) <= MAX_BODY_BYTES + 1024
            page = json.loads(body)
            if not page["events"]:
                break
            seen.extend(event["payload"]["n"] for event in page["events"])
            assert page["cursor"] == page["events"][-1]["id"]
            cursor = page["cursor"]
    assert seen == list(range(200))


def test_a_stream_writes_a_large_page_in_pieces_of_the_body_bound() -> None:
    """A page of a stream is written in pieces of at most MAX_BODY_BYTES, every message whole, in order."""
    from otel_eventlog.activity._http import MAX_BODY_BYTES, sse_page

    log = InMemoryEventLog()
    for n in range(100):
        log.append("big", {"n": n, "v": "\x01" * 16_000})
    page = log.read(since=0)
    pieces = list(sse_page(page))
    assert len(pieces) > 1
    assert all(len(piece) <= MAX_BODY_BYTES for piece in pieces)
    messages = b"".join(pieces).split(b"\n\n")[:-1]
    shown = [json.loads(message.split(b"data: ")[1])["payload"]["n"] for message in messages]
    assert shown == list(range(100))
    (alone,) = sse_page(log.read(since=0, limit=1))  # one event: one piece, whatever it weighs
    assert alone.startswith(b"id: ")


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /activity HTTP/2.0\r\n\r\n", 505),
        (b"GET /activity HTTP/1.1 x\r\n\r\n", 400),
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414),
        (b"GET /activity HTTP/1.1\r\n" + b"X: y\r\n" * 120 + b"\r\n", 431),
    ],
    ids=["version", "request-line", "syntax", "long-target", "many-headers"],
)
def test_a_request_the_standard_library_cannot_read_gets_a_json_error_with_a_status_line(
    raw: bytes, status: int
) -> None:
    """What never reaches the app is answered as everything else is: a status line and a JSON error."""
    with start_activity_server(InMemoryEventLog(), port=0) as server:
        client = socket.create_connection((server.addr, server.port), timeout=WAIT)
        client.sendall(raw)
        answer = b""
        with contextlib.suppress(ConnectionResetError):  # closed with some of the request unread
            while chunk := client.recv(65536):
                answer += chunk
        client.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 %d " % status), answer[:200]
    assert b"Content-Type: application/json" in head
    assert json.loads(body)["error"]
