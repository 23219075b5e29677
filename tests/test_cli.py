"""Tests for the ``otel-eventlog`` command line, run as a user would: in a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from otel_eventlog import InMemoryEventLog, __version__, start_activity_server
from tests.helpers import serving, until_a_reader_waits


def environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any ``OTEL_EVENTLOG_*`` variable, plus `env`."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_EVENTLOG_")}
    environ.update(env or {})
    return environ


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``otel-eventlog`` with `args` to its end; what it printed, as text."""
    return subprocess.run(
        [sys.executable, "-m", "otel_eventlog", *args],
        capture_output=True,
        text=True,
        env=environment(env),
        timeout=60,
        check=False,
    )


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``otel-eventlog`` with `args`, its standard output and error piped, as text."""
    return subprocess.Popen(
        [sys.executable, "-m", "otel_eventlog", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(env),
    )


def test_version() -> None:
    """--version prints the package version."""
    result = run("--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"otel-eventlog {__version__}")


def test_no_command_prints_usage_and_fails() -> None:
    """Without a command the usage is printed to stderr and the exit status is 2."""
    result = run()
    assert result.returncode == 2
    assert "check-config" in result.stderr


def test_check_config_prints_the_effective_config(tmp_path: Path) -> None:
    """A valid file prints its effective config, environment applied, and exits 0."""
    path = tmp_path / "obs.yaml"
    path.write_text("observability:\n  event_log:\n    backend: OFF\n    ttl_seconds: 60\n")
    result = run("check-config", str(path), env={"OTEL_EVENTLOG_MAX_ENTRIES": "500"})
    assert result.returncode == 0, result.stderr
    event_log = yaml.safe_load(result.stdout)["observability"]["event_log"]
    assert (event_log["backend"], event_log["ttl_seconds"], event_log["max_entries"]) == ("off", 60, 500)
    assert event_log["capture"]["logging_level"] == "INFO"


def test_check_config_reports_the_error_without_a_traceback(tmp_path: Path) -> None:
    """An invalid file prints one error line naming the key path and exits 1."""
    path = tmp_path / "obs.yaml"
    path.write_text("observability:\n  event_log:\n    max_entries: lots\n")
    result = run("check-config", str(path))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"otel-eventlog: error: {path}: observability.event_log.max_entries: "
        "expected a positive integer, got 'lots' (str)\n"
    )


def test_check_config_names_a_missing_file(tmp_path: Path) -> None:
    """A missing file is reported by name with exit status 1."""
    result = run("check-config", str(tmp_path / "absent.yaml"))
    assert result.returncode == 1
    assert "absent.yaml: config file not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_runs_the_agent_and_prints_its_feed() -> None:
    """The demo stops by itself after --duration and prints the events it read, session starts among them."""
    result = run("demo", "--duration", "1", "--sessions", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("session.started") == result.stdout.count("session.ended") >= 2
    assert "events; the log holds" in result.stdout


def test_the_demo_feed_follows_what_each_session_did() -> None:
    """In each session's trace, a turn starts, calls its tools, then completes: ids in that order."""
    result = run("demo", "--duration", "2", "--sessions", "3")
    assert result.returncode == 0, result.stderr
    steps: dict[str, list[tuple[str, str]]] = {}
    for line in result.stdout.splitlines():
        fields = line.split()
        if not line.startswith("#") or len(fields) < 4 or not fields[0][1:].isdigit():
            continue
        kind, trace = fields[2], next(f for f in fields if f.startswith("trace="))
        turn = next((f for f in fields if f.startswith("turn=")), "")
        steps.setdefault(trace, []).append((kind, turn))
    assert len(steps) >= 3  # a session that ends is followed by another, in a trace of its own
    for trace, sequence in steps.items():
        current = None  # the turn under way in this session
        for kind, turn in sequence:
            if kind == "turn.started":
                assert current is None, (trace, sequence)
                current = turn
            elif kind in ("tool.called", "turn.completed"):
                assert turn == current, (trace, sequence)
                current = None if kind == "turn.completed" else current


def test_demo_reports_a_bad_config_without_a_traceback(tmp_path: Path) -> None:
    """A wrong config file is reported on one line with exit status 1."""
    path = tmp_path / "obs.yaml"
    path.write_text("observability:\n  event_log:\n    capture:\n      include: 5\n")
    result = run("demo", "--config", str(path), "--duration", "1")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"otel-eventlog: error: {path}: observability.event_log.capture.include: "
        "expected an event name or a list of them, got 5 (int)"
    )


def test_serve_serves_the_configured_log_until_terminated(tmp_path: Path) -> None:
    """Serve prints its URL, answers requests, and exits 0 on SIGTERM."""
    config = tmp_path / "obs.yaml"
    config.write_text("observability:\n  event_log:\n    max_entries: 10\n  activity:\n    port: 0\n")
    process = start("serve", "--config", str(config))
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("serving the memory event log at http://127.0.0.1:")
        url = line.split(" at ")[1].strip()
        with urllib.request.urlopen(url + "activity", timeout=10) as response:
            assert json.load(response)["events"] == []
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=30)
    assert (process.returncode, errors) == (0, "")


def test_serve_reports_a_taken_port() -> None:
    """A port in use is one clear error line and exit status 1."""
    log = InMemoryEventLog()
    with start_activity_server(log, port=0) as taken:
        result = run("serve", "--port", str(taken.port))
    assert result.returncode == 1
    assert result.stderr.startswith("otel-eventlog: error: ")
    assert "Traceback" not in result.stderr


def test_tail_prints_events_and_gaps_and_stops_after_count() -> None:
    """Tail prints one line per event, reports missed ones, and stops after --count events."""
    log = InMemoryEventLog(max_entries=3)
    for n in range(6):
        log.append("tick", {"n": n})
    with start_activity_server(log, port=0) as server:
        result = run("tail", server.url, "--since", "1", "--count", "3", "--kind", "tick")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "# 2 event(s) missed: evicted before they could be read"
    assert [line.split()[0] for line in lines[1:]] == ["#4", "#5", "#6"]
    assert "tick" in lines[1]
    assert "n=3" in lines[1]


def test_tail_follows_live_events() -> None:
    """Tail keeps printing events appended after it connected."""
    log = InMemoryEventLog()
    with start_activity_server(log, port=0) as server:
        process = start("tail", server.url, "--count", "2")
        log.append("turn.started")  # whether tail is connected yet or not, it gets both: it starts
        log.append("turn.completed")  # with the most recent events
        out, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert [line.split()[2] for line in out.splitlines()] == ["turn.started", "turn.completed"]


def test_tail_refusals_are_one_line_errors() -> None:
    """A refused connection, a bad URL and a missing token each give exit status 1 and one line."""
    with start_activity_server(InMemoryEventLog(), port=0, token="s3cret") as server:
        unauthorized = run("tail", server.url, "--count", "1")
        port = server.port
    refused = run("tail", f"http://127.0.0.1:{port}/", "--count", "1")
    not_a_url = run("tail", "ftp://localhost:9450/", "--count", "1")
    assert unauthorized.returncode == refused.returncode == not_a_url.returncode == 1
    assert unauthorized.stderr.strip() == (
        "otel-eventlog: error: the server answered 401: a valid bearer token is required (pass --token)"
    )
    assert refused.stderr.startswith(f"otel-eventlog: error: cannot follow http://127.0.0.1:{port}/: ")
    assert not_a_url.stderr.strip() == (
        "otel-eventlog: error: expected an http:// or https:// URL, got 'ftp://localhost:9450/'"
    )


def test_tail_resumes_after_the_server_comes_back_and_notices_a_new_log() -> None:
    """After a dropped connection tail resumes without repeats; a restarted log is followed from its start."""
    log = InMemoryEventLog()
    log.append("first")
    server = start_activity_server(log, port=0)
    process = start("tail", server.url, "--count", "3")
    assert process.stdout is not None
    try:
        assert process.stdout.readline().split()[2] == "first"
        server.close()  # the connection drops
        log.append("second")
        server = start_activity_server(log, port=server.port)  # same log: tail resumes after "first"
        assert process.stdout.readline().startswith("# ")  # it said it lost the connection
        line = process.stdout.readline()
        while line.startswith("# "):
            line = process.stdout.readline()
        assert line.split()[2] == "second"
        server.close()
        restarted = InMemoryEventLog()  # a new log: its ids mean something else
        restarted.append("after restart")
        server = start_activity_server(restarted, port=server.port)
        out, _ = process.communicate(timeout=30)
    finally:
        server.close()
    assert "# the server's event log was restarted: following it from its start" in out
    assert out.splitlines()[-1].split()[2:4] == ["after", "restart"]
    assert process.returncode == 0


def test_tail_shows_whole_values_readably() -> None:
    """Long values are shown whole, text with spaces quoted, structures as compact JSON, one line each."""
    log = InMemoryEventLog()
    messages = [{"role": "assistant", "content": "It is sunny in Paris today, 24 degrees."}]
    payload = {"gen_ai.output.messages": messages, "finish": "stop", "note": "two\nlines"}
    payload.update({"code": "42", "n": 42})
    log.append("gen_ai.choice", payload)
    with start_activity_server(log, port=0) as server:
        result = run("tail", server.url, "--since", "0", "--count", "1")
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert (
        'gen_ai.output.messages=[{"role":"assistant","content":"It is sunny in Paris today, 24 degrees."}]'
        in line
    )
    assert "finish=stop" in line
    assert 'code="42" n=42' in line  # text that reads as a number is quoted
    assert 'note="two\\nlines"' in line


def test_tail_json_prints_the_wire_form_one_event_a_line() -> None:
    """With --json, each line is the event as /activity sends it."""
    log = InMemoryEventLog()
    first = log.append("tool.called", {"tool": "search"})
    second = log.append("tool.returned", {"ok": True})
    with start_activity_server(log, port=0) as server:
        result = run("tail", server.url, "--since", "0", "--count", "2", "--json")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [first.to_dict(), second.to_dict()]


def test_check_config_names_each_mistyped_variable_with_what_it_may_mean(tmp_path: Path) -> None:
    """A variable the library does not read fails check-config, one line each, with a did-you-mean."""
    path = tmp_path / "obs.yaml"
    path.write_text("observability: {}\n")
    result = run(
        "check-config",
        str(path),
        env={"OTEL_EVENTLOG_TTL": "5", "OTEL_EVENTLOG_ACTIVITY_PROT": "1", "OTEL_EVENTLOG_CONFIG": ""},
    )
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.splitlines() == [
        "otel-eventlog: error: OTEL_EVENTLOG_ACTIVITY_PROT is not a variable otel_eventlog reads "
        "(did you mean 'OTEL_EVENTLOG_ACTIVITY_PORT'?); it is ignored",
        "otel-eventlog: error: OTEL_EVENTLOG_TTL is not a variable otel_eventlog reads "
        "(did you mean 'OTEL_EVENTLOG_TTL_SECONDS'?); it is ignored",
    ]


def test_a_wrong_port_or_session_count_is_a_usage_error_without_a_traceback() -> None:
    """Out-of-range numbers are refused by the parser, one line each, with exit status 2."""
    for args, message in (
        (("serve", "--port", "70000"), "argument --port: expected a TCP port from 0 to 65535, got '70000'"),
        (("demo", "--port", "-1"), "argument --port: expected a TCP port from 0 to 65535, got '-1'"),
        (("demo", "--sessions", "0"), "argument --sessions: expected an integer from 1 to 32, got '0'"),
    ):
        result = run(*args)
        assert result.returncode == 2
        assert (
            result.stderr
            == f"otel-eventlog {args[0]}: error: {message} (see otel-eventlog {args[0]} --help)\n"
        )


def test_serve_on_a_port_in_use_names_the_address_and_port() -> None:
    """A port that is taken is an error naming address and port, never silently another port."""
    taken = start_activity_server(InMemoryEventLog(), 0)
    try:
        port = taken.url.rsplit(":", 1)[1].strip("/")
        result = run("serve", "--port", port)
    finally:
        taken.close()
    assert result.returncode == 1
    assert (
        result.stderr == f"otel-eventlog: error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    )


def test_serve_exits_130_when_interrupted() -> None:
    """Ctrl-C ends serve with the status every command uses for it."""
    serve = start("serve", "--port", "0")
    assert serve.stdout is not None
    assert serve.stdout.readline().startswith("serving the memory event log at http://127.0.0.1:")
    serve.send_signal(signal.SIGINT)
    _, errors = serve.communicate(timeout=60)
    assert serve.returncode == 130
    assert "Traceback" not in errors


def test_demo_serves_its_page_until_interrupted() -> None:
    """Without --duration the demo keeps working and serving its page; Ctrl-C ends it with 130."""
    demo = start("demo", "--port", "0", "--sessions", "1")
    try:
        assert demo.stdout is not None
        url = demo.stdout.readline().rsplit(" ", 1)[1].strip()
        assert "until interrupted" in demo.stdout.readline()
        ended = 0
        while ended < 2:  # sessions end and others begin: the demo goes on past them
            ended += "session.ended" in demo.stdout.readline()
        with urllib.request.urlopen(url + "activity/stats", timeout=30) as response:
            assert json.load(response)["log"]["appended"] > 0  # the page's server still answers
    finally:
        demo.send_signal(signal.SIGINT)
        _, errors = demo.communicate(timeout=60)
    assert demo.returncode == 130
    assert "Traceback" not in errors


def test_demo_into_a_pipe_that_closes_ends_quietly() -> None:
    """`otel-eventlog demo | head -3`: no BrokenPipeError traceback, exit status 0."""
    demo = start("demo", "--duration", "5", "--port", "0")
    assert demo.stdout is not None
    assert demo.stderr is not None
    head = [demo.stdout.readline() for _ in range(3)]
    demo.stdout.close()  # as head does once it has its lines
    errors = demo.stderr.read()
    demo.stderr.close()
    assert demo.wait(60) == 0
    assert all(head)
    assert "Traceback" not in errors


def test_tail_takes_the_urls_a_user_pastes() -> None:
    """The page's URL, /activity, its stream and stats, and a URL without http:// all lead to the stream."""
    log = InMemoryEventLog()
    log.append("turn.started", {"turn": 1})
    server = start_activity_server(log, 0)
    try:
        base = server.url.rstrip("/")
        bare = base.removeprefix("http://")
        for url in (
            f"{base}/",
            base,
            f"{base}/activity",
            f"{base}/activity/",
            f"{base}/activity/stream",
            f"{base}/activity/stats",
            bare,
        ):
            result = run("tail", url, "--since", "0", "--count", "1", "--json")
            assert result.returncode == 0, (url, result.stderr)
            assert json.loads(result.stdout)["kind"] == "turn.started"
    finally:
        server.close()


def test_tail_at_a_server_that_is_no_activity_server_says_so_in_one_line() -> None:
    """An HTML 404 is not dumped: one line with the status, and what may be wrong."""
    import http.server

    class NotHere(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the stdlib's name
            body = b"<html><body><h1>Not Found</h1>" + b"<p>lots of markup</p>" * 50 + b"</body></html>"
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    with serving(NotHere) as url:
        result = run("tail", url)
    assert result.returncode == 1
    assert result.stderr == (
        "otel-eventlog: error: the server answered 404: Not Found "
        "(is this an otel-eventlog Activity server?)\n"
    )


def test_demo_on_a_port_given_and_taken_fails_naming_it() -> None:
    """--port is used or the demo fails: it never moves to another port behind the user's back."""
    taken = start_activity_server(InMemoryEventLog(), 0)
    try:
        port = taken.url.rsplit(":", 1)[1].strip("/")
        result = run("demo", "--port", port, "--duration", "1")
    finally:
        taken.close()
    assert result.returncode == 1
    assert (
        result.stderr == f"otel-eventlog: error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    )


def test_tail_tells_a_wrong_token_from_a_missing_one() -> None:
    """A 401 says to pass --token when none was given, and that it was refused when one was."""
    server = start_activity_server(InMemoryEventLog(), 0, token="s3cret")
    try:
        missing = run("tail", server.url)
        wrong = run("tail", server.url, "--token", "guess")
    finally:
        server.close()
    assert (missing.returncode, wrong.returncode) == (1, 1)
    assert missing.stderr.rstrip().endswith("(pass --token)")
    assert wrong.stderr.rstrip().endswith("(the token given was refused)")
    assert "guess" not in wrong.stderr


def test_tail_gives_up_on_a_server_that_never_answers() -> None:
    """A server that accepts the connection and says nothing is an error, not a silent wait."""
    import io
    import socket

    from otel_eventlog.cli.tail import tail
    from otel_eventlog.errors import TailError

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        with pytest.raises(TailError) as raised:
            tail(url, out=io.StringIO(), timeout=0.2)
        assert str(raised.value) == f"cannot follow {url}: no answer within 0.2 s"


def test_tail_says_once_that_the_server_is_gone_and_once_that_it_is_back() -> None:
    """While the server is down, tail retries with growing pauses and says so once; then it goes on."""
    import io
    import threading
    import time

    from otel_eventlog.cli.tail import tail

    log = InMemoryEventLog()
    log.append("before")
    server = start_activity_server(log, 0)
    port = int(server.url.rsplit(":", 1)[1].strip("/"))
    out = io.StringIO()
    done: list[int] = []
    follower = threading.Thread(
        target=lambda: done.append(tail(server.url, out=out, since=1, count=1, retry_seconds=0.01))
    )
    follower.start()
    until_a_reader_waits(log)  # tail follows the stream
    deadline = time.monotonic() + 30
    server.close()
    while "connection lost" not in out.getvalue():
        assert time.monotonic() < deadline, out.getvalue()
        time.sleep(0.01)
    time.sleep(0.3)  # lets several attempts fail, each of which could have said so again
    server = start_activity_server(log, port)
    try:
        log.append("after")
        follower.join(30)
    finally:
        server.close()
    lines = out.getvalue().splitlines()
    assert done == [1]
    assert sum("connection lost" in line for line in lines) == 1
    assert "# reconnected" in lines
    assert "after" in lines[-1]


def test_serve_prints_a_url_that_opens_the_page_token_included() -> None:
    """With a token set, the printed URL carries it, and opening that URL shows the page."""
    serve = start("serve", "--port", "0", env={"OTEL_EVENTLOG_ACTIVITY_TOKEN": "s3cret"})
    try:
        assert serve.stdout is not None
        url = serve.stdout.readline().rsplit(" ", 1)[1].strip()
        assert url.endswith("/?token=s3cret")
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200
            assert b"<html" in response.read().lower()
    finally:
        serve.send_signal(signal.SIGINT)
        serve.communicate(timeout=60)


def test_tail_refuses_a_malformed_url_in_one_line() -> None:
    """A URL urllib cannot take (a broken IPv6 literal, a port beyond 65535) is named, no traceback."""
    for url, problem in (
        ("http://[::1/", "Invalid IPv6 URL"),
        ("http://127.0.0.1:99999/", "Port out of range 0-65535"),
    ):
        result = run("tail", url)
        assert result.returncode == 1
        assert result.stderr == (
            f"otel-eventlog: error: expected an http:// or https:// URL, got {url!r} ({problem})\n"
        )


@contextlib.contextmanager
def serving_streams(bodies: list[bytes]) -> Iterator[str]:
    """Serve ``bodies[N]`` as the stream under ``/N/``, then end it; yield the server's URL."""
    import http.server

    class Streams(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write(bodies[int(self.path.split("/")[1])])

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    with serving(Streams) as url:
        yield url


def test_tail_at_a_server_that_sends_garbage_fails_in_one_line() -> None:
    """Whatever a server sends after its 200, tail ends with one line, never a traceback."""
    bodies = [b"data: {not json\n\n", b"event: hello\ndata: {}\n\n", b'id: 1\ndata: {"x": 1}\n\n']
    with serving_streams(bodies) as url:
        for index in range(len(bodies)):
            result = run("tail", f"{url}{index}/activity/stream")
            assert result.returncode == 1
            assert result.stderr.startswith(
                "otel-eventlog: error: the server sent what is not an Activity stream"
            )
            assert len(result.stderr.splitlines()) == 1


def _event(number: int, **fields: object) -> bytes:
    """One event of a stream of the log ``e1``, as an Activity server writes it."""
    event = {"id": number, "timestamp": 1.0, "kind": "tick", "payload": {}, "trace_id": None, "span_id": None}
    return b"id: e1-%d\ndata: %s\n\n" % (number, json.dumps({**event, **fields}).encode())


def test_tail_at_a_hostile_server_fails_in_one_line_and_writes_no_control_character() -> None:
    """Ids and counts that would carry escape sequences, or that no request could send back: one line."""
    hello = b'event: hello\ndata: {"epoch": "e1", "latest_id": 1}\n\n'
    bodies = [
        hello + _event(1, trace_id="\x1b[2J\x1b]0;owned\x07"),
        hello + b'event: gap\ndata: {"missed": "lots\x1b[2J", "oldest_id": 1}\n\n',
        hello + _event(1).replace(b"e1-1", "e1-\u4e2d1".encode()),
        hello + _event(1).replace(b"e1-1", b"e1-1\r7"),
    ]
    with serving_streams(bodies) as url:
        for index in range(len(bodies)):
            result = run("tail", f"{url}{index}/activity/stream")
            assert result.returncode == 1, (index, result.stdout, result.stderr)
            assert result.stderr.startswith("otel-eventlog: error: the server sent what is not an Activity")
            assert len(result.stderr.splitlines()) == 1
            assert "\x1b" not in result.stdout + result.stderr


def test_tail_shows_each_event_once_when_a_server_ignores_last_event_id() -> None:
    """A server that sends its log from the start on every reconnection: what was shown is not again."""
    import http.server

    hello = b'event: hello\ndata: {"epoch": "e1", "latest_id": 4}\n\n'
    connections: list[str | None] = []

    class Forgetful(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            connections.append(self.headers.get("Last-Event-ID"))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            count = 3 if len(connections) == 1 else 4  # the stream ends; the next one has one more
            self.wfile.write(hello + b"".join(_event(number) for number in range(1, count + 1)))

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    with serving(Forgetful) as url:
        result = run("tail", url, "--count", "4")
    assert result.returncode == 0, result.stderr
    shown = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("#") and " " in line]
    assert [item for item in shown if item[1:].isdigit()] == ["#1", "#2", "#3", "#4"]
    assert connections[1] == "e1-3"


def test_tail_reads_a_bounded_part_of_an_error_and_of_a_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An endless error body or stream line is not read into memory for ever."""
    import http.server

    from otel_eventlog.cli import commands, tail

    monkeypatch.setattr(tail, "_MAX_READ", 4096)

    class Endless(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404 if "error" in self.path else 200)
            self.end_headers()
            try:
                self.wfile.write(b"" if "error" in self.path else b"data: ")
                for _ in range(10_000):  # 80 MB, were it all read
                    self.wfile.write(b"x" * 8192)
            except OSError:  # tail read what it needed and went
                pass

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    with serving(Endless) as url:
        assert commands.main(["tail", f"{url}error/activity/stream"]) == 1
        assert "the server answered 404" in capsys.readouterr().err
        assert commands.main(["tail", f"{url}line/activity/stream"]) == 1
        assert "not an Activity stream" in capsys.readouterr().err


def test_check_config_of_an_endless_file_fails_naming_it() -> None:
    """A device that never ends is not read for ever: the file is named as too large."""
    result = run("check-config", "/dev/zero")
    assert result.returncode == 1
    assert (
        result.stderr
        == "otel-eventlog: error: /dev/zero: config file larger than 16 MiB: not a configuration\n"
    )


def test_tail_keeps_one_line_per_event_whatever_the_kind_holds() -> None:
    """A kind or key holding a newline is shown escaped: one event, one line."""
    log = InMemoryEventLog()
    log.append("turn\nstarted", {"a\nb": 1})
    server = start_activity_server(log, 0)
    try:
        result = run("tail", server.url, "--since", "0", "--count", "1")
    finally:
        server.close()
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    assert '"turn\\nstarted"' in result.stdout


def test_tail_waits_out_a_quiet_stream_longer_than_the_first_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once streaming, only `timeout` of silence counts as a lost stream, not the first answer's limit."""
    import io
    import threading
    import time

    from otel_eventlog.cli import tail as tail_module

    monkeypatch.setattr(tail_module, "_FIRST_ANSWER", 0.1)  # a quiet stream outlasts it many times
    log = InMemoryEventLog()
    log.append("first")
    out = io.StringIO()
    with start_activity_server(log, 0) as server:
        done: list[int] = []
        follower = threading.Thread(
            target=lambda: done.append(tail_module.tail(server.url, out=out, count=2, timeout=30))
        )
        follower.start()
        until_a_reader_waits(log)  # the first event is printed and the stream is quiet
        time.sleep(0.5)  # the silence itself: five times the first answer's limit
        log.append("second")
        follower.join(30)
    assert done == [2]
    assert [line.split()[2] for line in out.getvalue().splitlines()] == ["first", "second"]


def test_serve_names_an_address_that_names_nothing() -> None:
    """An unresolvable --addr is a listening error naming it, not a lecture about tokens."""
    result = run("serve", "--addr", "nothing-here.invalid", "--port", "0")
    assert result.returncode == 1
    assert result.stderr.startswith("otel-eventlog: error: cannot listen on nothing-here.invalid:0: ")
    assert "token" not in result.stderr


def test_check_config_without_a_file_checks_the_environment_and_the_named_file(tmp_path: Path) -> None:
    """No FILE: the file OTEL_EVENTLOG_CONFIG names, else the defaults, with the variables applied."""
    result = run("check-config", env={"OTEL_EVENTLOG_TTL_SECONDS": "5"})  # run() clears the others
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# the defaults and the OTEL_EVENTLOG_* variables: valid\n")
    assert yaml.safe_load(result.stdout)["observability"]["event_log"]["ttl_seconds"] == 5
    path = tmp_path / "obs.yaml"
    path.write_text("observability:\n  event_log:\n    max_entries: 7\n")
    result = run("check-config", env={"OTEL_EVENTLOG_CONFIG": str(path)})
    assert result.stdout.startswith(f"# {path}: valid\n")
    assert yaml.safe_load(result.stdout)["observability"]["event_log"]["max_entries"] == 7
    result = run("check-config", "")
    assert result.returncode == 2
    assert result.stderr == (
        "otel-eventlog check-config: error: FILE is empty: name a YAML file, or leave it out to check the "
        "environment alone (see otel-eventlog check-config --help)\n"
    )


def test_tail_at_a_server_that_ends_every_stream_at_once_says_so_once() -> None:
    """A stream that ends as soon as it began is trouble still: said once, waited out longer each time."""
    import http.server
    import io

    from otel_eventlog.cli.tail import tail

    served: list[float] = []

    class EndsAtOnce(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.append(time.monotonic())
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write(b'event: hello\ndata: {"epoch": "e1", "latest_id": 1}\n\n')
            self.wfile.write(b": unavailable: Redis is down\n\n")  # a comment, but no heartbeat
            if len(served) == 5:  # at last, a stream that works
                self.wfile.write(b'id: e1-1\ndata: {"id": 1, "timestamp": 1, "kind": "k", "payload": {}}\n\n')

        def log_message(self, format: str, *args: object) -> None:
            """Keep quiet."""

    out = io.StringIO()
    with serving(EndsAtOnce) as url:
        assert tail(url, out=out, count=1, retry_seconds=0.05) == 1
    lines = out.getvalue().splitlines()
    assert lines[:2] == ["# the stream ended; reconnecting", "# reconnected"]
    assert lines[2].split()[2] == "k"
    assert len(lines) == 3  # said once each, however many streams ended at once
    assert served[-1] - served[-2] >= 0.4  # the fourth wait: 0.05 s doubled three times


def test_tail_says_it_reconnected_once_a_quiet_stream_proves_to_last() -> None:
    """Back to a server whose log is empty: no event comes, but its first heartbeat tells tail it is back."""
    import io
    import threading

    from otel_eventlog import ActivityLimits
    from otel_eventlog.cli.tail import tail

    limits = ActivityLimits(heartbeat=0.05)
    server = start_activity_server(InMemoryEventLog(), 0, limits=limits)
    port = server.port
    out = io.StringIO()
    follower = threading.Thread(
        target=tail, args=(server.url,), kwargs={"out": out, "retry_seconds": 0.01, "count": 1}
    )
    follower.start()
    deadline = time.monotonic() + 30
    try:
        until_a_reader_waits(server.app.event_log)
        server.close()
        while "connection lost" not in out.getvalue():
            assert time.monotonic() < deadline, out.getvalue()
            time.sleep(0.01)  # nothing to wait on but tail's own words
        log = InMemoryEventLog()
        server = start_activity_server(log, port, limits=limits)
        while "# reconnected" not in out.getvalue():
            assert time.monotonic() < deadline, out.getvalue()
            time.sleep(0.01)
        log.append("after")  # lets tail end: --count 1
        follower.join(30)
    finally:
        server.close()
    assert out.getvalue().splitlines()[-1].split()[2] == "after"


def test_tail_names_the_silence_it_waited_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stream that answered then fell silent is lost after `timeout`, and the note says that long."""
    import http.server
    import io

    from otel_eventlog.cli import tail as tail_module

    monkeypatch.setattr(tail_module, "_FIRST_ANSWER", 0.05)
    served: list[int] = []

    class Silent(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.append(1)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write(b'event: hello\ndata: {"epoch": "e1", "latest_id": 1}\n\n')
            self.wfile.flush()
            if len(served) == 1:
                time.sleep(1)  # silent past tail's timeout: the server's side of the test
                return
            self.wfile.write(b'id: e1-1\ndata: {"id": 1, "timestamp": 1, "kind": "k", "payload": {}}\n\n')

        def log_message(self, format: str, *args: object) -> None:
            """Keep quiet."""

    out = io.StringIO()
    with serving(Silent) as url:
        assert tail_module.tail(url, out=out, count=1, timeout=0.3, retry_seconds=0.01) == 1
    assert out.getvalue().splitlines()[0] == (
        "# connection lost (no answer within 0.3 s); reconnecting until the server is back"
    )


def test_tail_waits_out_a_proxy_or_a_server_that_cannot_answer_yet() -> None:
    """502, 503 and 504, at the start or later, are waited out: said once each, then the stream is read."""
    import http.server
    import io

    from otel_eventlog.cli.tail import tail

    answers = [502, 503, 504, 200]

    class Restarting(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = answers.pop(0)
            self.send_response(status)
            if status != 200:
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(b"<html>Bad Gateway</html>")
                return
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write(b'event: hello\ndata: {"epoch": "e1", "latest_id": 1}\n\n')
            self.wfile.write(b'id: e1-1\ndata: {"id": 1, "timestamp": 1, "kind": "k", "payload": {}}\n\n')

        def log_message(self, format: str, *args: object) -> None:
            """Keep quiet."""

    out = io.StringIO()
    with serving(Restarting) as url:
        assert tail(url, out=out, count=1, retry_seconds=0.01) == 1
    lines = out.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == [
        "# the server answered 502",
        "# the server answered 503",
        "# the server answered 504",
    ]
    assert all(line.endswith("; retrying until it can") for line in lines[:3])
    assert lines[3] == "# reconnected"
    assert lines[4].split()[2] == "k"


def test_tail_running_waits_out_a_server_that_cannot_answer_yet() -> None:
    """--running reads the history first: a 502 or 503 then is waited out too, said once each."""
    import http.server
    import io

    from otel_eventlog.cli.tail import tail

    answers = [502, 503, 200]
    page = {"events": [], "epoch": "e1", "cursor": 0, "latest_id": 0, "missed": 0, "oldest_id": None}

    class Restarting(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = answers.pop(0)
            body = json.dumps(page).encode() if status == 200 else b"<html>Bad Gateway</html>"
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if status == 200 else "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Keep quiet."""

    out = io.StringIO()
    with serving(Restarting) as url:
        assert tail(url, out=out, running=True, count=1, retry_seconds=0.01) == 1
    lines = out.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == [
        "# the server answered 502",
        "# the server answered 503",
    ]
    assert answers == []
