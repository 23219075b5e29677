"""End to end under a pre-fork server: gunicorn workers forked after the event log was configured."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("gunicorn", reason="gunicorn is not installed (pip install 'otel-eventlog[test]')")
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="gunicorn runs on Unix only")

WAIT = 20.0  # seconds: only ever reached when a test fails

APP = """
import otel_eventlog
from opentelemetry import trace

{configure}
tracer = trace.get_tracer("app")
open_sessions = []


def app(environ, start_response):
    if environ["PATH_INFO"] == "/turn":
        session = tracer.start_span("session")  # left open: only the worker's helper thread can move it
        session.add_event("turn.started", {{"pid": __import__("os").getpid()}})
        open_sessions.append(session)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    return otel_eventlog.make_wsgi_app(otel_eventlog.get_event_log())(environ, start_response)
"""


@contextmanager
def gunicorn(tmp_path: Path, *, preload: bool) -> Iterator[int]:
    """Run gunicorn with one worker on a socket this test opened, so that no start-up race exists."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    settings = "observability: {event_log: {capture: {live_interval_seconds: 0.05}}}"
    configure = f"otel_eventlog.configure({settings!r})"
    (tmp_path / "app.py").write_text(textwrap.dedent(APP.format(configure=configure if preload else "")))
    command = [sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"fd://{listener.fileno()}", "app:app"]
    # HOME: gunicorn 27 opens a control socket under ~/.gunicorn; each test keeps its own.
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "HOME": str(tmp_path)}
    if preload:
        command.insert(3, "--preload")
    else:  # zero-code: opentelemetry-instrument configures the event log in the master, before the fork
        command = [str(Path(sys.executable).with_name("opentelemetry-instrument")), *command]
        env.update(
            OTEL_TRACES_EXPORTER="none",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
            OTEL_EVENTLOG_LIVE_INTERVAL_SECONDS="0.05",
            OTEL_EVENTLOG_CONFIG="",
        )
    server = subprocess.Popen(
        command, cwd=tmp_path, env=env, pass_fds=[listener.fileno()], stderr=subprocess.PIPE, text=True
    )
    try:
        yield listener.getsockname()[1]
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=WAIT)
        listener.close()
        assert "Traceback" not in errors, errors


def get(port: int, target: str) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    try:
        connection.request("GET", target)
        response = connection.getresponse()
        assert response.status == 200
        return response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    "preload", [True, False], ids=["gunicorn --preload", "opentelemetry-instrument gunicorn"]
)
def test_span_events_reach_the_worker_feed_live(tmp_path: Path, preload: bool) -> None:
    """An event on a span still open in a forked worker is in that worker's feed within live_interval."""
    with gunicorn(tmp_path, preload=preload) as port:
        assert get(port, "/turn") == b"ok"
        page = json.loads(get(port, "/activity?since=0&kind=turn.started&wait=5"))
    [event] = page["events"]
    assert event["kind"] == "turn.started"
    assert event["payload"]["pid"] != os.getpid()
