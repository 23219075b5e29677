"""Fork safety: a child forked while other threads append and move span events keeps working."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider

from otel_eventlog import (
    DisabledEventLog,
    EventLogSpanProcessor,
    InMemoryEventLog,
    _forks,
    start_activity_server,
)

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork() is not available on this platform"),
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
]

CHILD_DEADLINE = 10.0  # seconds a child may take before it counts as hung


def in_child(check: Callable[[], bool]) -> int:
    """Fork; run `check` in the child and exit 0 if it returns True, 1 if not, 2 if it raised.

    Returns the child's exit status, or -1 if it had not exited within the deadline (then it is killed).
    """
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 2
        try:
            code = 0 if check() else 1
        finally:
            os._exit(code)
    deadline = time.monotonic() + CHILD_DEADLINE
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)  # polling a child process: there is nothing to wait on
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return -1


def follow_until(log: InMemoryEventLog, cursor: int, kind: str) -> bool:
    """Follow the log from `cursor` until an event of `kind` arrives (True) or five seconds pass."""
    deadline = time.monotonic() + 5
    while (remaining := deadline - time.monotonic()) > 0:
        page = log.read(since=cursor, kinds=kind, wait=remaining)  # returns early on a gap, too
        if page.events:
            return [event.kind for event in page.events] == [kind]
        cursor = page.cursor
    return False


class Busy:
    """Threads that append to a log and end spans with events, until stopped."""

    def __init__(self, log: InMemoryEventLog, provider: TracerProvider) -> None:
        self.stop = threading.Event()
        tracer = provider.get_tracer("busy")

        def append() -> None:
            while not self.stop.is_set():
                log.append("tick", {"n": 1})

        def spans() -> None:
            while not self.stop.is_set():
                with tracer.start_as_current_span("turn") as span:
                    span.add_event("turn.started")

        self.threads = [threading.Thread(target=target) for target in (append, append, spans, spans)]
        for thread in self.threads:
            thread.start()

    def close(self) -> None:
        """Stop the threads and wait for them."""
        self.stop.set()
        for thread in self.threads:
            thread.join()


@pytest.fixture
def busy() -> Iterator[tuple[InMemoryEventLog, TracerProvider]]:
    """A log and a provider kept busy by four threads for the length of a test."""
    log = InMemoryEventLog(max_entries=100_000)
    provider = TracerProvider()
    provider.add_span_processor(EventLogSpanProcessor(log, live_interval=0.001))
    running = Busy(log, provider)
    yield log, provider
    running.close()
    provider.shutdown()


def test_fifty_forks_under_load_never_hang(busy: tuple[InMemoryEventLog, TracerProvider]) -> None:
    """Each child can append, read, wait, and sees its span events moved by its own helper thread."""
    log, provider = busy
    parent_epoch = log.epoch
    tracer = provider.get_tracer("child")

    def child() -> bool:
        assert log.epoch != parent_epoch  # a different log now: readers must start over
        first = log.append("child.started").id
        assert log.read(since=first - 1).events[0].kind == "child.started"
        with tracer.start_as_current_span("child") as span:  # open: only the helper can move it
            span.add_event("child.event")
            return follow_until(log, first, "child.event")

    statuses = [in_child(child) for _ in range(50)]
    assert statuses == [0] * 50


def test_a_child_leaves_the_activity_server_to_its_parent(caplog: pytest.LogCaptureFixture) -> None:
    """In a child, the parent's server closes at once and says the feed it serves is the parent's."""
    log = InMemoryEventLog()
    with start_activity_server(log, port=0) as server:

        def child() -> bool:
            started = time.monotonic()
            server.close()
            return time.monotonic() - started < 1

        assert in_child(child) == 0
        log.append("still served")
        import urllib.request

        with urllib.request.urlopen(server.url + "activity", timeout=10) as response:
            assert b"still served" in response.read()


def test_a_forked_disabled_log_keeps_counting_with_a_new_epoch() -> None:
    """The disabled log's child has a working lock, its own epoch, and its ids go on."""
    log = DisabledEventLog()
    log.append("before")
    epoch = log.epoch

    def child() -> bool:
        return log.epoch != epoch and log.append("after").id == 2

    assert in_child(child) == 0


class Stubborn:
    """An owner whose fork hooks fail: a fork must go on regardless."""

    def _locks_held_across_fork(self) -> tuple[threading.Lock, ...]:
        raise RuntimeError("no")

    def _after_fork_in_child(self) -> Callable[[], None] | None:
        raise RuntimeError("no")


class Held:
    """An owner whose lock another thread holds through the fork, and whose resumption fails."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()

    def _locks_held_across_fork(self) -> tuple[threading.Lock, ...]:
        return (self.lock,)

    def _after_fork_in_child(self) -> Callable[[], None] | None:
        def resume() -> None:
            raise RuntimeError("no")

        return resume


def test_a_failing_owner_never_stops_a_fork() -> None:
    """Owners whose hooks raise, or whose lock stays held, are passed over; the fork and the others go on."""
    owners = [Stubborn(), Held()]
    for owner in owners:
        _forks.track(owner)
    log = InMemoryEventLog()
    assert in_child(lambda: log.append("x").id == 1) == 0


def test_a_child_can_redact_though_a_thread_held_the_redaction_lock_at_fork() -> None:
    """The redaction counter's lock is replaced in the child, so a redacting read never hangs there."""
    from otel_eventlog import redaction

    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with redaction.DEFAULT._lock:
            held.set()
            release.wait(CHILD_DEADLINE)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(CHILD_DEADLINE)
    try:
        assert in_child(lambda: redaction.DEFAULT.apply({"password": "p"}) == {"password": "[redacted]"}) == 0
    finally:
        release.set()
        thread.join()
