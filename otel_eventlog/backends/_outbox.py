"""`Outbox`: a bounded queue of items and the thread that sends them, for backends whose store can block.

The application's threads only queue: `Outbox.put` takes a lock for a few C-level operations and
returns. A thread of the outbox's own takes up to ``batch_items`` items at a time, oldest first, and
hands them to ``send`` as a numbered `Batch`. When the queue is full, the oldest queued items are
dropped and counted: a live feed wants the newest events. When ``send`` fails in a way worth retrying
(the store is unreachable, or did not answer in time), the thread waits, backing off, and sends the
*same* batch again, number and all, so that a store that did take it the first time can tell and not
take it twice; meanwhile new items wait in the queue. Any other failure loses that batch alone, counted.

`Outbox.flush` waits for what was queued before it, and gives up as soon as a send fails: it never
waits out its whole time while the store is failing (at exit, the processors and the logging handler
flush one after another, and each would wait again). While the store fails fast (it refuses the
connection, or answers with an error), a flush asks the thread to try again at once, without its
backoff, and waits for that one send: a store that is back is written at once. Once a send timed out
(the store does not answer), a flush waits half a second for a send to go through, and only one
flush waits so for each send: waiting on a store that does not answer would otherwise add a timeout
per flush.
"""

from __future__ import annotations

import collections
import itertools
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from otel_eventlog import _forks
from otel_eventlog._reporting import FailureReporter

__all__ = ["Batch", "Outbox"]

_logger = logging.getLogger(__name__)

Item = TypeVar("Item")

#: The first wait after a failed send, and the longest, in seconds.
_FIRST_BACKOFF = 0.05
_MAX_BACKOFF = 5.0
# The jitter's own generator: the application's use of the `random` module's state is its own.
_JITTER = random.Random()
#: How long `close` waits for a thread between two sends to stop.
_STOP_GRACE = 1.0
#: How long a flush waits for a store whose last send timed out to answer one: a store that is back
#: answers within milliseconds; one that is not would keep it for a whole timeout.
_ANSWER_GRACE = 0.5


@dataclass(frozen=True)
class Batch(Generic[Item]):
    """Items to send together, in order.

    Attributes:
        number: Counts the outbox's batches from 1; a batch sent again keeps its number. 0 is the
            empty batch the thread sends as it starts, to check that the store can be reached.
        items: The items, oldest first.
    """

    number: int
    items: list[Item]


class Outbox(Generic[Item]):
    """A bounded queue whose items a thread of its own sends in batches, in order.

    Args:
        send: Stores a batch; called on the outbox's thread, one batch at a time.
        name: The thread's name.
        max_items: The most items queued (besides a batch being sent); beyond, the oldest are dropped.
        max_weight: The most the queued items may weigh together (as `put` is told each one weighs,
            in bytes, say); beyond, the oldest are dropped. ``None``: no limit but `max_items`.
        batch_items: The most items in one batch.
        batch_weight: The most the items of one batch may weigh together (one item alone may weigh
            more); ``None``: no limit but `batch_items`.
        retryable: The exceptions of `send` after which the batch is sent again, after a backoff.
        hangs: Those of `retryable` that mean the store did not answer in time.
        failures: Counts and logs (rate-limited) the batches `send` fails on for good.
        outage: Called on the outbox's thread with the error, when sending starts failing in a way
            that is retried, and with ``None`` when it succeeds again.
    """

    def __init__(
        self,
        send: Callable[[Batch[Item]], None],
        *,
        name: str,
        max_items: int,
        max_weight: int | None = None,
        batch_items: int,
        batch_weight: int | None = None,
        retryable: tuple[type[BaseException], ...] = (),
        hangs: tuple[type[BaseException], ...] = (),
        failures: FailureReporter,
        outage: Callable[[BaseException | None], None] | None = None,
    ) -> None:
        self._send = send
        self._name = name
        self._max_items = max_items
        self._max_weight = max_weight
        self._batch_items = batch_items
        self._batch_weight = batch_weight
        self._retryable = retryable
        self._hangs = hangs
        self._failures = failures
        self._outage = outage
        self._reset()
        _forks.track(self)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue: collections.deque[Item] = collections.deque()
        # What each queued item weighs, in the same order, and all of them together (with a max_weight).
        self._weights: collections.deque[int] = collections.deque()
        self._weight = 0
        # Each item is numbered in the order it was put, from 0: the queue holds the items numbered
        # from `_accepted - len(_queue)` to `_accepted`, and the batch being sent those from
        # `_sending` (None when no batch is out).
        self._accepted = 0
        self._sending: int | None = None
        self._pending: Batch[Item] | None = None  # a batch to send again, left by a thread that stopped
        self._in_flight = 0  # the items of the batch being sent, or left to send again
        # What the last send failed with, in a way that is retried; None once one went through.
        self._last_error: BaseException | None = None
        self._failed_sends = 0  # sends failed in a way that is retried, so far
        self._sends = 0  # sends begun, so far
        self._abandoned = -1  # the last send a flush stopped waiting for, the store not answering
        self._retry_now = False  # a flush asks the thread to end its backoff
        self._batches = 0
        self._stopping = False
        self._idle = False  # whether the thread waits for items
        self._busy = False  # whether the thread is in a send
        self._thread: threading.Thread | None = None
        #: How many items were dropped because the queue was full.
        self.dropped = 0

    @property
    def max_items(self) -> int:
        """The most items queued."""
        return self._max_items

    @property
    def failures(self) -> int:
        """How many batches `send` failed on for good."""
        return self._failures.count

    @property
    def queued(self) -> int:
        """How many items are not sent yet: those queued, and those of a batch being sent."""
        return len(self._queue) + self._in_flight

    @property
    def last_error(self) -> BaseException | None:
        """The error the last send failed with, in a way that is retried; None once one went through."""
        return self._last_error

    @property
    def failing(self) -> bool:
        """Whether the last send failed in a way that is retried, and none went through since."""
        return self._last_error is not None

    @property
    def hung(self) -> bool:
        """Whether the last send failed by not being answered in time, and none went through since."""
        return isinstance(self._last_error, self._hangs)

    def put(self, items: list[Item], weights: list[int] | None = None) -> None:
        """Queue `items`, dropping the oldest queued ones (counted) if the queue would overflow.

        `weights` says what each item weighs, when the outbox has a `max_weight`. Called on the
        application's threads: never blocks on the store, never raises.
        """
        with self._lock:
            queue = self._queue
            queue.extend(items)
            self._accepted += len(items)
            if self._max_weight is not None:
                weights = [0] * len(items) if weights is None else weights
                self._weights.extend(weights)
                self._weight += sum(weights)
                while self._weight > self._max_weight and len(queue) > 1:  # the newest always stays
                    self._drop(1)
            if len(queue) > self._max_items:
                self._drop(len(queue) - self._max_items)
            self._stopping = False  # a put after `close` keeps the thread, or starts a new one
            if self._thread is None:
                self._start()
            if self._idle:  # a busy thread finds the items when it comes back: no call to wake it
                self._changed.notify()

    def start(self) -> None:
        """Start the thread now, if it is not running. Thread-safe."""
        with self._lock:
            if self._thread is None:
                self._start()

    def flush(self, timeout: float) -> bool:
        """Wait until the items put so far are sent (or dropped, or failed), at most `timeout` seconds.

        Items put while it waits are not waited for: a steady writer cannot hold it up. Returns
        whether they all were; False as soon as a send fails meanwhile. While the store fails, the
        thread is asked to try again at once; after a send that timed out, a flush waits at most
        `_ANSWER_GRACE` for one to go through, and returns at once if another flush already did so
        for the same send.
        """
        with self._changed:
            target = self._accepted
            if self._queue or self._sending is not None:  # perhaps left by a `close` that timed out
                self._stopping = False
                if self._thread is None:
                    self._start()
            if self._done_before(target):
                return True
            if self._last_error is not None:
                self._retry_now = True  # a store that is back is written now, not after the backoff
                self._changed.notify_all()
            forever = timeout >= threading.TIMEOUT_MAX  # inf, say
            deadline = time.monotonic() + max(0.0, timeout) if not forever else math.inf
            if self.hung:
                if self._abandoned == self._sends:  # an earlier flush waited for this send already
                    return False
                grace = min(max(0.0, timeout), _ANSWER_GRACE)
                self._changed.wait_for(lambda: self._done_before(target) or not self.hung, grace)
                if self.hung:
                    self._abandoned = self._sends
                    return self._done_before(target)
            failed = self._failed_sends
            self._changed.wait_for(
                lambda: self._done_before(target) or self._failed_sends != failed,
                None if forever else max(0.0, deadline - time.monotonic()),
            )
            return self._done_before(target)

    def _done_before(self, target: int) -> bool:  # holds the lock
        """Whether every item numbered below `target` is out of the queue and not being sent."""
        sending = self._sending is not None and self._sending < target
        return not sending and (not self._queue or self._accepted - len(self._queue) >= target)

    def close(self, timeout: float) -> bool:
        """Send what is queued, within `timeout` seconds (less if a send fails), then stop the thread.

        Returns whether everything was sent. What was not stays, for a later `put` or `flush`,
        which start the thread again.
        """
        sent = self.flush(timeout)
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
            thread = self._thread
        if thread is not None and (sent or not self._busy) and thread is not threading.current_thread():
            # Between two sends, it stops at once; one in a send that failed is not waited for.
            thread.join(_STOP_GRACE)
        return sent

    def _start(self) -> None:  # holds the lock
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def _drop(self, count: int) -> None:  # holds the lock
        for _ in range(count):
            self._queue.popleft()
            if self._weights:
                self._weight -= self._weights.popleft()
        self.dropped += count
        self._changed.notify_all()

    def _run(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, None
        if batch is None:
            batch = Batch(0, [])  # first, check that the store is there
        backoff = 0.0
        while True:
            with self._changed:
                if backoff:  # wait before sending the same batch again; a stop, or a flush, ends it
                    self._changed.wait_for(lambda: self._stopping or self._retry_now, backoff)
                    self._retry_now = False
                if batch is None:
                    self._idle = True
                    self._changed.wait_for(lambda: bool(self._queue) or self._stopping)
                    self._idle = False
                if self._stopping:
                    if batch is not None and batch.items:  # for the next thread to send again
                        self._pending = batch
                    self._thread = None
                    return
                if batch is None:
                    queue = self._queue
                    self._sending = self._accepted - len(queue)
                    self._batches += 1
                    count = self._batch_count()
                    batch = Batch(self._batches, [queue.popleft() for _ in range(count)])
                    self._in_flight = count
                    weights = self._weights
                    for _ in range(min(count, len(weights))):
                        self._weight -= weights.popleft()
                self._sends += 1
            was_failing = self._last_error is not None
            self._busy = True
            error = self._deliver(batch)
            with self._changed:
                self._busy = False
                self._last_error = error
                if error is None:
                    backoff = 0.0
                    batch = None
                    self._sending = None
                    self._in_flight = 0
                else:
                    self._failed_sends += 1
                    # Doubling, with jitter, so that the workers of a fleet do not all come back at once.
                    backoff = min(_MAX_BACKOFF, max(_FIRST_BACKOFF, backoff * 2)) * _JITTER.uniform(0.5, 1.0)
                self._changed.notify_all()
            if was_failing != (error is not None):  # told once the state says so: a flush then agrees
                self._notify_outage(error)

    def _batch_count(self) -> int:  # holds the lock
        """How many of the oldest items the next batch takes: at most `batch_items`, and `batch_weight`."""
        count = min(len(self._queue), self._batch_items)
        if self._batch_weight is None or not self._weights:
            return count
        weight = 0
        for taken, item_weight in enumerate(itertools.islice(self._weights, count)):
            weight += item_weight
            if weight > self._batch_weight and taken:  # one item alone goes, however heavy
                return taken
        return count

    def _deliver(self, batch: Batch[Item]) -> BaseException | None:
        """Send one batch; return the error to send it again after, or None when it is done with."""
        try:
            self._send(batch)
        except self._retryable as error:
            return error
        except Exception:
            self._failures.report()
        return None

    def _notify_outage(self, error: BaseException | None) -> None:
        if self._outage is not None:
            try:
                self._outage(error)
            except Exception:  # reporting must not stop the sending
                _logger.debug("otel_eventlog: reporting an outage failed", exc_info=True)

    def _locks_held_across_fork(self) -> tuple[threading.Lock, ...]:
        return (self._lock,)

    def _after_fork_in_child(self) -> Callable[[], None] | None:
        """Start the child empty, its counters at 0: what the parent queued is the parent's to send."""
        running = self._thread is not None
        self._reset()
        return self.start if running else None
