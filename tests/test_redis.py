"""The Redis backend against a real ``redis-server``: one feed for many processes, written off-thread.

Each test uses a stream of its own on the shared throw-away server, or a server of its own when it pauses,
kills or flushes it. The contract every backend keeps is in ``test_backend_conformance.py``; these are what
only a shared, networked log has to get right.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from otel_eventlog import (
    Entry,
    EventLogHandler,
    EventLogSpanProcessor,
    RedisEventLog,
    create_event_log,
)
from otel_eventlog.backends import _outbox
from otel_eventlog.backends.redis import url_option_problem
from otel_eventlog.errors import BackendError
from tests import redis_server
from tests.helpers import ManualClock, until_a_reader_waits
from tests.redis_server import RedisServer, stream_name

WAIT = 30.0  # seconds: only ever reached when a test fails


class Warnings(logging.Handler):
    """The library's warnings, as they come, and an event set at the first."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self.first = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the message; say that one came."""
        self.messages.append(record.getMessage())
        self.first.set()


@pytest.fixture
def warnings() -> Iterator[Warnings]:
    """What the library warns about during the test (the writer's outages, say)."""
    handler = Warnings()
    logging.getLogger("otel_eventlog").addHandler(handler)
    yield handler
    logging.getLogger("otel_eventlog").removeHandler(handler)


def run_python(code: str, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    """Start a Python process running `code` with `args`, its stdout piped."""
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True, **kwargs)


def finish(process: subprocess.Popen[str]) -> str:
    """Wait for a process started by `run_python` to succeed; return what it printed."""
    output, _ = process.communicate(timeout=WAIT)
    assert process.returncode == 0
    return output


def stored_fields(url: str, stream: str) -> list[dict[str, str]]:
    """The fields of every entry Redis holds in `stream`, trimmed or not, decoded."""
    return [
        {key.decode(): value.decode() for key, value in fields.items()}
        for _, fields in raw(url, "XRANGE", stream, "-", "+")
    ]


def raw(url: str, *command: str) -> Any:
    """Run a command on the server with a client of the test's own."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        return client.execute_command(*command)
    finally:
        client.close()


# building it


def test_create_event_log_builds_it_by_name_with_its_options(url: str) -> None:
    """backend="redis" gives a RedisEventLog on the url and stream given, with the limits given."""
    stream = stream_name()
    log = create_event_log(" Redis ", 60, 5, url=url, stream=stream, batch_events=10)
    try:
        assert isinstance(log, RedisEventLog)
        assert (log.stream, log.ttl_seconds, log.max_entries) == (stream, 60, 5)
        assert (log.max_bytes, log.max_value_bytes) == (64 * 1024 * 1024, 16 * 1024)
        log.append("tick")
        assert raw(url, "XLEN", stream) == 1
    finally:
        log.close()
    with pytest.raises(TypeError, match=r"does not take the option\(s\) colour; it takes batch_events, "):
        create_event_log("redis", url=url, colour="blue")


def test_without_redis_py_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing redis-py is an ImportError that says which pip extra installs it."""
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ImportError, match=r"pip install 'otel-eventlog\[redis\]'"):
        RedisEventLog()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"url": 6379}, TypeError, "url must be a string, got int"),
        (
            {"url": "http://u:hunter2@host"},
            ValueError,
            r"redis://, rediss:// or unix://, got 'http://u:\*\*\*@host'",
        ),
        ({"url": "redis://u:hunter2@host:port/0"}, ValueError, r"url 'redis://u:\*\*\*@host:port/0'"),
        ({"stream": ""}, ValueError, "stream must be a non-empty string"),
        ({"max_entries": "many"}, TypeError, "max_entries must be an integer or None"),
        ({"now": 5}, TypeError, "now must be a callable"),
        ({"timeout_seconds": math.inf}, ValueError, "timeout_seconds must be a finite number of seconds"),
    ],
)
def test_bad_arguments_are_named_and_a_password_never_shown(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """A wrong argument fails at construction with a message naming it, and no password in it."""
    with pytest.raises(error, match=message) as raised:
        RedisEventLog(**kwargs)
    assert "hunter2" not in str(raised.value)


def test_repr_and_url_hide_the_password() -> None:
    """The URL is shown with ``***`` for a password, in the netloc or the query."""
    log = RedisEventLog(
        "redis://app:hunter2@127.0.0.1:1/0?password=hunter2", stream=stream_name(), timeout_seconds=0.5
    )
    try:
        assert "hunter2" not in repr(log)
        assert log.url == "redis://app:***@127.0.0.1:1/0?password=%2A%2A%2A"
    finally:
        log.close()


# one feed for many processes

WRITER = """
import sys
from otel_eventlog import Entry, RedisEventLog

log = RedisEventLog(sys.argv[1], stream=sys.argv[2])
name, count = sys.argv[3], int(sys.argv[4])
for n in range(count):
    if n % 2:
        log.write_batch([Entry("tick", {"writer": name, "n": n})])  # queued, as the capture side writes
    else:
        log.append("tick", {"writer": name, "n": n})  # one round trip, as application code writes
assert log.flush(30)
"""

READER = """
import json, sys
from otel_eventlog import RedisEventLog

log = RedisEventLog(sys.argv[1], stream=sys.argv[2])
expected, cursor, seen = int(sys.argv[3]), 0, []
print("ready", flush=True)
while len(seen) < expected:
    page = log.read(since=cursor, wait=30)
    assert page.missed == 0, page
    seen += [[e.id, e.payload["writer"], e.payload["n"]] for e in page.events]
    cursor = page.cursor
print(json.dumps(seen), flush=True)
"""


def test_writer_processes_and_a_reader_process_share_one_feed(url: str) -> None:
    """Three writer processes; a reader process sees every event once, ids dense, each writer in order."""
    stream, writers, count = stream_name(), 3, 200
    reader = run_python(READER, url, stream, str(writers * count))
    assert reader.stdout is not None
    assert reader.stdout.readline().strip() == "ready"
    started = [run_python(WRITER, url, stream, f"w{w}", str(count)) for w in range(writers)]
    for process in started:
        finish(process)
    seen = json.loads(finish(reader))
    assert [event_id for event_id, _, _ in seen] == list(range(1, writers * count + 1))
    for w in range(writers):
        assert [n for _, name, n in seen if name == f"w{w}"] == list(range(count))


WAKER = """
import sys
from otel_eventlog import RedisEventLog

log = RedisEventLog(sys.argv[1], stream=sys.argv[2])
sys.stdin.readline()
log.append("from.another.process")
"""


def test_a_write_in_another_process_wakes_a_waiting_read(log: RedisEventLog, url: str) -> None:
    """read(wait=...) returns with the event another process appends, well before its wait is up."""
    other = run_python(WAKER, url, log.stream, stdin=subprocess.PIPE)
    assert other.stdin is not None
    cursor = log.read().cursor
    result: list[Any] = []
    reading = threading.Thread(target=lambda: result.append(log.read(since=cursor, wait=WAIT)))
    started = time.monotonic()
    reading.start()
    other.stdin.write("go\n")
    other.stdin.flush()
    reading.join(WAIT)
    finish(other)
    assert [e.kind for e in result[0].events] == ["from.another.process"]
    assert time.monotonic() - started < WAIT / 2


def test_news_a_read_sees_first_wakes_the_waiting_readers(log: RedisEventLog, url: str) -> None:
    """A read on another thread that sees a new event wakes a waiting reader, whatever the watcher does.

    The watcher, looking after that read, finds the news already noted: if noting it woke nobody, the
    waiting read would sleep until its wait is up. Here the watcher is held back from looking at all.
    """
    held = threading.Event()
    look = log._look

    def held_look() -> None:
        held.wait()
        look()

    log._look = held_look  # type: ignore[method-assign]
    result: list[Any] = []
    reading = threading.Thread(target=lambda: result.append(log.read(since=0, wait=60)))
    reading.start()
    try:
        until_a_reader_waits(log)
        other = RedisEventLog(url, stream=log.stream)
        try:
            other.append("arrived")
        finally:
            other.close()
        assert log.read(None, 0).latest_id == 1  # another read on this log sees it first
        reading.join(WAIT)
        assert not reading.is_alive(), "the waiting read was not woken"
        assert [e.kind for e in result[0].events] == ["arrived"]
    finally:
        held.set()
        log.close()
        reading.join(WAIT)


def test_follow_is_woken_by_another_process(log: RedisEventLog, url: str) -> None:
    """An asyncio reader following the stream gets what another process appends."""
    log.append("first")

    async def scenario() -> list[str]:
        seen: list[str] = []
        other = run_python(WAKER, url, log.stream, stdin=subprocess.PIPE)
        assert other.stdin is not None
        async for page in log.follow(since=0):
            seen += [e.kind for e in page.events]
            if len(seen) == 1:
                other.stdin.write("go\n")
                other.stdin.flush()
            if len(seen) == 2:
                break
        finish(other)
        return seen

    assert asyncio.run(asyncio.wait_for(scenario(), WAIT)) == ["first", "from.another.process"]


# eviction, on the server, exact


def test_two_processes_see_the_same_count_and_age_eviction_with_exact_missed(url: str) -> None:
    """Eviction by count and by age happens on the server; any reader's missed counts it exactly."""
    clock, stream = ManualClock(), stream_name()
    writer = RedisEventLog(url, stream=stream, ttl_seconds=10, max_entries=5, now=clock)
    reader = RedisEventLog(url, stream=stream, ttl_seconds=10, max_entries=5, now=clock)
    try:
        writer.extend([Entry("tick", {"n": n}) for n in range(8)])  # 1-3 pushed out by count
        page = reader.read(since=0)
        assert ([e.id for e in page.events], page.missed) == ([4, 5, 6, 7, 8], 3)
        clock.advance(6)
        writer.append("young")  # 9; 4 pushed out by count
        clock.advance(5)  # 5-8 are 11 s old: older than the TTL
        page = reader.read(since=3)
        assert ([e.kind for e in page.events], page.missed, page.oldest_id) == (["young"], 5, 9)
        stats = reader.stats()
        assert (stats["evicted_by_count"], stats["evicted_by_ttl"], stats["resident"]) == (4, 4, 1)
    finally:
        writer.close()
        reader.close()


def test_approximate_trimming_never_shows_more_than_max_entries(url: str) -> None:
    """Redis trims whole nodes at a time; readers still see max_entries events, and missed counts the rest."""
    stream = stream_name()
    log = RedisEventLog(url, stream=stream, max_entries=3)
    try:
        log.extend([Entry("tick", {"n": n}) for n in range(500)])
        assert raw(url, "XLEN", stream) > 3  # what Redis has not trimmed yet
        page = log.read(since=0)
        assert ([e.id for e in page.events], page.missed, len(log)) == ([498, 499, 500], 497, 3)
    finally:
        log.close()


def test_max_bytes_keeps_the_newest_events_that_fit(url: str) -> None:
    """The events kept weigh at most max_bytes, encoded; the oldest go first, counted."""
    log = RedisEventLog(url, stream=stream_name(), max_bytes=1000)
    try:
        log.extend([Entry("tick", {"text": "x" * 90}) for _ in range(30)])
        stats = log.stats()
        assert 0 < stats["resident_bytes"] <= 1000
        assert stats["evicted_by_bytes"] == 30 - stats["resident"]
        page = log.read(since=0)
        assert page.missed == stats["evicted_by_bytes"]
        assert page.events[-1].id == 30
        huge = log.append("huge", {"text": "y" * 5000})  # heavier than max_bytes alone: kept, cut to fit
        assert log.query()[-1].id == huge.id
        assert "truncated" in huge.payload["text"]
        assert 0 < log.stats()["resident_bytes"] <= 1000
    finally:
        log.close()


def test_long_values_are_cut_before_they_leave_the_process(log: RedisEventLog, url: str) -> None:
    """A value longer than max_value_bytes is cut, marked and counted; Redis never holds the rest."""
    log.append("prompt", {"text": "z" * 100_000})
    (fields,) = stored_fields(url, log.stream)
    assert len(fields["e"]) < 20_000
    assert "truncated" in log.query()[0].payload["text"]
    assert log.stats()["truncated"] == 1


def test_secrets_are_redacted_before_they_leave_the_process(log: RedisEventLog, url: str) -> None:
    """Redis, and so every reader of the shared feed, never holds a redacted value."""
    log.append("login", {"user": "ada", "password": "hunter2", "db": {"api_key": "sk-123"}})
    log.write_batch([Entry("call", {"authorization": "Bearer abc"})])
    assert log.flush(WAIT)
    stored = json.dumps(stored_fields(url, log.stream))
    for secret in ("hunter2", "sk-123", "Bearer abc"):
        assert secret not in stored
    assert log.query()[0].payload["user"] == "ada"


# the epoch


def test_a_flushed_redis_starts_a_new_log_with_a_new_epoch(log: RedisEventLog, url: str) -> None:
    """After FLUSHDB (or a restart without persistence) the epoch changes and ids begin again at 1."""
    log.extend([Entry("a"), Entry("b")])
    before = log.read().epoch
    raw(url, "DEL", log.stream, f"{log.stream}:meta")
    assert log.append("c").id == 1
    page = log.read(since=2)
    assert page.epoch != before
    assert page.epoch == log.epoch


def test_a_deleted_stream_alone_is_a_lost_log_too(log: RedisEventLog, url: str) -> None:
    """Deleting the stream but not its state still begins a new log, never ids that point nowhere."""
    log.extend([Entry("a"), Entry("b")])
    before = log.epoch
    raw(url, "DEL", log.stream)
    page = log.read(since=0)
    assert (page.epoch != before, page.latest_id, page.events) == (True, 0, ())


def test_a_waiting_reader_is_woken_by_a_new_epoch(server: RedisServer) -> None:
    """A reader waiting on an old log returns with the new log's epoch once the old one is lost."""
    log = RedisEventLog(server.url, stream=stream_name())
    try:
        log.extend([Entry("a"), Entry("b")])
        first = log.read()
        result: list[Any] = []
        reading = threading.Thread(target=lambda: result.append(log.read(since=first.cursor, wait=WAIT)))
        reading.start()
        until_a_reader_waits(log)
        server.command("FLUSHDB")
        log.append("after")
        reading.join(WAIT)
        assert result[0].epoch != first.epoch
    finally:
        log.close()


# off the application's thread


def test_a_paused_redis_never_makes_the_application_wait(server: RedisServer) -> None:
    """With Redis stopped (SIGSTOP), spans and log records return at once; all arrive after SIGCONT."""
    log = RedisEventLog(server.url, stream=stream_name(), timeout_seconds=WAIT)
    provider = TracerProvider()
    provider.add_span_processor(EventLogSpanProcessor(log, live_interval=0))
    tracer = provider.get_tracer("test")
    logger = logging.getLogger("tests.redis.paused")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = EventLogHandler(log)
    logger.addHandler(handler)
    try:
        log.append("before")
        server.pause()
        started = time.monotonic()
        for n in range(100):
            with tracer.start_as_current_span("turn") as span:
                span.add_event("turn.started", {"n": n})
                logger.info("calling", extra={"event_name": "tool.called", "n": n})
        # Had any call waited on Redis, it would have waited out the client's timeout (WAIT).
        assert time.monotonic() - started < WAIT / 3
        server.resume()
        assert log.flush(WAIT)
        kinds = [e.kind for e in log.query()]
        assert kinds.count("turn.started") == kinds.count("tool.called") == 100
        assert log.stats()["dropped"] == 0
    finally:
        server.resume()
        logger.removeHandler(handler)
        provider.shutdown()
        log.close()


def test_a_killed_redis_loses_only_what_the_queue_could_not_hold(server: RedisServer) -> None:
    """Redis killed: nothing raises into the app, the oldest queued are dropped and counted, writes go on."""
    log = RedisEventLog(server.url, stream=stream_name(), queue_events=50, batch_events=10, timeout_seconds=2)
    try:
        log.append("first")
        server.stop()
        for n in range(200):
            log.write_batch([Entry("tick", {"n": n})])
        server.start()
        assert log.flush(WAIT)
        events = log.query()
        stats = log.stats()
        assert stats["dropped"] + len(events) == 200
        assert stats["dropped"] >= 140
        assert [e.payload["n"] for e in events] == list(range(200 - len(events), 200))  # the newest
        assert [e.id for e in events] == list(range(1, len(events) + 1))  # a new log
    finally:
        log.close()


def test_a_flush_right_after_redis_returns_sends_the_queue_at_once(
    server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis back while the writer backs off: the next flush has the queue sent now, not after the backoff."""
    for name in ("_FIRST_BACKOFF", "_MAX_BACKOFF"):  # the writer would not try again during the test
        monkeypatch.setattr(_outbox, name, WAIT * 10)
    log = RedisEventLog(server.url, stream=stream_name(), timeout_seconds=2)
    try:
        log.append("first")
        server.stop()
        log.write_batch([Entry("queued", {"n": n}) for n in range(100)])
        assert not log.flush(WAIT)  # gives up at the first failed send
        server.start()
        assert log.flush(WAIT)
        assert [event.payload["n"] for event in log.query()] == list(range(100))
    finally:
        log.close()


def test_unconfigure_against_a_redis_that_does_not_answer_waits_one_timeout_and_says_what_is_left(
    server: RedisServer, warnings: Warnings
) -> None:
    """A paused Redis at shutdown: one timeout in all (not one per processor), and a count of what is left."""
    from opentelemetry.sdk._logs import LoggerProvider

    from otel_eventlog import configure, unconfigure

    provider = TracerProvider()
    settings = {
        "backend": "redis",
        "redis": {"url": server.url, "stream": stream_name(), "timeout_seconds": 1},
    }
    log = configure(
        {"observability": {"event_log": settings}}, tracer_provider=provider, logger_provider=LoggerProvider()
    )
    try:
        log.append("reached")
        server.pause()
        with provider.get_tracer("test").start_as_current_span("turn") as span:
            for n in range(10):
                span.add_event("turn.started", {"n": n})
        started = time.monotonic()
        unconfigure()
        took = time.monotonic() - started
        assert took < 3.0, f"{took:.1f} s"  # one timeout of 1 s; each processor's flush waited 5 s before
        assert any(
            re.search(r"\d+ event\(s\) are not sent to Redis at .* \(it does not answer\)", message)
            for message in warnings.messages
        ), warnings.messages
    finally:
        server.resume()
        unconfigure()
        provider.shutdown()


def test_stats_do_not_wait_on_a_redis_that_does_not_answer(server: RedisServer) -> None:
    """Once a send went unanswered, stats() returns the last counters seen at once (metrics collect them)."""
    log = RedisEventLog(server.url, stream=stream_name(), timeout_seconds=WAIT / 4)
    try:
        log.append("reached")
        server.pause()
        log.write_batch([Entry("queued")])
        assert not log.flush(WAIT)  # the send timed out
        started = time.monotonic()
        stats = log.stats()
        assert time.monotonic() - started < WAIT / 8  # not a round trip that waits out the timeout
        assert (stats["appended"], stats["queued"]) == (1, 1)
    finally:
        server.resume()
        log.close()


def test_the_watcher_outlives_any_number_of_failed_looks(
    server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long outage is thousands of failed looks: after it, a waiting reader is still woken."""
    import types

    from otel_eventlog.backends import redis as backend

    pauses: list[float] = []
    clock = types.SimpleNamespace(time=time.time, monotonic=time.monotonic, sleep=pauses.append)
    monkeypatch.setattr(backend, "time", clock)  # the watcher's pauses between looks cost nothing
    log = RedisEventLog(server.url, stream=stream_name(), timeout_seconds=1)
    try:
        before = log.append("before")
        before_epoch = log.read().epoch
        result: list[Any] = []
        reading = threading.Thread(target=lambda: result.append(log.read(since=before.id, wait=WAIT)))
        reading.start()
        until_a_reader_waits(log)
        server.stop()
        deadline = time.monotonic() + WAIT
        while len(pauses) < 2000 and time.monotonic() < deadline:  # looks failing as fast as they can
            time.sleep(0.01)
        assert len(pauses) >= 2000
        started = time.monotonic()
        server.start()  # empty: the log begins again, and the watcher says so
        reading.join(WAIT)
        assert result[0].epoch != before_epoch
        assert time.monotonic() - started < WAIT / 2  # woken by the watcher, not by the end of its wait
        assert max(pauses) <= 1.0
    finally:
        log.close()


def test_appends_of_many_threads_against_a_paused_redis_each_fail_within_about_one_timeout(
    server: RedisServer,
) -> None:
    """Eight threads append while Redis does not answer: none waits behind the others' timeouts."""
    timeout = 1.0
    log = RedisEventLog(server.url, stream=stream_name(), timeout_seconds=timeout)
    try:
        log.append("reached")
        server.pause()
        took: list[float] = []

        def append() -> None:
            started = time.monotonic()
            with pytest.raises(BackendError, match="Redis at"):
                log.append("refused")
            took.append(time.monotonic() - started)

        threads = [threading.Thread(target=append) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
        assert len(took) == 8
        assert max(took) < 3 * timeout, took  # one after another, the eighth would wait eight
    finally:
        server.resume()
        log.close()


def test_an_append_behind_a_queue_redis_refuses_says_why(server: RedisServer) -> None:
    """Redis down with captured events queued: the error names the writer's own failure."""
    log = RedisEventLog(server.url, stream=stream_name(), timeout_seconds=1)
    try:
        log.append("reached")
        server.stop()
        log.write_batch([Entry("queued")])
        with pytest.raises(BackendError, match=r"not stored yet \(.*Connection refused.*\); try again later"):
            log.append("direct")
    finally:
        log.close()


def test_a_queue_larger_than_redis_takes_in_one_argument_is_sent_in_smaller_batches(
    server: RedisServer,
) -> None:
    """With ``proto-max-bulk-len`` lowered to 1 MB, 2.4 MB of queued events still all arrive."""
    assert server.command("CONFIG", "SET", "proto-max-bulk-len", "1048576") == "+OK"
    log = RedisEventLog(server.url, stream=stream_name())
    try:
        log.append("reached")
        log.write_batch([Entry("big", {"n": n, "v": "x" * 8000}) for n in range(300)])
        assert log.flush(WAIT)
        assert len(log.query()) == 301
        assert log.stats()["failures"] == 0
    finally:
        log.close()


def test_stats_of_an_idle_process_wait_on_a_silent_redis_once_and_catch_up_when_it_answers(
    server: RedisServer,
) -> None:
    """Nothing written, Redis paused: the first stats() waits its timeout, later ones return at once."""
    log = RedisEventLog(server.url, stream=stream_name(), timeout_seconds=WAIT / 4)
    try:
        log.append("reached")
        server.pause()
        log.stats()  # times out: Redis does not answer
        started = time.monotonic()
        for _ in range(3):
            assert log.stats()["appended"] == 1
        assert time.monotonic() - started < WAIT / 8  # none waited out the timeout again
        server.resume()
        other = RedisEventLog(server.url, stream=log.stream)
        other.append("from another process")
        other.close()
        deadline = time.monotonic() + WAIT
        while log.stats()["appended"] != 2:  # asked for in the background, as it answers again
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        server.resume()
        log.close()


def test_an_unreachable_redis_at_start_is_a_warning_naming_it(warnings: Warnings) -> None:
    """The application runs on; a warning names host and port, never the password."""
    port = redis_server.free_port()
    log = RedisEventLog(f"redis://:hunter2@127.0.0.1:{port}/0", stream=stream_name(), timeout_seconds=1)
    try:
        log.write_batch([Entry("queued")])  # returns at once
        assert warnings.first.wait(WAIT)
        assert f"cannot write to Redis at 127.0.0.1:{port}" in warnings.messages[0]
        assert "hunter2" not in " ".join(warnings.messages)
        with pytest.raises(BackendError, match=f"Redis at 127.0.0.1:{port}") as raised:
            log.append("direct")
        assert "hunter2" not in str(raised.value)
        assert not log.flush(0.1)  # still waiting to be sent
    finally:
        log.close()


def test_direct_appends_follow_what_the_capture_side_queued(log: RedisEventLog) -> None:
    """A record the handler queued, then a direct append on the same thread: the ids keep that order."""
    for n in range(50):
        log.write_batch([Entry("queued", {"n": n})])
        log.append("direct", {"n": n})
    kinds = [e.kind for e in log.query()]
    assert kinds == ["queued", "direct"] * 50


def test_a_malformed_entry_in_the_stream_is_shown_marked(log: RedisEventLog, url: str) -> None:
    """An entry someone else wrote badly reaches readers as a marked event; the next ones still do."""
    log.append("good")
    raw(url, "XADD", log.stream, "2-0", "e", "not json", "t", "0", "b", "0")
    raw(url, "HSET", f"{log.stream}:meta", "last", "2")
    log.append("after")
    assert [e.kind for e in log.query()] == ["good", "otel_eventlog.malformed_event", "after"]


def test_after_fork_the_child_writes_through_its_own_connection_and_writer(log: RedisEventLog) -> None:
    """A forked child's writes arrive, on the same log and epoch; the parent's queue is not sent twice."""
    log.append("parent")
    epoch = log.epoch
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover  # the child reports through its exit status
        os.close(read)
        try:
            log.write_batch([Entry("child.queued")])
            ok = log.flush(WAIT) and log.append("child.direct").id == 3 and log.epoch == epoch
        except Exception:
            ok = False
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(pid, 0)
    os.close(read)
    assert [e.kind for e in log.query()] == ["parent", "child.queued", "child.direct"]


def test_a_child_forked_while_a_value_was_being_cut_writes_on(log: RedisEventLog) -> None:
    """The lock that counts cut values, held by another thread at the fork, is not held in the child."""
    import select

    cutting = threading.Event()

    def cut_for_a_while() -> None:
        with log._counting:  # as a thread counting a value it cut holds it
            cutting.set()
            time.sleep(0.2)  # the fork comes meanwhile

    holder = threading.Thread(target=cut_for_a_while)
    holder.start()
    assert cutting.wait(WAIT)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover  # the child reports through the pipe
        os.close(read)
        try:
            log.write_batch([Entry("child", {"v": "x" * (log.max_value_bytes + 10)})])  # cut, counted
            ok = log.flush(WAIT)
        except Exception:
            ok = False
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    holder.join(WAIT)
    answered = select.select([read], [], [], WAIT)[0]
    outcome = os.read(read, 1) if answered else b"hung"
    if not answered:
        os.kill(pid, 9)
    os.waitpid(pid, 0)
    os.close(read)
    assert outcome == b"1"


def test_read_async_does_not_block_the_loop_while_it_waits(log: RedisEventLog) -> None:
    """Other coroutines run while read_async waits; it returns with the event a thread appends."""

    async def scenario() -> tuple[list[str], int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.ensure_future(ticker())
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, lambda: threading.Thread(target=log.append, args=("late",)).start())
        page = await log.read_async(since=log.read().cursor, wait=WAIT)
        task.cancel()
        return [e.kind for e in page.events], ticks

    kinds, ticks = asyncio.run(asyncio.wait_for(scenario(), WAIT))
    assert kinds == ["late"]
    assert ticks > 10


def test_a_read_of_an_unreachable_redis_is_a_backend_error(log: RedisEventLog) -> None:
    """Reads, clear and len name the server when it cannot be reached; stats still answers."""
    dead = RedisEventLog(
        f"redis://127.0.0.1:{redis_server.free_port()}/0", stream=stream_name(), timeout_seconds=1
    )
    try:
        for call in (dead.read, dead.clear, dead.__len__, lambda: dead.extend([Entry("x")])):
            with pytest.raises(BackendError, match=r"Redis at 127\.0\.0\.1:"):
                call()

        async def read() -> None:
            await dead.read_async(since=0)

        with pytest.raises(BackendError):
            asyncio.run(read())
        assert dead.stats()["appended"] == 0
    finally:
        dead.close()


def test_an_empty_extend_stores_nothing_and_names_where_ids_stand(log: RedisEventLog) -> None:
    """extend([]) returns the empty range at the next id, as every backend does."""
    log.append("a")
    assert log.extend([]) == range(2, 2)
    assert log.append("b").id == 2


def test_a_batch_of_only_malformed_items_is_counted_and_sends_nothing(log: RedisEventLog) -> None:
    """Nothing reaches Redis from a batch whose every item is malformed; each is counted."""
    log.write_batch([("", {}, None, None, None), (3,)])  # type: ignore[list-item]
    assert log.flush(WAIT)
    assert (log.failures, log.read().latest_id) == (2, 0)


def test_a_filtered_read_scans_past_one_chunk(log: RedisEventLog) -> None:
    """A filter that matches rarely reads the stream a chunk at a time and finds every match."""
    log.extend([Entry("turn.started" if n % 300 == 0 else "tick", {"n": n}) for n in range(1500)])
    page = log.read(since=0, kinds="turn.*")
    assert ([e.payload["n"] for e in page.events], page.cursor) == ([0, 300, 600, 900, 1200], 1500)
    page = log.read(since=0, limit=2, kinds="turn.*")
    assert ([e.payload["n"] for e in page.events], page.cursor) == ([0, 300], 301)


def test_a_filtered_read_stops_where_the_log_was_lost_under_it(server: RedisServer) -> None:
    """If the log is lost between two chunks of a filtered read, the read ends with what it found."""
    log = RedisEventLog(server.url, stream=stream_name())
    try:
        log.extend([Entry("turn.started" if n == 10 else "tick") for n in range(1500)])
        reads = log._call_read

        def flushed_after_the_first(request: tuple[int, int]) -> list[Any]:
            reply = reads(request)
            server.command("FLUSHDB")  # fault injection: the log is lost mid-read
            return reply

        log._call_read = flushed_after_the_first  # type: ignore[method-assign]
        page = log.read(since=0, kinds="turn.*")
        assert [e.id for e in page.events] == [11]
    finally:
        log.close()


def test_an_entry_that_is_json_but_not_an_event_is_shown_marked(log: RedisEventLog, url: str) -> None:
    """Valid JSON of the wrong shape is marked, like text that is not JSON at all."""
    log.append("good")
    raw(url, "XADD", log.stream, "2-0", "e", '[0, "kind", [1, 2], null, null]', "t", "0", "b", "0")
    raw(url, "HSET", f"{log.stream}:meta", "last", "2")
    assert [(e.id, e.kind) for e in log.query()] == [(1, "good"), (2, "otel_eventlog.malformed_event")]


def test_messages_name_a_unix_socket_by_its_path() -> None:
    """A log on a Unix socket names the socket's path when it cannot reach it."""
    log = RedisEventLog("unix:///nonexistent/redis.sock", stream=stream_name(), timeout_seconds=1)
    try:
        with pytest.raises(BackendError, match=r"Redis at /nonexistent/redis\.sock"):
            log.read()
    finally:
        log.close()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pa/ss@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("redis://app:p#w?x@cache:6379/0?db=1", "redis://app:***@cache:6379/0?db=1"),
        ("redis://u:hunter2@[::1/0", "redis://u:***@[::1/0"),
        (
            "rediss://cache:6380/0?password=hunter2&ssl_cert_reqs=none",
            "rediss://cache:6380/0?password=%2A%2A%2A&ssl_cert_reqs=none",
        ),
        ("u:hunter2@cache:6379", "<a malformed URL>"),
        ("redis:/127.0.0.1:6379", "redis:/127.0.0.1:6379"),
    ],
)
def test_a_password_is_masked_however_the_url_is_written(url: str, shown: str) -> None:
    """Whatever lies between :// and the last @ is masked, even a password a URL parser would misread."""
    from otel_eventlog.backends.redis import public_url

    assert public_url(url) == shown


def test_a_password_with_a_slash_never_reaches_an_error() -> None:
    """A URL redis-py cannot parse is refused without its error, which could quote the password."""
    with pytest.raises(ValueError, match="is not a valid Redis URL: check the host, the port") as raised:
        RedisEventLog("redis://:pa/ss@127.0.0.1:6379/0", stream=stream_name())
    assert "pa/ss" not in str(raised.value)
    assert "'pa'" not in str(raised.value)


def test_a_long_poll_with_no_news_ends_empty_when_its_time_is_up(log: RedisEventLog) -> None:
    """A wait longer than one XREAD block outlasts it, and returns an empty page at the same cursor."""
    log.append("only")
    started = time.monotonic()
    page = log.read(since=1, wait=1.2)
    assert (page.events, page.cursor, page.missed) == ((), 1, 0)
    assert time.monotonic() - started >= 1.2


def test_a_large_payload_of_short_values_is_stored_whole(log: RedisEventLog) -> None:
    """max_value_bytes caps each value, not the payload: many short values are kept as they are."""
    payload = {f"part{n}": "v" * 1000 for n in range(40)}  # 40 KB in all, each value 1 KB
    log.append("big", payload)
    assert log.query()[0].payload == payload
    assert log.stats()["truncated"] == 0


def test_the_asgi_app_keeps_its_event_loop_free_while_redis_is_paused(server: RedisServer) -> None:
    """A request to make_asgi_app on a paused Redis waits on a worker thread; the loop runs on."""
    from otel_eventlog import make_asgi_app

    log = RedisEventLog(server.url, stream=stream_name(), timeout_seconds=WAIT)
    app = make_asgi_app(log)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def scenario() -> bool:
        scope = {"type": "http", "method": "GET", "path": "/activity", "query_string": b"since=0"}
        request = asyncio.ensure_future(app({**scope, "headers": []}, receive, send))
        for _ in range(50):  # the loop turns while the request waits on Redis
            await asyncio.sleep(0)
        waiting = not request.done()
        server.resume()
        await asyncio.wait_for(request, WAIT)
        return waiting

    log.append("before")
    server.pause()
    try:
        assert asyncio.run(scenario())
        assert sent[0]["status"] == 200
    finally:
        server.resume()
        log.close()


def test_a_batch_sent_again_after_a_timeout_is_stored_once(server: RedisServer, warnings: Warnings) -> None:
    """A batch sent again after a timeout, which Redis took when it woke, is not stored twice."""
    log = RedisEventLog(server.url, stream=stream_name(), timeout_seconds=0.2)
    try:
        log.append("before")
        server.pause()
        log.write_batch([Entry("during")])
        assert warnings.first.wait(WAIT)  # the send timed out: the batch waits to go again
        server.resume()
        assert log.flush(WAIT)
        assert [e.kind for e in log.query()] == ["before", "during"]
    finally:
        server.resume()
        log.close()


def test_a_filtered_read_stops_where_eviction_overtook_it(log: RedisEventLog, url: str) -> None:
    """Events evicted between two chunks of a filtered read are never skipped silently."""
    small = RedisEventLog(url, stream=log.stream, max_entries=600)
    try:
        small.extend([Entry("match" if n % 2 else "tick") for n in range(600)])
        reads = small._call_read

        def a_writer_runs_between_chunks(request: tuple[int, int]) -> list[Any]:
            reply = reads(request)
            if request[0] == 0:
                log.extend([Entry("tick") for _ in range(1000)])  # pushes the rest of the scan out
            return reply

        small._call_read = a_writer_runs_between_chunks  # type: ignore[method-assign]
        page = small.read(since=0, kinds="match")
        assert (page.cursor, page.missed) == (512, 0)
        assert page.events[-1].id <= 512
        small._call_read = reads  # type: ignore[method-assign]
        later = small.read(since=page.cursor, kinds="match")
        assert later.missed == later.oldest_id - 513  # what went is reported, exactly
        assert len(page.events) + len(later.events) <= 600 + 1000
    finally:
        small.close()


def test_a_reader_of_a_lost_log_does_not_spin(log: RedisEventLog, url: str) -> None:
    """After the log is lost and begun again, a waiting read waits: it does not read in a loop."""
    log.extend([Entry("a"), Entry("b"), Entry("c")])
    raw(url, "DEL", log.stream, f"{log.stream}:meta")
    other = RedisEventLog(url, stream=log.stream)
    other.extend([Entry("new"), Entry("log")])
    other.close()
    calls = 0
    reads = log._call_read

    def counted(request: tuple[int, int]) -> list[Any]:
        nonlocal calls
        calls += 1
        return reads(request)

    log._call_read = counted  # type: ignore[method-assign]
    page = log.read(since=2, wait=0.5)
    assert (page.events, page.latest_id) == ((), 2)
    assert calls <= 3


def test_a_waiting_reader_learns_at_once_that_its_log_was_lost(log: RedisEventLog, url: str) -> None:
    """When the log is lost and nobody writes, a waiting read still returns, with a new epoch."""
    log.extend([Entry("a"), Entry("b")])
    before = log.read()
    result: list[Any] = []
    reading = threading.Thread(target=lambda: result.append(log.read(since=before.cursor, wait=WAIT)))
    reading.start()
    until_a_reader_waits(log)
    raw(url, "DEL", log.stream, f"{log.stream}:meta")
    reading.join(WAIT)
    assert result[0].epoch != before.epoch
    assert (result[0].events, result[0].latest_id) == ((), 0)


def test_ages_are_judged_by_the_redis_server_clock_unless_a_clock_is_given(
    log: RedisEventLog, url: str
) -> None:
    """Every writer stamps with the server's TIME by default; a clock given in code is used instead."""
    log.append("server.time")
    (fields,) = stored_fields(url, log.stream)
    seconds, micros = raw(url, "TIME")
    assert abs(float(fields["t"]) - (int(seconds) + int(micros) / 1e6)) < 60
    clock = ManualClock(1_000.5)
    own = RedisEventLog(url, stream=stream_name(), now=clock)
    try:
        own.append("own.time")
        (fields,) = stored_fields(url, own.stream)
        assert float(fields["t"]) == 1_000.5
        assert own.query()[0].timestamp == 1_000.5
    finally:
        own.close()


def test_a_filtered_read_ends_at_the_newest_id_it_first_saw(log: RedisEventLog) -> None:
    """Events appended while a filtered read goes through the stream are the next read's."""
    log.extend([Entry("match" if n % 2 else "tick") for n in range(600)])
    reads = log._call_read

    def a_writer_runs_between_chunks(request: tuple[int, int]) -> list[Any]:
        reply = reads(request)
        if request[0] == 0:
            log.extend([Entry("match") for _ in range(100)])
        return reply

    log._call_read = a_writer_runs_between_chunks  # type: ignore[method-assign]
    page = log.read(since=0, kinds="match")
    assert (page.cursor, page.latest_id, len(page.events)) == (600, 600, 300)
    log._call_read = reads  # type: ignore[method-assign]
    assert len(log.read(since=page.cursor, kinds="match").events) == 100


def test_a_filtered_read_of_no_events_returns_where_it_stood(log: RedisEventLog) -> None:
    """limit=0 with a filter reads nothing and leaves the cursor where it was."""
    log.extend([Entry("match"), Entry("tick")])
    page = log.read(since=1, limit=0, kinds="match")
    assert (page.events, page.cursor, page.latest_id) == ((), 1, 2)


def test_follow_starts_over_when_the_log_begins_again(server: RedisServer) -> None:
    """A follower whose log is lost gets the new log from its first event, under the new epoch."""
    log = RedisEventLog(server.url, stream=stream_name())
    writer = RedisEventLog(server.url, stream=log.stream)

    async def scenario() -> list[tuple[str, list[int]]]:
        pages: list[tuple[str, list[int]]] = []
        async for page in log.follow(since=0):
            pages.append((page.epoch, [e.id for e in page.events]))
            if len(pages) == 1:
                server.command("FLUSHDB")
                await asyncio.to_thread(writer.extend, [Entry("new"), Entry("log")])
            elif any(pages[-1][1]):
                break
        return pages

    try:
        log.extend([Entry("a"), Entry("b"), Entry("c")])
        pages = asyncio.run(asyncio.wait_for(scenario(), WAIT))
    finally:
        log.close()
        writer.close()
    assert pages[0][1] == [1, 2, 3]
    assert pages[-1][0] != pages[0][0]
    assert [event_id for _, ids in pages[1:] for event_id in ids] == [1, 2]


def clients_of(url: str, stream: str) -> int:
    """How many connections of `stream`'s logs the server has now."""
    listing: bytes = raw(url, "CLIENT", "LIST")
    return listing.decode().count(f"name=otel-eventlog:{stream} ")


def test_asynchronous_reads_share_their_loop_connection_and_close_it_with_the_loop(
    log: RedisEventLog, url: str
) -> None:
    """A hundred read_async calls on one loop use one connection, closed when asyncio.run ends."""
    log.append("tick")
    log.close()  # the sync side's connections go: only the loop's are counted below
    seen: list[int] = []

    async def scenario() -> None:
        for _ in range(100):
            await log.read_async(since=0)
        seen.append(clients_of(url, log.stream))

    asyncio.run(scenario())
    assert seen == [1]
    assert clients_of(url, log.stream) == 0


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts this process's open files in /proc")
def test_loops_closed_without_shutting_down_their_generators_do_not_pile_up_connections(
    log: RedisEventLog,
) -> None:
    """``loop.close()`` without ``shutdown_asyncgens()``, twenty times: their clients are let go, not kept."""
    import gc
    import warnings as python_warnings

    log.append("tick")
    log.close()  # the sync side's connections go: only the loops' are counted below
    gc.collect()
    before = len(os.listdir("/proc/self/fd"))
    with python_warnings.catch_warnings():  # their transports, collected, say that nobody closed them
        python_warnings.simplefilter("ignore", ResourceWarning)
        for _ in range(20):
            loop = asyncio.new_event_loop()
            loop.run_until_complete(log.read_async(since=0))
            loop.close()
        asyncio.run(log.read_async(since=0))  # a loop that reads lets the last careless one go
        gc.collect()
    assert len(os.listdir("/proc/self/fd")) - before <= 1  # not twenty sockets kept open


def test_a_full_redis_holds_the_batch_until_it_has_room(server: RedisServer, warnings: Warnings) -> None:
    """An out-of-memory refusal passes: the batch waits, and is stored once Redis has room again."""
    log = RedisEventLog(server.url, stream=stream_name())
    try:
        log.append("before")
        server.command("CONFIG SET maxmemory-policy noeviction")
        server.command("CONFIG SET maxmemory 1")
        log.write_batch([Entry("while.full")])
        assert warnings.first.wait(WAIT)  # refused, and held
        server.command("CONFIG SET maxmemory 0")
        assert log.flush(WAIT)
        assert [e.kind for e in log.query()] == ["before", "while.full"]
        assert log.failures == 0
    finally:
        log.close()


def test_a_batch_redis_refuses_for_good_is_counted_and_the_next_goes_on(log: RedisEventLog, url: str) -> None:
    """A write Redis can never take (the stream's key holds a string) is counted and dropped."""
    log.append("first")
    raw(url, "SET", log.stream, "not a stream")  # the log's state stays: the key is no stream now
    log.write_batch([Entry("refused")])
    assert log.flush(WAIT)
    assert log.failures >= 1  # the batch; and the writer's first look, if it came after the SET
    raw(url, "DEL", log.stream, f"{log.stream}:meta")
    log.write_batch([Entry("taken")])
    assert log.flush(WAIT)
    assert [e.kind for e in log.query()] == ["taken"]


def test_a_batch_sent_again_is_counted_once(server: RedisServer, warnings: Warnings) -> None:
    """A long value cut, a secret redacted, a malformed item: each counted once, however often sent."""
    log = RedisEventLog(server.url, stream=stream_name(), max_value_bytes=100, timeout_seconds=0.2)
    try:
        log.append("before")
        redacted = log.stats()["redacted"]
        server.pause()
        log.write_batch(
            [Entry("cut", {"text": "x" * 500, "password": "hunter2"}), ("", {}, None, None, None)]
        )
        assert warnings.first.wait(WAIT)
        server.resume()
        assert log.flush(WAIT)
        stats = log.stats()
        assert (stats["truncated"], stats["redacted"] - redacted, stats["failures"]) == (1, 1, 1)
    finally:
        server.resume()
        log.close()


def test_configure_with_an_unreachable_redis_warns_and_the_application_runs_on() -> None:
    """configure() builds the log and attaches the processors; spans and records go on without Redis."""
    from opentelemetry.sdk._logs import LoggerProvider

    from otel_eventlog import configure, unconfigure

    provider, loggers = TracerProvider(), LoggerProvider()
    url = f"redis://:hunter2@127.0.0.1:{redis_server.free_port()}/0"
    settings = {"backend": "redis", "redis": {"url": url, "timeout_seconds": 0.5}}
    log = configure(
        {"observability": {"event_log": {**settings, "capture": {"logging": False}}}},
        tracer_provider=provider,
        logger_provider=loggers,
    )
    try:
        assert isinstance(log, RedisEventLog)
        assert log.epoch  # a placeholder until Redis is reached: no call waits for it
        with provider.get_tracer("test").start_as_current_span("turn") as span:
            span.add_event("turn.started")
        assert log.stats()["appended"] == 0
    finally:
        unconfigure()
        provider.shutdown()


def test_every_http_app_answers_503_while_the_log_cannot_be_read() -> None:
    """The stdlib server, WSGI and ASGI answer polls and new streams with a 503 naming the server."""
    from otel_eventlog import make_asgi_app, make_wsgi_app, start_activity_server

    port = redis_server.free_port()
    log = RedisEventLog(f"redis://127.0.0.1:{port}/0", stream=stream_name(), timeout_seconds=0.5)
    try:
        wsgi = make_wsgi_app(log)
        for path in ("/activity", "/activity/stream"):
            statuses: list[str] = []
            answer = statuses.append
            body = b"".join(
                wsgi({"REQUEST_METHOD": "GET", "PATH_INFO": path}, lambda status, headers: answer(status))  # noqa: B023
            )
            assert statuses == ["503 Service Unavailable"]
            assert f"127.0.0.1:{port}".encode() in body

        async def asgi_status(path: str) -> int:
            sent: list[dict[str, Any]] = []

            async def receive() -> dict[str, Any]:
                return {"type": "http.disconnect"}

            async def send(message: dict[str, Any]) -> None:
                sent.append(message)

            scope = {"type": "http", "method": "GET", "path": path, "query_string": b"", "headers": []}
            await make_asgi_app(log)(scope, receive, send)
            return int(sent[0]["status"])

        assert [asyncio.run(asgi_status(path)) for path in ("/activity", "/activity/stream")] == [503, 503]
        server = start_activity_server(log, 0)
        try:
            import urllib.error
            import urllib.request

            for path in ("/activity", "/activity/stream"):
                with pytest.raises(urllib.error.HTTPError) as raised:
                    urllib.request.urlopen(f"{server.url.rstrip('/')}{path}", timeout=WAIT)
                assert raised.value.code == 503
                raised.value.close()
        finally:
            server.close()
    finally:
        log.close()


def test_tail_waits_out_an_outage_of_the_servers_redis(server: RedisServer) -> None:
    """Tail keeps following while the Activity server's Redis is down, and prints what comes after."""
    import io

    from otel_eventlog import start_activity_server
    from otel_eventlog.cli.tail import tail

    log = RedisEventLog(server.url, stream=stream_name(), timeout_seconds=0.5)
    log.append("before")
    activity = start_activity_server(log, 0)
    out = io.StringIO()
    printed: list[int] = []
    follower = threading.Thread(
        target=lambda: printed.append(tail(activity.url, out=out, since=1, count=1, retry_seconds=0.05))
    )
    try:
        follower.start()
        until_a_reader_waits(log)  # tail follows the stream
        server.stop()
        deadline = time.monotonic() + WAIT
        while "retrying" not in out.getvalue():  # tail reports the 503s, once, as it retries
            assert time.monotonic() < deadline, out.getvalue()
            time.sleep(0.01)
        server.start()
        log.append("after")
        follower.join(WAIT)
        assert printed == [1]
        lines = out.getvalue().splitlines()
        assert sum("answered 503" in line for line in lines) == 1
        assert "restarted" in lines[-2]  # Redis came back empty: a new log, followed from its start
        assert "after" in lines[-1]
    finally:
        activity.close()
        log.close()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis://cache:6379/0", None),
        ("redis://cache:6379/0?socket_timeout=2&protocol=3&max_connections=4", None),
        ("rediss://cache:6380/0?ssl_cert_reqs=none", None),
        ("unix:///run/redis.sock?db=2", None),
        ("redis://[::1", None),  # not a URL at all: said by the check of the URL itself
        # A password holding a / ? or # reads as a path, query or fragment: never quoted here.
        ("redis://:pa/ss@cache:6379/0", None),
        ("redis://:pa?ss=1@cache:6379/0", None),
        ("redis://:pa#ss@cache:6379/0", None),
        ("redis://cache:6379/zero", "expected a database number after the port, got 'zero'"),
        ("redis://cache:6379/0?protocol=4", "expected protocol=2 or protocol=3"),
        (
            "redis://cache:6379/0?socket_timout=5",
            "unknown option 'socket_timout' (did you mean 'socket_timeout'?)",
        ),
        ("redis://cache:6379/0?zzzzzz=1", "unknown option 'zzzzzz'"),
        (
            "redis://cache:6379/0?ssl_min_version=5",
            "option 'ssl_min_version' is for TLS connections: rediss:// URLs",
        ),
        ("unix:///run/redis.sock?socket_timeout=soon", "Invalid value for 'socket_timeout'"),
    ],
)
def test_a_url_s_database_and_options_are_checked_as_redis_py_reads_them(
    url: str, problem: str | None
) -> None:
    """What redis-py would refuse only once connecting (a TypeError, deep down) is said at once, by name."""
    assert url_option_problem(url) == problem
    if problem is not None:
        with pytest.raises(ValueError, match=re.escape(problem)):
            RedisEventLog(url, stream=stream_name())


def test_without_redis_py_only_the_database_and_protocol_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The options' names and values are redis-py's to judge: without it they pass, the rest is checked."""
    monkeypatch.setitem(sys.modules, "redis", None)  # import redis now raises ImportError
    assert url_option_problem("redis://cache:6379/0?socket_timout=5") is None
    assert url_option_problem("redis://cache:6379/0?protocol=9") == "expected protocol=2 or protocol=3"


def test_the_demo_reader_starts_over_when_redis_loses_the_log(server: RedisServer) -> None:
    """The demo's printed feed follows a log that began again from its start, and says so."""
    import io

    from otel_eventlog.cli.demo import _follow

    log = RedisEventLog(server.url, stream=stream_name())
    try:
        for n in range(3):
            log.append("turn.started", {"turn": n})
        out = io.StringIO()
        place, printed = _follow(log, out, (None, None), until=0)
        assert printed == 3
        assert server.command("FLUSHALL") == "+OK"
        log.append("session.started", {"session": 2})  # id 1 of a new log, below the old cursor
        _, more = _follow(log, out, place, until=0)
    finally:
        log.close()
    assert more == 1
    lines = out.getvalue().splitlines()
    assert lines[3] == "  ... the log began again (its Redis lost it): reading it from its start"
    assert lines[4].split()[:3][::2] == ["#1", "session.started"]


def test_what_waits_for_redis_is_cut_and_held_to_max_bytes() -> None:
    """While Redis is away, the queue keeps events cut to max_value_bytes, and 64 MiB of them at most."""
    url = f"redis://127.0.0.1:{redis_server.free_port()}/0"
    log = RedisEventLog(url, stream=stream_name(), max_bytes=2_000_000, timeout_seconds=0.2)
    try:
        for n in range(100):  # each event some 1.3 MB, cut to about 1 MiB: 100 MiB in all
            log.write_batch([Entry("reply", {"n": n, **{f"v{k}": "x" * 20_000 for k in range(64)}})])
        queued = [json.loads(item) for item in log._outbox._queue]  # encoded as they are sent
        assert 60 * 2**20 < log._outbox._weight <= 64 * 2**20  # the larger of max_bytes and 64 MiB
        assert log._outbox._weight == sum(map(len, log._outbox._queue))
        assert [row[2]["n"] for row in queued] == list(range(100 - len(queued), 100))  # the newest kept
        assert all(len(row[2]["v0"]) < 17_000 for row in queued)
        stats = log.stats()
        assert stats["truncated"] == 6_400
        assert stats["dropped"] + stats["queued"] == 100
        assert stats["dropped"] >= 30
    finally:
        log.close()


def test_write_batch_never_raises_and_counts_what_it_cannot_store(server: RedisServer) -> None:
    """Not a batch: counted, not raised. A generator with a malformed item: the rest stored, one counted."""
    log = RedisEventLog(server.url, stream=stream_name(), timeout_seconds=2)
    try:
        log.write_batch(5)  # type: ignore[arg-type]
        log.write_batch(item for item in [Entry("kept"), ("", {}, None, None, None)])  # type: ignore[arg-type]
        log.write_batch([("", {}, None, None, None), Entry("also kept"), (1, 2)])  # type: ignore[list-item]
        log.write_batch([Entry("small", {"n": 1})])
        assert log.flush(WAIT)
        assert [e.kind for e in log.query()] == ["kept", "also kept", "small"]
        assert log.stats()["failures"] == 4
    finally:
        log.close()


def test_a_secret_is_redacted_whole_before_its_value_is_cut(server: RedisServer) -> None:
    """A pattern's secret across the max_value_bytes cut is still found: redaction comes first."""
    from otel_eventlog.redaction import Redaction

    secret = "sk-" + "A1b2C3d4" * 4
    redaction = Redaction(patterns=[r"sk-[A-Za-z0-9]{32}"])
    log = RedisEventLog(server.url, stream=stream_name(), max_value_bytes=1024, redaction=redaction)
    try:
        log.write_batch([Entry("call", {"text": "y" * 1000 + secret})])
        assert log.flush(WAIT)
        [stored] = stored_fields(server.url, log.stream)
        assert "sk-" not in json.dumps(stored)
        assert "[redacted]" in log.query()[0].payload["text"]
    finally:
        log.close()
