"""A simulated AI agent, instrumented with OpenTelemetry, and its Activity feed read by cursor.

`run_demo` is what ``otel-eventlog demo`` and ``examples/agent.py`` run. Several sessions work at once,
each inside a long-lived ``session`` span that stays open for the whole run; each turn is a child span
with ``turn.started`` and ``turn.completed`` events, and each tool call is a stdlib log record that
names its event (``extra={"event_name": "tool.called"}``). A reader follows the event log by cursor and
prints each event as it arrives: the ``session.started`` lines show up while their spans are still
open. When ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, the spans are also exported over OTLP/HTTP.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from typing import TextIO

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Tracer

from otel_eventlog.activity import ActivityServer, start_activity_server
from otel_eventlog.backends import EventLog
from otel_eventlog.cli._lines import event_line
from otel_eventlog.pipeline import configure, unconfigure

__all__ = ["DEFAULT_CONFIG", "run_demo"]

#: The configuration the demo uses when given none: a small log, every event, the default capture.
DEFAULT_CONFIG = """
observability:
  event_log:
    backend: memory
    ttl_seconds: 600
    max_entries: 1000
"""

_TOOLS = ("search", "read_file", "run_tests", "summarize")


def run_demo(
    config: str | os.PathLike[str] | None = None,
    *,
    duration: float = 5.0,
    sessions: int = 3,
    out: TextIO,
    port: int | None = None,
    any_port_if_taken: bool = False,
    seed: int | None = None,
) -> int:
    """Run the simulated agent for `duration` seconds and print its Activity feed to `out`.

    Args:
        config: The YAML configuration (a path or text); by default `DEFAULT_CONFIG`.
        duration: How long the agent works, in seconds.
        sessions: How many sessions work at once.
        out: Where the feed is printed.
        port: Also serve the feed over HTTP (the Activity page) on this port of 127.0.0.1 (``0``:
            any free one); ``None`` serves nothing.
        any_port_if_taken: Serve on a free port, saying so, when `port` is taken; else raise.
        seed: Seeds the agent's random choices, for a repeatable run.

    Returns:
        How many events the reader printed.

    Raises:
        OSError: If `port` is taken and `any_port_if_taken` is false.
    """
    provider = TracerProvider(resource=Resource.create({"service.name": "otel-eventlog-demo"}))
    exporting = _add_otlp_export(provider)
    log = configure(DEFAULT_CONFIG if config is None else config, tracer_provider=provider)
    try:
        server = None if port is None else _serve(log, port, any_port_if_taken, out)
    except OSError:
        unconfigure(log)
        raise
    if server is not None:
        print(f"# the Activity page: {server.page_url}", file=out)
    logger = logging.getLogger("demo.agent")  # its records reach the event log's handler on the root
    logger.setLevel(logging.INFO)
    print(f"# {sessions} agent sessions for {duration:g}s; {exporting}", file=out)
    print("# the session spans stay open until the end: their events arrive while they are open\n", file=out)
    stop = threading.Event()
    rng = random.Random(seed)
    agents = [
        threading.Thread(
            target=_session,
            args=(provider.get_tracer("otel_eventlog.demo"), logger, n + 1, rng.random(), stop),
            name=f"session-{n + 1}",
        )
        for n in range(sessions)
    ]
    for agent in agents:
        agent.start()
    try:
        cursor, printed = _follow(log, out, None, until=time.monotonic() + duration)
    finally:
        stop.set()
        for agent in agents:
            agent.join()
        provider.shutdown()  # moves what the spans still hold, and flushes the OTLP export
        unconfigure(log)  # takes the logging handler off the root logger
        if server is not None:
            server.close()
    _, more = _follow(log, out, cursor, until=0)
    print(f"\n# {printed + more} events; the log holds {len(log)}", file=out)
    return printed + more


def _serve(log: EventLog, port: int, any_port_if_taken: bool, out: TextIO) -> ActivityServer:
    try:
        return start_activity_server(log, port)
    except OSError as error:
        if not any_port_if_taken:  # a port the user chose is never silently replaced
            raise
        print(f"# port {port} is taken ({error.strerror}): the page is on a free one instead", file=out)
        return start_activity_server(log, 0)


def _add_otlp_export(provider: TracerProvider) -> str:
    if not (
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        return "no OTLP export (set OTEL_EXPORTER_OTLP_ENDPOINT to export the spans too)"
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415
    except ImportError:
        raise ImportError(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but the OTLP exporter is missing: "
            "pip install 'otel-eventlog[otlp]'"
        ) from None
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return "spans exported over OTLP/HTTP as well"


def _session(tracer: Tracer, logger: logging.Logger, number: int, pace: float, stop: threading.Event) -> None:
    rng = random.Random(number)
    with tracer.start_as_current_span("session", attributes={"session": number}) as session:
        session.add_event("session.started", {"session": number})
        turn = 0
        while not stop.is_set():
            turn += 1
            with tracer.start_as_current_span("turn", attributes={"turn": turn}) as span:
                span.add_event("turn.started", {"session": number, "turn": turn})
                for _ in range(rng.randint(0, 2)):
                    tool = rng.choice(_TOOLS)
                    logger.info(
                        "calling %s", tool, extra={"event_name": "tool.called", "tool": tool, "turn": turn}
                    )
                    stop.wait(0.05 + 0.1 * pace)  # the tool's work
                tokens = rng.randint(50, 800)
                span.add_event("turn.completed", {"session": number, "turn": turn, "tokens": tokens})
            stop.wait(0.3 + 0.4 * pace)  # the user thinks
        session.add_event("session.ended", {"session": number, "turns": turn})


def _follow(log: EventLog, out: TextIO, cursor: int | None, *, until: float) -> tuple[int | None, int]:
    """Print the events after `cursor` as they arrive, until the time is up (at least one read).

    Returns the new cursor and how many events were printed.
    """
    printed = 0
    while True:
        page = log.read(since=cursor, wait=max(0.0, until - time.monotonic()))
        if page.missed:
            print(f"  ... {page.missed} events were evicted before they could be read", file=out)
        for event in page.events:
            print(event_line(event), file=out)
        printed += len(page.events)
        cursor = page.cursor
        if time.monotonic() >= until:
            return cursor, printed
