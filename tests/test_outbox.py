"""The bounded queue behind backends that write off the application's thread: order, drops, retries, forks."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import pytest

from otel_eventlog._reporting import FailureReporter
from otel_eventlog.backends import _outbox
from otel_eventlog.backends._outbox import Batch, Outbox

WAIT = 10.0  # seconds: only ever reached when a test fails


class Unreachable(ConnectionError):
    """The store cannot be reached: worth retrying."""


class Store:
    """A store a test controls: it records batches of items, and fails them while told to."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.numbers: list[int] = []  # of every batch sent, stored or not
        self.failing: Exception | None = None
        self.calls = 0
        self.called = threading.Condition()

    def send(self, batch: Batch[int]) -> None:
        """Record the batch, or raise what the test set; the check at start (no items) goes through."""
        with self.called:
            self.calls += 1
            self.called.notify_all()
        if not batch.items:
            return
        self.numbers.append(batch.number)
        if self.failing is not None:
            raise self.failing
        self.batches.append(batch.items)

    def wait_for_calls(self, calls: int) -> None:
        """Block until `send` was called `calls` times."""
        with self.called:
            assert self.called.wait_for(lambda: self.calls >= calls, WAIT)

    @property
    def items(self) -> list[int]:
        """Every item stored, in order."""
        return [item for batch in self.batches for item in batch]


def sent(box: Outbox[int]) -> None:
    """Wait until everything put is sent, through an outage: flush returns at once while one lasts."""
    deadline = time.monotonic() + WAIT
    while not box.flush(0.05):
        assert time.monotonic() < deadline, "never sent"


def outbox(
    store: Store,
    outage: Callable[[BaseException | None], None] | None = None,
    *,
    send: Callable[[Batch[int]], None] | None = None,
    retryable: tuple[type[BaseException], ...] = (Unreachable,),
    hangs: tuple[type[BaseException], ...] = (),
    **kwargs: int,
) -> Outbox[int]:
    """An outbox sending to `store` (or through `send`), 100 items and batches of 10 unless told."""
    options = {"max_items": 100, "batch_items": 10, **kwargs}
    return Outbox(
        store.send if send is None else send,
        name="test-outbox",
        retryable=retryable,
        hangs=hangs,
        failures=FailureReporter(logging.getLogger("tests.outbox"), "sending"),
        outage=outage,
        **options,
    )


def test_items_are_sent_in_order_in_batches_of_at_most_batch_items() -> None:
    """What is put goes out oldest first, each item once, no batch larger than batch_items."""
    store = Store()
    box = outbox(store, batch_items=7)
    for start in range(0, 50, 5):
        box.put(list(range(start, start + 5)))
    assert box.flush(WAIT)
    assert store.items == list(range(50))
    assert max(len(batch) for batch in store.batches) <= 7
    box.close(WAIT)


def test_an_unreachable_store_keeps_the_items_and_retries_until_it_is_back() -> None:
    """A retryable failure puts the batch back first; the outage is reported once, and its end once."""
    store, outages = Store(), []
    store.failing = Unreachable("down")
    box = outbox(store, outages.append)
    box.start()
    box.put([1, 2, 3])
    store.wait_for_calls(3)  # the check at start, the batch, and the same batch again
    assert not box.flush(0)
    store.failing = None
    sent(box)
    assert store.items == [1, 2, 3]
    assert len(set(store.numbers)) == 1  # sent again under its own number: a store can tell
    assert [type(error) for error in outages] == [Unreachable, type(None)]
    assert box.dropped == 0
    box.close(WAIT)


def test_a_full_queue_drops_its_oldest_items_and_counts_them() -> None:
    """While a batch waits to be sent again, the queue keeps the newest max_items, counting the rest."""
    store = Store()
    store.failing = Unreachable("down")
    box = outbox(store, max_items=3, batch_items=3)
    box.put([0, 1, 2])
    store.wait_for_calls(2)  # the check at start, and the batch: it failed, and waits to go again
    box.put([3, 4, 5, 6, 7])
    store.failing = None
    assert box.flush(WAIT)
    assert (store.items, box.dropped) == ([0, 1, 2, 5, 6, 7], 2)
    box.close(WAIT)


def test_flush_waits_for_the_batch_being_sent_even_when_newer_items_are_dropped() -> None:
    """Dropping newer items never makes flush report an older batch as sent."""
    store, release = Store(), threading.Event()
    sending = threading.Event()

    def send(batch: Batch[int]) -> None:
        if batch.items and not release.is_set():
            sending.set()
            release.wait(WAIT)
        store.send(batch)

    box = outbox(store, send=send, max_items=2, batch_items=5)
    box.put([0, 1])
    assert sending.wait(WAIT)  # the first batch is out
    box.put([2, 3, 4, 5])  # overflows: 2 and 3 are dropped
    assert not box.flush(0.05)
    release.set()
    assert box.flush(WAIT)
    assert (store.items, box.dropped) == ([0, 1, 4, 5], 2)
    box.close(WAIT)


def test_a_flush_gives_up_at_the_first_failed_send_instead_of_waiting_out_its_time() -> None:
    """At exit the processors flush one after another: none waits out its time on a failing store."""
    store = Store()
    store.failing = Unreachable("down")
    box = outbox(store)
    box.put([1])
    started = time.monotonic()
    assert not box.flush(WAIT)
    assert not box.flush(WAIT)
    assert time.monotonic() - started < WAIT / 2  # neither waited out its time
    store.failing = None
    sent(box)
    assert store.items == [1]
    box.close(WAIT)


def test_a_flush_during_an_outage_has_the_batch_sent_again_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A store that is back is written by the next flush, not after the thread's backoff runs out."""
    for name in ("_FIRST_BACKOFF", "_MAX_BACKOFF"):  # no retry of its own during the test
        monkeypatch.setattr(_outbox, name, WAIT * 10)
    store = Store()
    store.failing = Unreachable("down")
    box = outbox(store)
    box.put([1])
    store.wait_for_calls(2)  # the check at start, and the batch: it failed, and waits to go again
    store.failing = None
    assert box.flush(WAIT)
    assert store.items == [1]
    box.close(WAIT)


class Hang(TimeoutError):
    """The store did not answer in time."""


def test_after_a_send_timed_out_flushes_return_at_once_until_one_goes_through() -> None:
    """Waiting on a store that does not answer would add a timeout per flush: they return at once."""
    store = Store()
    store.failing = Hang("no answer")
    box = outbox(store, retryable=(Unreachable, Hang), hangs=(Hang,))
    box.put([1])
    assert not box.flush(WAIT)  # the first waits for the send, which times out
    assert box.hung
    started = time.monotonic()
    assert not box.flush(WAIT)
    assert time.monotonic() - started < WAIT / 2
    store.failing = None
    sent(box)
    assert not box.hung
    assert store.items == [1]
    box.close(WAIT)


def test_close_does_not_wait_for_a_send_the_store_does_not_answer() -> None:
    """A send stuck in the store keeps neither `close` nor the interpreter waiting."""
    store, release = Store(), threading.Event()

    def send(batch: Batch[int]) -> None:
        if batch.items:
            release.wait(WAIT)
        store.send(batch)

    box = outbox(store, send=send)
    box.put([1])
    started = time.monotonic()
    assert not box.close(0.05)
    assert time.monotonic() - started < WAIT / 2
    release.set()
    assert box.flush(WAIT)
    assert store.items == [1]
    box.close(WAIT)


def test_a_batch_weighs_at_most_batch_weight_and_one_heavy_item_goes_alone() -> None:
    """Items are batched up to batch_weight, in order; an item heavier than that is a batch of its own."""
    store = Store()
    box = outbox(store, max_weight=1000, batch_weight=10)
    box.put([0, 1, 2, 3, 4], [4, 4, 4, 20, 1])
    assert box.flush(WAIT)
    assert store.batches == [[0, 1], [2], [3], [4]]
    box.close(WAIT)


def test_a_batch_the_store_refuses_for_good_is_counted_and_the_rest_go_on() -> None:
    """A failure not worth retrying loses that batch alone, counted; the next batch is sent."""
    store = Store()
    box = outbox(store)
    store.failing = ValueError("refused")
    box.put([1])
    assert box.flush(WAIT)
    store.failing = None
    box.put([2])
    assert box.flush(WAIT)
    assert (store.items, box.failures) == ([2], 1)
    box.close(WAIT)


def test_an_outage_report_that_fails_does_not_stop_the_sending() -> None:
    """A broken outage callback is logged at debug level and the items still go out."""
    store = Store()
    store.failing = Unreachable("down")

    def broken(error: BaseException | None) -> None:
        raise RuntimeError("the report failed")

    box = outbox(store, broken)
    box.put([1])
    store.wait_for_calls(2)
    store.failing = None
    assert box.flush(WAIT)
    assert store.items == [1]
    box.close(WAIT)


def test_close_stops_the_thread_and_a_later_put_starts_it_again() -> None:
    """After close, the outbox still takes items: the next put starts a new thread."""
    store = Store()
    box = outbox(store)
    box.start()
    box.start()  # already running: nothing more
    assert box.close(WAIT)
    box.put([1])
    assert box.flush(WAIT)
    assert store.items == [1]
    assert box.close(WAIT)
    assert box.close(WAIT)  # no thread left to stop


def test_what_a_close_could_not_send_is_sent_by_a_later_flush() -> None:
    """A close that times out keeps the batch it could not send; flush sends it, under its number."""
    store = Store()
    store.failing = Unreachable("down")
    box = outbox(store)
    box.put([1, 2])
    store.wait_for_calls(2)
    assert not box.close(0.05)
    store.failing = None
    sent(box)
    assert store.items == [1, 2]
    assert len(set(store.numbers)) == 1
    box.close(WAIT)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_starts_empty_with_a_thread_of_its_own() -> None:
    """The child does not send the parent's queue; what it puts itself goes out from its own thread."""
    store = Store()
    store.failing = Unreachable("down")
    box = outbox(store)
    box.put([1, 2])
    store.wait_for_calls(2)
    idle = outbox(Store())  # never started: stays so in the child
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover  # the child reports through the pipe
        store.failing = None
        store.batches.clear()
        box.put([3])
        ok = box.flush(WAIT) and store.items == [3] and idle.queued == 0
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(pid, 0)
    os.close(read)
    store.failing = None
    assert box.flush(WAIT)
    assert store.items == [1, 2]
    box.close(WAIT)


def test_a_queue_with_a_max_weight_keeps_the_newest_items_within_it() -> None:
    """Given what each item weighs, the queue drops its oldest items (counted) to stay within max_weight."""
    store = Store()
    store.failing = Unreachable("down")
    box = outbox(store, max_items=100, batch_items=2, max_weight=10)
    box.put([0, 1], [1, 1])
    store.wait_for_calls(2)  # the check at start, and the batch of 0 and 1: out of the queue, retried
    box.put([2, 3, 4], [4, 4, 4])
    box.put([5], [5])  # 4 + 5 fits 10; 4 + 4 + 5 does not
    assert (box.dropped, box.queued) == (2, 4)  # 2 and 3 dropped; 4, 5 queued, and 0, 1 in flight
    store.failing = None
    assert box.flush(WAIT)
    assert store.items == [0, 1, 4, 5]
    box.close(WAIT)
