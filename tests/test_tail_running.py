"""``otel-eventlog tail --running``: what is running now, from a real tracer's spans, in a terminal."""

from __future__ import annotations

import io
import threading

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from otel_eventlog import EventLogSpanProcessor, InMemoryEventLog, start_activity_server
from otel_eventlog.cli._running import Running
from otel_eventlog.cli.tail import event_of, tail
from otel_eventlog.errors import TailError
from otel_eventlog.event import Event
from tests.helpers import ManualClock, serving
from tests.test_cli import run

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
WAIT = 30.0


class Screen(io.StringIO):
    """An output that tells when a snapshot has been written, and can pass for a terminal."""

    def __init__(self, terminal: bool = False) -> None:
        super().__init__()
        self.terminal = terminal
        self.snapshots = threading.Semaphore(0)

    def isatty(self) -> bool:
        """Whether to pass for a terminal."""
        return self.terminal

    def write(self, text: str) -> int:
        """Write `text`, and count the snapshots it holds."""
        written = super().write(text)
        if "# running now" in text:
            self.snapshots.release()
        return written


def _event(kind: str, span: str, at: float, **payload: object) -> Event:
    return Event(0, at, kind, payload, TRACE, span)


def test_running_spans_show_as_a_tree_per_trace_with_age_session_and_latest_event() -> None:
    """A child's event is its parents' latest too; an ended span leaves, and a late start cannot revive it."""
    clock = ManualClock(1_000.0)
    running = Running(clock)
    assert running.lines()[0].endswith(
        "the log holds no span.started / span.ended entries "
        "(set capture.span_lifecycle: true, or OTEL_EVENTLOG_SPAN_LIFECYCLE=true)"
    )
    running.track(_event("span.started", "a" * 16, 900.0, name="session", parent_span_id=None))
    running.track(_event("span.started", "b" * 16, 990.0, name="turn", parent_span_id="a" * 16))
    running.track(_event("turn.started", "b" * 16, 995.0, session="s-1", turn=1))
    running.track(_event("span.started", "c" * 16, 999.0, name="chat", parent_span_id="b" * 16))
    running.track(_event("span.ended", "d" * 16, 999.5, name="old"))
    running.track(_event("span.started", "d" * 16, 980.0, name="old", parent_span_id=None))  # late: stays out
    assert running.lines()[1:] == [
        "trace 4bf92f35  session s-1",
        "  session                                   1m40s  latest turn.started, 5.0s ago",
        "    turn                                    10.0s  latest turn.started, 5.0s ago",
        "      chat                                   1.0s",
    ]
    assert running.lines()[0].endswith(": 3 spans in 1 trace")
    running.track(_event("span.ended", "b" * 16, 1_000.0))
    running.track(_event("span.ended", "c" * 16, 1_000.0))
    clock.advance(7_200)
    assert running.lines()[1:] == [
        "trace 4bf92f35  session s-1",
        "  session                                   2h01m  latest turn.started, 2h00m ago",
    ]
    running.track(_event("span.ended", "a" * 16, 8_200.0))
    assert running.lines()[0].endswith(": nothing")
    running.clear()
    assert "no span.started" in running.lines()[0]


def _follow_running(
    url: str, screen: Screen, count: int, refresh: float
) -> tuple[threading.Thread, list[int]]:
    """Start `tail --running` on `url` in a thread; return it and where it puts its result."""
    done: list[int] = []
    follower = threading.Thread(
        target=lambda: done.append(
            tail(url, out=screen, running=True, count=count, refresh=refresh, retry_seconds=0.01)
        )
    )
    follower.start()
    return follower, done


def _serve_spans() -> tuple[InMemoryEventLog, TracerProvider]:
    log = InMemoryEventLog()
    provider = TracerProvider()
    provider.add_span_processor(EventLogSpanProcessor(log, span_lifecycle=True, live_interval=0))
    return log, provider


def test_tail_running_reads_the_history_then_prints_changes() -> None:
    """A span begun 2,500 events ago shows (the history is read in pages); its end is the next snapshot."""
    log, provider = _serve_spans()
    tracer = provider.get_tracer("test")
    session = tracer.start_span("agent session")
    with trace.use_span(session):
        with tracer.start_as_current_span("turn") as turn:
            turn.add_event("turn.started", {"session": "s-7"})
        provider.force_flush()
    for n in range(2_500):
        log.append("noise", {"n": n})
    screen = Screen()
    with start_activity_server(log, port=0) as server:
        follower, done = _follow_running(server.url, screen, 2, 0.02)
        try:
            assert screen.snapshots.acquire(timeout=WAIT)
            first = screen.getvalue().splitlines()
            assert first[0].endswith(": 1 span in 1 trace")
            assert first[1] == "trace " + f"{session.get_span_context().trace_id:032x}"[:8] + "  session s-7"
            assert first[2].startswith("  agent session ")
            assert first[2].endswith("latest turn.started, " + first[2].rsplit(", ", 1)[1])
            session.end()
            provider.force_flush()
        finally:
            follower.join(WAIT)
            provider.shutdown()
    assert done == [2]
    second = screen.getvalue().split("\n\n")[1].splitlines()
    assert len(second) == 1
    assert second[0].endswith(": nothing")


def test_tail_running_redraws_a_terminal_in_place_every_refresh() -> None:
    """On a terminal each snapshot clears the screen first, and ages tick even when nothing changes."""
    log, provider = _serve_spans()
    span = provider.get_tracer("test").start_span("long job")
    provider.force_flush()
    screen = Screen(terminal=True)
    with start_activity_server(log, port=0) as server:
        assert tail(server.url, out=screen, running=True, count=3, refresh=0.01) == 3
    span.end()
    provider.shutdown()
    shown = screen.getvalue()
    assert shown.count("\x1b[H\x1b[J# running now") == 3
    assert shown.count("  long job ") == 3


def test_tail_running_forgets_the_spans_of_a_log_that_began_again() -> None:
    """When the server's log is replaced (a restart), the spans of the old one leave the board."""
    log, provider = _serve_spans()
    old = provider.get_tracer("test").start_span("old run")
    provider.force_flush()
    screen = Screen()
    server = start_activity_server(log, port=0)
    port = server.port
    follower, done = _follow_running(server.url, screen, 2, 0.02)
    try:
        assert screen.snapshots.acquire(timeout=WAIT)
        assert "old run" in screen.getvalue()
        server.close()
        new, provider_after = _serve_spans()
        fresh = provider_after.get_tracer("test").start_span("new run")
        provider_after.force_flush()
        with start_activity_server(new, port=port):
            follower.join(WAIT)
        fresh.end()
        provider_after.shutdown()
    finally:
        server.close()
        old.end()
        provider.shutdown()
    assert done == [2]
    last = screen.getvalue().split("\n\n")[-1]
    assert "new run" in last
    assert "old run" not in last


@pytest.mark.parametrize("flag", [("--kind", "turn.*"), ("--since", "3"), ("--json",)])
def test_tail_running_refuses_flags_that_do_not_apply(flag: tuple[str, ...]) -> None:
    """--kind, --since and --json with --running are usage errors, in one line."""
    result = run("tail", "http://127.0.0.1:9/", "--running", *flag)
    assert result.returncode == 2
    assert result.stderr == (
        f"otel-eventlog tail: error: {flag[0]} does not apply to --running, which reads the whole log "
        "(see otel-eventlog tail --help)\n"
    )


def test_tail_running_at_an_unreachable_server_fails_in_one_line() -> None:
    """No server: the history cannot be read, and the error names the URL."""
    from tests.redis_server import free_port

    url = f"http://127.0.0.1:{free_port()}/"
    with pytest.raises(Exception, match=rf"^cannot follow {url}: .*Connection refused"):
        tail(url, out=io.StringIO(), running=True, count=1)


def test_spans_whose_parents_form_a_ring_still_show_and_a_short_screen_says_what_did_not_fit() -> None:
    """No span is counted and left unshown: a parent ring is shown from any of its spans; overflow is said."""
    running = Running(ManualClock(1_000.0))
    running.track(_event("span.started", "a" * 16, 990.0, name="left", parent_span_id="b" * 16))
    running.track(_event("span.started", "b" * 16, 991.0, name="right", parent_span_id="a" * 16))
    for n in range(30):
        running.track(_event("span.started", f"{n:016x}", 995.0, name=f"job {n}", parent_span_id=None))
    lines = running.lines()
    assert lines[0].endswith(": 32 spans in 1 trace")
    assert sum(line.strip().startswith(("left", "right")) for line in lines) == 2
    assert len(lines) == 2 + 32
    short = running.lines(height=10)
    assert len(short) == 9
    assert short[-1] == "... and 26 more spans"  # the title, the trace, 6 spans and this line


def test_hostile_names_reach_the_terminal_escaped() -> None:
    """C0 and C1 controls, DEL, bidirectional overrides and line separators are written as escapes."""
    running = Running(ManualClock(1_000.0))
    running.track(_event("span.started", "a" * 16, 990.0, name="evil\x1b[2J\x9b31m\x7f\u202egnp.exe\u2028x"))
    (line,) = [line for line in running.lines() if "evil" in line]
    assert line.isprintable()
    assert r"\u001b[2J\u009b31m\u007f\u202e" in line


def test_tail_running_into_an_output_that_closes_stops_at_once() -> None:
    """`tail --running | head -3`: once the output is gone, tail ends with the pipe's error, not a hang."""

    class Closing(Screen):
        def write(self, text: str) -> int:
            """Take the first snapshot, then fail as a closed pipe does."""
            if self.getvalue().endswith("\n"):
                raise BrokenPipeError(32, "Broken pipe")
            return super().write(text)

    log, provider = _serve_spans()
    span = provider.get_tracer("test").start_span("long job")
    provider.force_flush()
    screen = Closing(terminal=True)
    try:
        with start_activity_server(log, port=0) as server, pytest.raises(BrokenPipeError):
            tail(server.url, out=screen, running=True, refresh=0.01)
    finally:
        span.end()
        provider.shutdown()
    assert screen.getvalue().count("# running now") == 1


def test_tail_running_says_in_each_snapshot_when_the_server_is_gone() -> None:
    """On a terminal the notes scroll away: each redraw says it shows what ran when the stream was lost."""
    log, provider = _serve_spans()
    span = provider.get_tracer("test").start_span("long job")
    provider.force_flush()
    screen = Screen(terminal=True)
    server = start_activity_server(log, port=0)
    follower, done = _follow_running(server.url, screen, 40, 0.01)
    try:
        assert screen.snapshots.acquire(timeout=WAIT)
        server.close()
        follower.join(WAIT)
    finally:
        server.close()
        span.end()
        provider.shutdown()
    assert done == [40]
    last = screen.getvalue().rsplit("\x1b[H\x1b[J", 1)[1].splitlines()
    assert last[0].startswith("# running now, ")
    assert " (stale since " in last[0]
    assert "  long job " in "\n".join(last)


def test_tail_takes_the_token_from_the_url_serve_prints_and_refuses_one_with_a_newline() -> None:
    """The page URL with ?token= opens the stream too; a token with a line break is refused, unechoed."""
    log = InMemoryEventLog()
    log.append("turn.started")
    with start_activity_server(log, port=0, token="s3cret") as server:
        out = io.StringIO()
        assert tail(server.page_url, out=out, count=1) == 1
        assert "turn.started" in out.getvalue()
        with pytest.raises(TailError) as raised:
            tail(server.url, out=io.StringIO(), token="s3cret\r\n", count=1)
    assert "s3cret" not in str(raised.value)
    assert str(raised.value).startswith("the token holds a line break or another control character")
    from tests.redis_server import free_port

    url = f"http://127.0.0.1:{free_port()}/?token=s3cret"
    with pytest.raises(TailError) as raised:
        tail(url, out=io.StringIO(), count=1)
    assert str(raised.value).startswith(f"cannot follow {url.replace('s3cret', '***')}: ")  # never shown


def test_tail_shows_an_event_whose_time_no_clock_can_show_and_goes_on() -> None:
    """A timestamp in nanoseconds is printed as sent; the events after it follow, with no reconnecting."""
    log = InMemoryEventLog()
    log.append("odd.time", timestamp=1.7e18)
    log.append("next")
    out = io.StringIO()
    with start_activity_server(log, port=0) as server:
        assert tail(server.url, out=out, since=0, count=2) == 2
    first, second = out.getvalue().splitlines()
    assert first.split()[1:3] == ["1.7e+18", "odd.time"]
    assert second.split()[2] == "next"


def test_tail_running_refuses_a_page_that_is_no_activity_page_in_one_line() -> None:
    """A server whose /activity answers something else is named in one line; a newer event field is fine."""
    import http.server

    class Odd(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"events": []}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Keep quiet."""

    not_a_page = r"^the server sent what is not an Activity page \(KeyError\)$"
    with serving(Odd) as url, pytest.raises(TailError, match=not_a_page):
        tail(url, out=io.StringIO(), running=True, count=1)
    event = event_of(
        {"id": 1, "timestamp": 1.0, "kind": "k", "payload": {}, "severity": "from a newer server"}
    )
    assert (event.id, event.kind) == (1, "k")
