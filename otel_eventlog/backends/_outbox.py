"""`Outbox`: a bounded queue of items and the thread that sends them, for backends whose store can block.

The application's threads only queue: `Outbox.put` takes a lock for a few C-level operations and
returns. A thread of the outbox's own takes up to ``batch_items`` items at a time, oldest first, and
hands them to ``send``. When the queue is full, the oldest unsent items are dropped and counted: a live
feed wants the newest events. When ``send`` fails in a way worth retrying (the store is unreachable),
the items go back to the front of the queue and the thread waits, backing off, before it tries again;
any other failure loses that batch alone, counted.
"""

from __future__ import annotations

import collections
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from otel_eventlog import _forks
from otel_eventlog._reporting import FailureReporter

__all__ = ["Outbox"]

_logger = logging.getLogger(__name__)

Item = TypeVar("Item")

#: The first wait after a failed send, and the longest, in seconds.
_FIRST_BACKOFF = 0.05
_MAX_BACKOFF = 5.0


class Outbox(Generic[Item]):
    """A bounded queue whose items a thread of its own sends in batches, in order.

    Args:
        send: Stores a batch of items; called on the outbox's thread, one batch at a time. It is first
            called with no items, as the thread starts, to check that the store can be reached.
        name: The thread's name.
        max_items: The most items queued; beyond it the oldest are dropped, counted.
        batch_items: The most items handed to one call of `send`.
        retryable: The exceptions of `send` after which the batch is kept and retried, with backoff.
        failures: Counts and logs (rate-limited) the batches `send` fails on for good.
        outage: Called on the outbox's thread with the error, when sending starts failing in a way
            that is retried, and with ``None`` when it succeeds again.
    """

    def __init__(
        self,
        send: Callable[[list[Item]], None],
        *,
        name: str,
        max_items: int,
        batch_items: int,
        retryable: tuple[type[BaseException], ...] = (),
        failures: FailureReporter,
        outage: Callable[[BaseException | None], None] | None = None,
    ) -> None:
        self._send = send
        self._name = name
        self._max_items = max_items
        self._batch_items = batch_items
        self._retryable = retryable
        self._failures = failures
        self._outage = outage
        #: How many items were dropped because the queue was full.
        self.dropped = 0
        self._reset()
        _forks.track(self)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue: collections.deque[Item] = collections.deque()
        self._accepted = 0  # items put so far
        self._done = 0  # items sent, failed or dropped so far: always the oldest ones
        self._stopping = False
        self._idle = False  # whether the thread waits for items
        self._thread: threading.Thread | None = None

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
        """How many items wait to be sent (not counting a batch being sent)."""
        return len(self._queue)

    def put(self, items: list[Item]) -> None:
        """Queue `items`, dropping the oldest queued ones (counted) if the queue would overflow.

        Called on the application's threads: never blocks on the store, never raises.
        """
        with self._lock:
            queue = self._queue
            queue.extend(items)
            self._accepted += len(items)
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
        """Wait until the items put so far are sent (or dropped), at most `timeout` seconds.

        Items put while it waits are not waited for: a steady writer cannot hold it up. Returns
        whether they all were.
        """
        with self._changed:
            target = self._accepted
            return self._changed.wait_for(lambda: self._done >= target, max(0.0, timeout))

    def close(self, timeout: float) -> bool:
        """Send what is queued, then stop the thread, all within about `timeout` seconds.

        Returns whether everything was sent. A later `put` starts the thread again.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        sent = self.flush(timeout)
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
        return sent

    def _start(self) -> None:  # holds the lock
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def _drop(self, count: int) -> None:  # holds the lock
        for _ in range(count):
            self._queue.popleft()
        self.dropped += count
        self._done += count
        self._changed.notify_all()

    def _run(self) -> None:
        backoff = self._deliver([], 0.0)  # an empty batch: `send` checks that the store is there
        while True:
            with self._changed:
                if backoff:  # wait before retrying; a stop ends the wait
                    self._changed.wait_for(lambda: self._stopping, backoff)
                self._idle = True
                self._changed.wait_for(lambda: bool(self._queue) or self._stopping)
                self._idle = False
                if self._stopping:
                    self._thread = None
                    return
                queue = self._queue
                batch = [queue.popleft() for _ in range(min(len(queue), self._batch_items))]
            backoff = self._deliver(batch, backoff)

    def _deliver(self, batch: list[Item], backoff: float) -> float:
        """Send one batch; return how long to wait before the next (0 unless it must be retried)."""
        try:
            self._send(batch)
        except self._retryable as error:
            with self._changed:
                self._queue.extendleft(reversed(batch))  # first again, unless pushed out meanwhile
                if len(self._queue) > self._max_items:
                    self._drop(len(self._queue) - self._max_items)
            if not backoff:
                self._notify_outage(error)
            # Doubling, with jitter, so that the workers of a fleet do not all come back at once.
            return min(_MAX_BACKOFF, max(_FIRST_BACKOFF, backoff * 2)) * random.uniform(0.5, 1.0)
        except Exception:
            self._failures.report()
        if backoff:
            self._notify_outage(None)
        with self._changed:
            self._done += len(batch)
            self._changed.notify_all()
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
        """Start the child empty: what the parent queued is the parent's to send."""
        running = self._thread is not None
        self._reset()
        return self.start if running else None
