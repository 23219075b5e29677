"""A throw-away ``redis-server`` on a free port, for the tests that need a real Redis.

When the binary is missing the tests that need it skip, saying why, unless ``OTEL_EVENTLOG_REQUIRE_REDIS=1``
(set by ``.ci/run``), which makes them fail instead. `shared()` is one server for the whole run, started on
first use; tests that stop, pause or restart a server start their own with `RedisServer`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

_START_SECONDS = 20.0
# Keep nothing on disk: a restarted server is an empty one.
_EPHEMERAL = ("--save", "", "--appendonly", "no")


def free_port() -> int:
    """Return a TCP port that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def binary() -> str:
    """Return the path of ``redis-server``; skip the test (or fail it, if Redis is required) without it."""
    found = shutil.which("redis-server")
    if found is None:
        problem = "redis-server is not on PATH (apt-get install redis-server)"
        if os.environ.get("OTEL_EVENTLOG_REQUIRE_REDIS") == "1":
            pytest.fail(f"OTEL_EVENTLOG_REQUIRE_REDIS=1 but {problem}")
        pytest.skip(problem)
    return found


class RedisServer:
    """A ``redis-server`` of the test's own: nothing saved to disk, on a free port, stopped at the end."""

    def __init__(self) -> None:
        self.port = free_port()
        self._dir = tempfile.mkdtemp(prefix="otel-eventlog-redis-")
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        """The server's URL, database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server on its port, with nothing kept from any earlier run, and wait until it answers."""
        self.process = subprocess.Popen(
            [binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self._dir, *_EPHEMERAL],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + _START_SECONDS
        while self.command("PING") != "+PONG":
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.01)  # the server is starting: nothing to wait on but its socket

    def command(self, *words: str) -> str:
        """Send one inline command and return the first line of the reply, or ``""`` if none came."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as connection:
                connection.sendall((" ".join(words) + "\r\n").encode())
                return connection.makefile("rb").readline().decode().strip()
        except OSError:
            return ""

    def pause(self) -> None:
        """Stop the server's process (SIGSTOP): connections stay open and nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server go on (SIGCONT); nothing to do for one stopped."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Kill the server; what it held is gone, as after a crash without persistence."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def restart(self) -> None:
        """Kill the server and start an empty one on the same port."""
        self.stop()
        self.start()


_shared: RedisServer | None = None


def shared() -> RedisServer:
    """Return the server the tests share, starting it on first use; it stops when the run ends."""
    global _shared  # noqa: PLW0603  # one server per test run, started lazily
    if _shared is None:
        _shared = RedisServer()
        atexit.register(_shared.stop)
    return _shared


def stream_name() -> str:
    """Return a stream name no other test uses."""
    return f"test-{uuid.uuid4().hex}"
