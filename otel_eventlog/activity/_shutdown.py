"""Ending the ASGI app's streams and long-polls when the server is asked to stop.

An ASGI server learns that it should stop from a signal (SIGINT, SIGTERM), then waits for the open
responses to end before it sends ``lifespan.shutdown``: the app is told nothing while a stream it
serves would run for ever, and uvicorn waits ("Waiting for connections to close") until it is killed.
So, as sse-starlette does, the app puts a handler of its own in front of the server's for those signals,
when a response that waits starts on the main thread: it wakes every waiting response, which ends at
once, then hands the signal to the handler that was there. Nothing else about the signal changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["Stopping", "stopping"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_Handler = Callable[[int, FrameType | None], Any]


class _Relay:
    """A signal handler that wakes the waiting responses, then calls the handler it stands in front of."""

    def __init__(self, watch: Stopping, then: _Handler) -> None:
        self.watch = watch
        self.then = then

    def __call__(self, signum: int, frame: FrameType | None) -> Any:
        self.watch.stop()
        return self.then(signum, frame)


class Stopping:
    """Whether the server was asked to stop, and a way for a waiting response to hear of it."""

    def __init__(self) -> None:
        self._lock = threading.RLock()  # a signal handler may take it on a thread that holds it
        self._waiting: dict[asyncio.Future[None], asyncio.AbstractEventLoop] = {}
        self.requested = False

    def watch(self) -> None:
        """Stand in front of the SIGINT and SIGTERM handlers, unless already there (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            return  # signals reach the main thread's handlers only; a server elsewhere has its own way
        relayed = False
        for signum in _SIGNALS:
            current = signal.getsignal(signum)
            if isinstance(current, _Relay) or not callable(current):
                continue  # ours already, or the default or ignored: then nothing waits to end gracefully
            signal.signal(signum, _Relay(self, current))
            relayed = True
        if relayed:  # a server that stopped restored its handlers, and one runs again: serve it
            self.requested = False

    def future(self) -> asyncio.Future[None]:
        """Return a future of the running loop, done once the server is asked to stop; `forget` it after."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            self._waiting[future] = loop
        if self.requested:  # asked before, or while this registered: `stop` may have missed it
            self.forget(future)
            future.set_result(None)
        return future

    def forget(self, future: asyncio.Future[None]) -> None:
        """Stop tracking `future`."""
        with self._lock:
            self._waiting.pop(future, None)

    def stop(self) -> None:
        """Wake every waiting response; later ones end at once. Safe from a signal handler."""
        self.requested = True  # first: a future registered from now on sees it
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        for future, loop in waiting.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nothing waits on it any more
                loop.call_soon_threadsafe(_finish, future)


def _finish(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


stopping = Stopping()
