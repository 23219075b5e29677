"""Regression tests: races, leaks and hangs found in review, each pinned by the scenario that showed it."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
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
from otel_eventlog._json import dumps
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
    asyncio.run(asyncio.wait_for(waiters.wait_async(lambda: latest() > 0, WAIT), WAIT / 2))
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


@dataclasses.dataclass(eq=False)
class Node:
    """A node of a doubly linked list: every neighbour reachable two ways."""

    name: str
    prev: Node | None = None
    next: Node | None = None
    secret: str = dataclasses.field(init=False)


def test_linked_and_shared_values_are_searched_once_each() -> None:
    """A doubly linked list of dataclasses and a deep chain of shared dicts redact at once, loops marked."""
    nodes = [Node(f"n{i}") for i in range(30)]
    for left, right in itertools.pairwise(nodes):
        left.next, right.prev = right, left
    shared: dict[str, Any] = {"password": SECRET}
    for _ in range(60):  # 2**60 paths to the secret, 60 containers
        shared = {"a": shared, "b": shared}
    started = time.monotonic()
    written = dumps(Redaction().apply({"tree": shared}))  # 2**60 paths: cut short, not written out
    assert time.monotonic() - started < 2
    assert b"<too large>" in written
    assert SECRET.encode() not in written
    started = time.monotonic()
    served = dumps(Redaction().apply({"list": nodes[0]})).decode()
    assert time.monotonic() - started < 2
    assert SECRET not in served
    assert '"prev":"<cycle>"' in served
    assert '"secret":"[redacted]"' in served  # a field never set is no error, and its name is sensitive


def test_numbers_paths_and_addresses_of_any_kind_are_shown_as_they_are() -> None:
    """Subclasses of plain types and other self-describing values are not mistaken for opaque objects."""
    import fractions
    import ipaddress
    import pathlib

    class Ratio(float):
        """A float of the application's own, as numpy's float64 is."""

    payload = {
        "ratio": Ratio(0.5),
        "fraction": fractions.Fraction(1, 3),
        "path": pathlib.Path("/tmp/x"),
        "address": ipaddress.ip_address("10.0.0.1"),
    }
    assert Redaction().apply(payload) is payload


def test_a_span_that_ends_during_a_flush_is_moved_by_it() -> None:
    """With live_interval=0, a span ending while force_flush moves is moved before force_flush returns."""
    entered, gate = threading.Event(), threading.Event()

    class GatedLog(InMemoryEventLog):
        """A log whose first batch waits for the test."""

        def write_batch(self, batch: list[Any]) -> None:
            """Hold the first batch until the gate opens."""
            if not entered.is_set():
                entered.set()
                gate.wait(WAIT)
            super().write_batch(batch)

    log = GatedLog()
    provider = TracerProvider()
    processor = EventLogSpanProcessor(log, live_interval=0)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("open") as span:
        span.add_event("first")
        flusher = threading.Thread(target=processor.force_flush)
        flusher.start()
        assert entered.wait(WAIT)  # force_flush is moving, and holds the move
        with tracer.start_as_current_span("turn") as turn:
            turn.add_event("last")  # it ends now, during that move
        gate.set()
        flusher.join(WAIT)
        assert "last" in [e.kind for e in log.query()]
    provider.shutdown()


def test_one_bad_item_costs_only_itself_in_a_queued_batch() -> None:
    """In a batch for a log of the application's own, the good items around a bad one are stored."""
    log = ListEventLog()
    writer = batch_writer(log)
    writer.write_batch([Entry("good"), (1, object(), 1, 1), Entry("also good")])
    assert writer.flush(WAIT)  # type: ignore[attr-defined]
    assert [e.kind for e in log.query()] == ["good", "also good"]


def test_very_long_waits_on_threads_are_for_ever() -> None:
    """A wait longer than the platform's timeout limit is taken as waiting for ever, not an error."""
    log = InMemoryEventLog()
    timer = threading.Timer(0.05, log.append, args=("tick",))
    timer.start()
    assert log.read(since=0, wait=1e10).events[0].kind == "tick"
    timer.join()
