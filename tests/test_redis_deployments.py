"""The shared feed as it is deployed: gunicorn and uvicorn workers, and ``otel-eventlog serve`` and ``tail``.

Every process is configured through the environment alone (``OTEL_EVENTLOG_BACKEND=redis``,
``OTEL_EVENTLOG_REDIS_URL``, ``OTEL_EVENTLOG_REDIS_STREAM``), as a deployment would be.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from otel_eventlog import Entry, RedisEventLog
from tests import redis_server
from tests.redis_server import stream_name

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="gunicorn runs on Unix only")

WAIT = 30.0  # seconds: only ever reached when a test fails

WSGI_APP = """
import logging, os
import otel_eventlog

otel_eventlog.configure()  # in each worker: the environment names the shared Redis stream
activity = otel_eventlog.make_wsgi_app(otel_eventlog.get_event_log())
logging.getLogger().setLevel(logging.INFO)


def app(environ, start_response):
    def with_pid(status, headers):
        return start_response(status, [*headers, ("X-Worker", str(os.getpid()))])

    return activity(environ, with_pid)
"""

ASGI_APP = """
import os
import otel_eventlog

otel_eventlog.configure()
activity = otel_eventlog.make_asgi_app(otel_eventlog.get_event_log())


async def app(scope, receive, send):
    async def with_pid(message):
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message["headers"], (b"x-worker", str(os.getpid()).encode())]}
        await send(message)

    await activity(scope, receive, with_pid)
"""


def environment(tmp_path: Path, stream: str) -> dict[str, str]:
    """The environment of a process configured for the shared feed alone."""
    return {
        **os.environ,
        "PYTHONPATH": str(tmp_path),
        "HOME": str(tmp_path),  # gunicorn 27 opens a control socket under ~/.gunicorn: one per test
        "OTEL_EVENTLOG_CONFIG": "",
        "OTEL_EVENTLOG_BACKEND": "redis",
        "OTEL_EVENTLOG_REDIS_URL": redis_server.shared().url,
        "OTEL_EVENTLOG_REDIS_STREAM": stream,
    }


@contextmanager
def workers(tmp_path: Path, stream: str, command: list[str], source: str) -> Iterator[int]:
    """Run a server of several workers on a socket this test opened (``{fd}`` in `command`); yield it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    (tmp_path / "app.py").write_text(textwrap.dedent(source))
    server = subprocess.Popen(
        [sys.executable, "-m", *(word.format(fd=listener.fileno()) for word in command), "app:app"],
        cwd=tmp_path,
        env=environment(tmp_path, stream),
        pass_fds=[listener.fileno()],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield listener.getsockname()[1]
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=WAIT)
        listener.close()
        assert "Traceback" not in errors, errors


def poll(port: int, since: int, wait: float = 0) -> tuple[dict[str, Any], str]:
    """GET /activity; return the page and the pid of the worker that answered."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    try:
        connection.request("GET", f"/activity?since={since}&limit=1000&wait={wait}")
        response = connection.getresponse()
        assert response.status == 200
        return json.loads(response.read()), response.getheader("X-Worker") or ""
    finally:
        connection.close()


def blocked_readers(url: str, stream: str) -> int:
    """How many clients of `stream` wait in XREAD on the server: one per process with a waiting reader."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        return sum(
            1
            for entry in client.client_list()
            if entry.get("cmd") == "xread" and entry.get("name") == f"otel-eventlog:{stream}"
        )
    finally:
        client.close()


def test_every_gunicorn_worker_serves_the_same_feed(tmp_path: Path) -> None:
    """Gunicorn -w 3: three long-polls held by three workers at once all get the same events and epoch."""
    pytest.importorskip("gunicorn", reason="gunicorn is not installed (pip install 'otel-eventlog[test]')")
    stream, url = stream_name(), redis_server.shared().url
    writer = RedisEventLog(url, stream=stream)
    command = ["gunicorn", "-w", "3", "-b", "fd://{fd}"]
    try:
        writer.extend([Entry("turn.started", {"turn": n}) for n in range(5)])
        with workers(tmp_path, stream, command, WSGI_APP) as port:
            answers: list[tuple[dict[str, Any], str]] = []
            polls = [threading.Thread(target=lambda: answers.append(poll(port, 5, WAIT))) for _ in range(3)]
            for thread in polls:
                thread.start()
            deadline = time.monotonic() + WAIT
            while blocked_readers(url, stream) < 3:  # each sync worker holds one long-poll: all three wait
                assert time.monotonic() < deadline, "three workers never waited at once"
                time.sleep(0.01)  # nothing to wait on but the server's client list
            writer.append("tool.called", {"tool": "search"})
            for thread in polls:
                thread.join(WAIT)
            sequential = [poll(port, 0) for _ in range(6)]
    finally:
        writer.close()
    assert len({pid for _, pid in answers}) == 3
    assert len({json.dumps(page["events"]) for page, _ in answers}) == 1
    assert [(e["id"], e["kind"]) for e in answers[0][0]["events"]] == [(6, "tool.called")]
    assert len({page["epoch"] for page, _ in answers + sequential}) == 1
    assert {tuple(e["id"] for e in page["events"]) for page, _ in sequential} == {(1, 2, 3, 4, 5, 6)}


def test_every_uvicorn_worker_serves_the_same_feed(tmp_path: Path) -> None:
    """Uvicorn --workers 2 with make_asgi_app: whichever worker answers, the feed is the same."""
    pytest.importorskip("uvicorn", reason="uvicorn is not installed (pip install 'otel-eventlog[test]')")
    stream, url = stream_name(), redis_server.shared().url
    writer = RedisEventLog(url, stream=stream)
    command = ["uvicorn", "--workers", "2", "--no-access-log", "--fd", "{fd}"]
    try:
        writer.extend([Entry("turn.started", {"turn": n}) for n in range(9)])
        with workers(tmp_path, stream, command, ASGI_APP) as port:
            answers = [poll(port, 0) for _ in range(10)]
            waiting = poll(port, 9, 0.05)
            writer.append("late")
            late = poll(port, 9, WAIT)
    finally:
        writer.close()
    assert {tuple(e["id"] for e in page["events"]) for page, _ in answers} == {tuple(range(1, 10))}
    assert len({page["epoch"] for page, _ in [*answers, waiting, late]}) == 1
    assert waiting[0]["events"] == []
    assert [e["kind"] for e in late[0]["events"]] == ["late"]


def test_serve_shows_what_other_processes_write_and_tail_follows_it(tmp_path: Path) -> None:
    """otel-eventlog serve in one process serves the shared feed; tail in another prints its events."""
    stream, url = stream_name(), redis_server.shared().url
    env = environment(tmp_path, stream)
    cli = str(Path(sys.executable).with_name("otel-eventlog"))
    serve = subprocess.Popen([cli, "serve", "--port", "0"], env=env, stdout=subprocess.PIPE, text=True)
    writer = RedisEventLog(url, stream=stream)
    try:
        assert serve.stdout is not None
        line = serve.stdout.readline()
        assert "serving the redis event log at http://127.0.0.1:" in line
        server_url = line.rsplit(" ", 1)[1].strip()
        writer.extend([Entry("turn.started", {"turn": 1}), Entry("tool.called", {"tool": "search"})])
        follower = subprocess.Popen(
            [cli, "tail", server_url, "--since", "0", "--count", "3", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert follower.stdout is not None
        first = [json.loads(follower.stdout.readline()) for _ in range(2)]
        writer.append("turn.completed", {"turn": 1})  # while tail follows
        output, _ = follower.communicate(timeout=WAIT)
        assert follower.returncode == 0
    finally:
        writer.close()
        serve.terminate()
        serve.communicate(timeout=WAIT)
    kinds = [event["kind"] for event in [*first, json.loads(output)]]
    assert kinds == ["turn.started", "tool.called", "turn.completed"]


def test_serve_without_redis_py_says_which_extra_to_install(tmp_path: Path) -> None:
    """With backend redis and no redis-py, serve exits 1 with one line naming the pip extra."""
    shadow = tmp_path / "redis"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError('No module named redis')\n")
    cli = str(Path(sys.executable).with_name("otel-eventlog"))
    result = subprocess.run(
        [cli, "serve", "--port", "0"],
        env=environment(tmp_path, stream_name()),
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "otel-eventlog: error: the Redis event log backend needs redis-py: pip install 'otel-eventlog[redis]'"
    ]


def test_serve_with_an_unreachable_redis_fails_in_one_line_naming_it(tmp_path: Path) -> None:
    """An unreachable Redis makes serve exit 1 with one line naming host and port, and no password."""
    port = redis_server.free_port()
    env = {
        **environment(tmp_path, stream_name()),
        "OTEL_EVENTLOG_REDIS_URL": f"redis://:hunter2@127.0.0.1:{port}/0",
    }
    cli = str(Path(sys.executable).with_name("otel-eventlog"))
    result = subprocess.run(
        [cli, "serve", "--port", "0"], env=env, capture_output=True, text=True, timeout=WAIT, check=False
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"otel-eventlog: error: Redis at 127.0.0.1:{port}: ")
    assert "hunter2" not in line
