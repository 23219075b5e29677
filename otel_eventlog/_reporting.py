"""Reporting failures on the hot path: count every one, log the first and then at most one a minute."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from otel_eventlog import _forks


class FailureReporter:
    """Counts failures and logs them, rate-limited, with the traceback of the one being logged.

    Call `report()` from inside an ``except`` block. Thread-safe; never raises.

    Args:
        logger: Where to log.
        what: What failed, for the message, such as ``"appending a span event"``.
        interval: The least number of seconds between two log records.
        clock: A monotonic clock in seconds.
    """

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._what = what
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        _forks.track(self)
        self._count = 0
        self._unlogged = 0
        self._next_log = -float("inf")

    def _locks_held_across_fork(self) -> tuple[threading.Lock, ...]:
        return (self._lock,)

    def _after_fork_in_child(self) -> None:  # nothing to resume
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        """How many failures were reported."""
        return self._count

    def report(self) -> None:
        """Count the failure being handled and log it unless one was logged less than `interval` ago."""
        try:
            now = self._clock()
            with self._lock:
                self._count += 1
                if now < self._next_log:
                    self._unlogged += 1
                    return
                self._next_log = now + self._interval
                unlogged, self._unlogged = self._unlogged, 0
            self._logger.warning(
                "otel_eventlog: failed %s (%d failure(s) so far, %d not logged since the last report); "
                "the application is not affected",
                self._what,
                self._count,
                unlogged,
                exc_info=True,
            )
        except Exception:  # reporting must never raise into the application
            pass
