"""Keeping the library's locks and threads working across ``os.fork()``.

Pre-fork servers (gunicorn ``--preload``, ``opentelemetry-instrument gunicorn``, multiprocessing's fork
start method) fork a process whose other threads may hold a lock at that moment; in the child, that lock
stays held for ever and the next call that takes it hangs. Each object that owns locks or threads
registers with `track`: just before a fork, the forking thread takes the object's locks, so that the
child gets its state whole, not half-changed; just after, the parent lets them go and the child builds
new ones through the object's ``_after_fork_in_child``. Threads restart only once every object has
new locks, so that no new thread can block on a lock the child copied held.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Protocol

__all__ = ["ForkAware", "track"]

_logger = logging.getLogger(__name__)

#: The longest the forking thread waits for one lock before forking without it.
_LOCK_WAIT = 1.0


class ForkAware(Protocol):
    """An object that keeps working in a forked child."""

    def _locks_held_across_fork(self) -> tuple[threading.Lock, ...]:
        """The locks to take just before a fork, so that the child gets a consistent copy."""
        ...

    def _after_fork_in_child(self) -> Callable[[], None] | None:
        """Replace the locks (the child's copies may be held) and take a new identity.

        Returns what to run once every tracked object has done so, such as restarting a thread.
        """
        ...


# The owners, in the order their locks are taken before a fork: the order in which the library's own
# threads take them (a span processor's move lock, then the locks a move takes), so that the forking
# thread never waits for a lock whose holder waits for one the forking thread took.
_tracked: tuple[weakref.WeakSet[ForkAware], weakref.WeakSet[ForkAware]] = (
    weakref.WeakSet(),
    weakref.WeakSet(),
)
_held: list[threading.Lock] = []


def track(owner: ForkAware, *, first: bool = False) -> None:
    """Keep `owner` working across forks for as long as it lives.

    Args:
        owner: The object.
        first: Take its locks before those of the others: it holds them while it takes theirs.
    """
    _tracked[0 if first else 1].add(owner)


def _owners() -> list[ForkAware]:
    return [*_tracked[0], *_tracked[1]]


def _before() -> None:
    for owner in _owners():
        try:
            for lock in owner._locks_held_across_fork():
                if lock.acquire(timeout=_LOCK_WAIT):
                    _held.append(lock)
        except Exception:  # a fork must never fail because of this library
            _logger.debug("otel_eventlog: could not prepare %r for a fork", owner, exc_info=True)


def _after_in_parent() -> None:
    while _held:
        _held.pop().release()


def _after_in_child() -> None:
    _held.clear()  # the child's copies are replaced below, held or not
    resumes = []
    for owner in _owners():
        try:
            resume = owner._after_fork_in_child()
        except Exception:  # the child must start, whatever this library's state
            _logger.warning("otel_eventlog: could not restore %r after a fork", owner, exc_info=True)
        else:
            if resume is not None:
                resumes.append(resume)
    for resume in resumes:
        try:
            resume()
        except Exception:
            _logger.warning("otel_eventlog: could not resume %r after a fork", resume, exc_info=True)


os.register_at_fork(before=_before, after_in_parent=_after_in_parent, after_in_child=_after_in_child)
