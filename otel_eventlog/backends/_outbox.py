"""`Outbox`: a bounded queue of items and the thread that sends them, for backends whose store can block.

The application's threads only queue: `Outbox.put` takes a lock for a few C-level operations and
returns. A thread of the outbox's own takes up to ``batch_items`` items at a time, oldest first, and
hands them to ``send`` as a numbered `Batch`. When the queue is full, the oldest queued items are
dropped and counted: a live feed wants the newest events. When ``send`` fails in a way worth retrying
(the store is unreachable, or did not answer in time), the thread waits, backing off, and sends the
*same* batch again, number and all, so that a store that did take it the first time can tell and not
take it twice; meanwhile new items wait in the queue. Any other failure loses that batch alone, counted.
"""

from __future__ import annotations

import collections
import logging
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
#: How long `close` waits for the thread to stop, at least.
_STOP_GRACE = 1.0


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
        retryable: The exceptions of `send` after which the batch is sent again, after a backoff.
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
        retryable: tuple[type[BaseException], ...] = (),
        failures: FailureReporter,
        outage: Callable[[BaseException | None], None] | None = None,
    ) -> None:
        self._send = send
        self._name = name
        self._max_items = max_items
        self._max_weight = max_weight
        self._batch_items = batch_items
        self._retryable = retryable
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
        self._failing = False  # whether the last send failed in a way that is retried
        # Whether a flush ran out of time while sending failed, with no send gone through since:
        # the next flushes return at once instead of each waiting out its time (at exit, the
        # processors and the logging handler flush one after another).
        self._stalled = False
        self._batches = 0
        self._stopping = False
        self._idle = False  # whether the thread waits for items
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
        whether they all were. Once a flush ran out of time while the store was failing, later ones
        return at once, until a send goes through again.
        """
        with self._changed:
            target = self._accepted
            if self._queue or self._sending is not None:  # perhaps left by a `close` that timed out
                self._stopping = False
                if self._thread is None:
                    self._start()
            if self._stalled and self._failing:
                return self._done_before(target)
            seconds = None if timeout >= threading.TIMEOUT_MAX else max(0.0, timeout)  # inf: for ever
            done = self._changed.wait_for(lambda: self._done_before(target), seconds)
            self._stalled = not done and self._failing
            return done

    def _done_before(self, target: int) -> bool:  # holds the lock
        """Whether every item numbered below `target` is out of the queue and not being sent."""
        sending = self._sending is not None and self._sending < target
        return not sending and (not self._queue or self._accepted - len(self._queue) >= target)

    def close(self, timeout: float) -> bool:
        """Send what is queued, within `timeout` seconds, then stop the thread (within a second more).

        Returns whether everything was sent. What was not stays, for a later `put` or `flush`,
        which start the thread again.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        sent = self.flush(timeout)
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            # A thread between two sends stops at once; only one stuck in a send outlasts the grace.
            thread.join(max(_STOP_GRACE, deadline - time.monotonic()))
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
                if backoff:  # wait before sending the same batch again; a stop ends the wait
                    self._changed.wait_for(lambda: self._stopping, backoff)
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
                    count = min(len(queue), self._batch_items)
                    batch = Batch(self._batches, [queue.popleft() for _ in range(count)])
                    self._in_flight = count
                    weights = self._weights
                    for _ in range(min(count, len(weights))):
                        self._weight -= weights.popleft()
            backoff = self._deliver(batch, backoff)
            with self._changed:
                self._failing = bool(backoff)
                if not backoff:
                    batch = None
                    self._sending = None
                    self._in_flight = 0
                    self._stalled = False
                    self._changed.notify_all()

    def _deliver(self, batch: Batch[Item], backoff: float) -> float:
        """Send one batch; return how long to wait before sending it again (0: it is done with)."""
        try:
            self._send(batch)
        except self._retryable as error:
            if not backoff:
                self._notify_outage(error)
            # Doubling, with jitter, so that the workers of a fleet do not all come back at once.
            return min(_MAX_BACKOFF, max(_FIRST_BACKOFF, backoff * 2)) * _JITTER.uniform(0.5, 1.0)
        except Exception:
            self._failures.report()
        if backoff:
            self._notify_outage(None)
        return 0.0

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
