"""Regression tests: races, leaks and hangs found in review, each pinned by the scenario that showed it."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import math
import threading
import time
import urllib.request
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from otel_eventlog import (
    ConfigError,
    Entry,
    EventLogSpanProcessor,
    InMemoryEventLog,
    load_config,
    start_activity_server,
)
from otel_eventlog.activity._json import dumps
from otel_eventlog.backends import batch_writer
from otel_eventlog.backends._waiting import Waiters
from otel_eventlog.redaction import REDACTED, Redaction
from tests.helpers import ListEventLog

WAIT = 10.0  # seconds: only ever reached when a test fails
SECRET = "hunter2"


def test_a_write_between_a_coroutine_looking_and_waiting_still_wakes_it() -> None:
    """A coroutine registers before it looks at the log, so a write in between is never missed."""
    waiters = Waiters()
    tip = {"latest": 0}

    def latest() -> int:
        if tip["latest"] == 0:  # a writer stores just as the reader looks...
            tip["latest"] = 1
            if waiters.count:  # ...and signals only if someone is registered, as writers do
                waiters.notify()
            return 0  # the reader saw the old tip
        return tip["latest"]

    started = time.monotonic()
    asyncio.run(asyncio.wait_for(waiters.wait_async(latest, 0, WAIT), WAIT / 2))
    assert time.monotonic() - started < WAIT / 2


def test_a_thread_may_wait_for_ever() -> None:
    """read(wait=math.inf) waits until an event comes, on a thread too."""
    log = InMemoryEventLog()
    timer = threading.Timer(0.05, log.append, args=("tick",))
    timer.start()
    assert log.read(since=0, wait=math.inf).events[0].kind == "tick"
    timer.join()


@dataclasses.dataclass
class Credentials:
    """A dataclass with a secret field."""

    user: str
    password: str


class Opaque:
    """An object whose text shows a secret."""

    def __str__(self) -> str:
        return f"Opaque(token={SECRET})"


def test_no_container_or_object_lets_a_secret_through() -> None:
    """Cycles, deques, sets, dataclasses, bytes and other objects never show a secret to a reader."""
    cyclic: dict[str, Any] = {"password": SECRET}
    cyclic["self"] = cyclic
    redaction = Redaction(patterns=[r"sk-\w+"])
    payload = {
        "db": cyclic,
        "queue": collections.deque([{"api_key": SECRET}]),
        "tags": {"sk-abcdef"},
        "creds": Credentials("ada", SECRET),
        "raw": b"key sk-abcdef",
        "thing": Opaque(),
        "when": 3.5,
    }
    served = dumps(redaction.apply(payload)).decode()
    assert SECRET not in served
    assert "sk-abcdef" not in served
    decoded = json.loads(served)
    assert decoded["creds"] == {"user": "ada", "password": REDACTED}
    assert decoded["thing"] == "<Opaque>"
    assert decoded["db"]["self"] == "<cycle>"
    assert decoded["when"] == 3.5


def test_a_hook_that_ends_a_span_never_deadlocks_the_application() -> None:
    """With live_interval=0, a before_append that makes a span of its own returns: no deadlock."""
    log = InMemoryEventLog()
    provider = TracerProvider()
    tracer = provider.get_tracer("t")

    def traced_hook(entry: Entry) -> Entry:
        with tracer.start_as_current_span("hook"):  # any traced call inside the hook ends a span
            pass
        return entry

    provider.add_span_processor(EventLogSpanProcessor(log, live_interval=0, before_append=traced_hook))
    done = threading.Event()

    def app() -> None:
        with tracer.start_as_current_span("turn") as span:
            span.add_event("turn.started")
        done.set()

    thread = threading.Thread(target=app, daemon=True)
    thread.start()
    assert done.wait(WAIT)
    provider.force_flush()
    assert [e.kind for e in log.query()] == ["turn.started"]
    provider.shutdown()


def test_the_queued_writer_survives_a_malformed_reference_and_flushes_under_load() -> None:
    """A bad span event reference is counted and the writer goes on; flush does not wait for newcomers."""
    log = ListEventLog()
    writer = batch_writer(log)
    writer.write_batch([(1, object(), 1, 1)])  # no name, no attributes: the thread must survive it
    writer.write_batch([Entry("after")])
    assert writer.flush(WAIT)  # type: ignore[attr-defined]
    assert [e.kind for e in log.query()] == ["after"]
    assert writer.failures == 1  # type: ignore[attr-defined]
    stop = threading.Event()

    def steady() -> None:
        while not stop.is_set():
            writer.write_batch([Entry("more")])

    feeder = threading.Thread(target=steady)
    feeder.start()
    try:
        assert writer.flush(WAIT)  # type: ignore[attr-defined]
    finally:
        stop.set()
        feeder.join()


def test_a_processor_reports_what_a_log_queue_dropped_or_failed() -> None:
    """Failures and drops in the queue of a log of the application's own show in the processor's stats."""

    class BrokenLog(ListEventLog):
        """A log whose extend always fails."""

        def extend(self, entries: Any) -> range:
            """Fail."""
            raise RuntimeError("down")

    provider = TracerProvider()
    processor = EventLogSpanProcessor(BrokenLog(), live_interval=0)
    provider.add_span_processor(processor)
    with provider.get_tracer("t").start_as_current_span("turn") as span:
        span.add_event("lost")
    assert processor.force_flush()
    assert processor.stats()["failures"] == 1
    provider.shutdown()


def test_a_long_poll_for_no_events_returns_at_once() -> None:
    """limit=0 with wait= answers at once instead of spinning for the whole wait."""
    with start_activity_server(InMemoryEventLog(), port=0) as server:
        started = time.monotonic()
        with urllib.request.urlopen(server.url + "activity?limit=0&wait=5", timeout=WAIT) as response:
            assert json.load(response)["events"] == []
        assert time.monotonic() - started < 2


@pytest.mark.parametrize("pattern", ["a{4294967296}", "(" * 5000 + ")" * 5000])
def test_patterns_the_regex_engine_rejects_are_clear_errors(pattern: str) -> None:
    """A pattern too large or too deep is a ValueError naming it, and a ConfigError with its key path."""
    with pytest.raises(ValueError, match="is not a valid regular expression"):
        Redaction(patterns=[pattern])
    with pytest.raises(ConfigError, match=r"observability\.event_log\.redact\.patterns"):
        load_config({"observability": {"event_log": {"redact": {"patterns": [pattern]}}}}, environ={})
