"""A simulated AI agent, instrumented with OpenTelemetry, and its Activity feed read by cursor.

`run_demo` is what ``otel-eventlog demo`` and ``examples/agent.py`` run. Several sessions work at once,
each inside a ``session`` span that stays open for its few turns; when one ends, another begins. Each
turn is a child span with ``turn.started`` and ``turn.completed`` events, one GenAI ``chat`` call (a
span with the ``gen_ai.*`` attributes an instrumentation records, messages included) and tool calls,
each a stdlib log record that names its event (``extra={"event_name": "tool.called"}``). A reader
follows the event log by cursor and prints the session, turn and tool events as they arrive: the
``session.started`` lines show up while their spans are still open. ``span.started`` and
``span.ended`` entries are in the log too, for the Activity page's *Running now* panel. When
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, the spans are also exported over OTLP/HTTP.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable
from typing import TextIO

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Tracer

from otel_eventlog.activity import ActivityServer, start_activity_server
from otel_eventlog.backends import EventLog
from otel_eventlog.cli._lines import event_line
from otel_eventlog.pipeline import configure, unconfigure

__all__ = ["DEFAULT_CONFIG", "STORY", "run_demo"]

#: The configuration the demo uses when given none: a small log, every event, span lifecycle entries.
DEFAULT_CONFIG = """
observability:
  event_log:
    backend: memory
    ttl_seconds: 600
    max_entries: 5000
    capture:
      span_lifecycle: true
"""

#: The kinds the demo prints: the agent's story. The page shows the model calls and spans too.
STORY = ("session.*", "turn.*", "tool.*")

_TOOLS = ("search", "read_file", "run_tests", "summarize")
_PROMPTS = (
    "Why does test_parse fail on an empty file?",
    "Summarise the open pull requests.",
    "Find where the retry delay is set.",
    "Draft a changelog entry for the fix.",
)


def run_demo(
    config: str | os.PathLike[str] | None = None,
    *,
    duration: float = math.inf,
    sessions: int = 3,
    out: TextIO,
    port: int | None = None,
    any_port_if_taken: bool = False,
    seed: int | None = None,
) -> int:
    """Run the simulated agent for `duration` seconds (or until interrupted) and print its feed to `out`.

    Args:
        config: The YAML configuration (a path or text); by default `DEFAULT_CONFIG`.
        duration: How long the agent works, in seconds; ``math.inf``: until interrupted.
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
    until = "until interrupted (Ctrl-C)" if math.isinf(duration) else f"for {duration:g}s"
    print(f"# {sessions} agent session{'s' * (sessions != 1)} at a time, {until}; {exporting}", file=out)
    print("# each session span stays open for its turns: its events arrive while it is open", file=out)
    shown_too = "; the page also shows model calls and running spans" if server is not None else ""
    print(f"# printed here: {', '.join(STORY)}{shown_too}\n", file=out)
    stop = threading.Event()
    rng = random.Random(seed)
    numbers = itertools.count(1).__next__  # one number per session, across the slots
    lock = threading.Lock()

    def next_number() -> int:
        with lock:
            return numbers()

    tracer = provider.get_tracer("otel_eventlog.demo")
    agents = [
        threading.Thread(
            target=_slot,
            args=(tracer, logger, next_number, random.Random(rng.random()), stop),
            name=f"agent-{n + 1}",
        )
        for n in range(sessions)
    ]
    for agent in agents:
        agent.start()
    try:
        place, printed = _follow(log, out, (None, None), until=time.monotonic() + duration)
    finally:
        stop.set()
        for agent in agents:
            agent.join()
        provider.shutdown()  # moves what the spans still hold, and flushes the OTLP export
        unconfigure(log)  # takes the logging handler off the root logger
        if server is not None:
            server.close()
    _, more = _follow(log, out, place, until=0)
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


def _slot(
    tracer: Tracer,
    logger: logging.Logger,
    next_number: Callable[[], int],
    rng: random.Random,
    stop: threading.Event,
) -> None:
    """Run one session after another, until `stop`."""
    pace = rng.random()
    while not stop.is_set():
        _session(tracer, logger, number=next_number(), turns=rng.randint(4, 8), pace=pace, rng=rng, stop=stop)
        stop.wait(0.5 + pace)  # a pause before the next user comes


def _session(
    tracer: Tracer,
    logger: logging.Logger,
    *,
    number: int,
    turns: int,
    pace: float,
    rng: random.Random,
    stop: threading.Event,
) -> None:
    with tracer.start_as_current_span("session", attributes={"session": number}) as session:
        session.add_event("session.started", {"session": number})
        turn = 0
        while turn < turns and not stop.is_set():
            turn += 1
            with tracer.start_as_current_span("turn", attributes={"turn": turn}) as span:
                span.add_event("turn.started", {"session": number, "turn": turn})
                tokens = _chat(tracer, rng, pace, stop)
                for _ in range(rng.randint(0, 2)):
                    tool = rng.choice(_TOOLS)
                    logger.info(
                        "calling %s", tool, extra={"event_name": "tool.called", "tool": tool, "turn": turn}
                    )
                    stop.wait(0.05 + 0.1 * pace)  # the tool's work
                span.add_event("turn.completed", {"session": number, "turn": turn, "tokens": tokens})
            stop.wait(0.3 + 0.4 * pace)  # the user thinks
        session.add_event("session.ended", {"session": number, "turns": turn})


def _chat(tracer: Tracer, rng: random.Random, pace: float, stop: threading.Event) -> int:
    """Make one simulated model call, recorded as the GenAI semantic conventions describe it."""
    prompt = rng.choice(_PROMPTS)
    input_tokens, output_tokens = rng.randint(40, 600), rng.randint(10, 200)
    with tracer.start_as_current_span("chat demo-model", kind=SpanKind.CLIENT) as span:
        span.set_attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "demo",
                "gen_ai.request.model": "demo-model",
                "gen_ai.input.messages": json.dumps(
                    [{"role": "user", "parts": [{"type": "text", "content": prompt}]}]
                ),
            }
        )
        stop.wait(0.1 + 0.3 * pace)  # the model thinks
        answer = f"Done: {prompt.rstrip('?.').lower()}, in {output_tokens} tokens."
        span.set_attributes(
            {
                "gen_ai.response.model": "demo-model-2026-01",
                "gen_ai.response.finish_reasons": ("stop",),
                "gen_ai.usage.input_tokens": input_tokens,
                "gen_ai.usage.output_tokens": output_tokens,
                "gen_ai.output.messages": json.dumps(
                    [
                        {
                            "role": "assistant",
                            "parts": [{"type": "text", "content": answer}],
                            "finish_reason": "stop",
                        }
                    ]
                ),
            }
        )
    return input_tokens + output_tokens


_Place = tuple[int | None, str | None]  # a reader's cursor, and the epoch of the log it is in


def _follow(log: EventLog, out: TextIO, place: _Place, *, until: float) -> tuple[_Place, int]:
    """Print the events after `place` as they arrive, until the time is up (at least one read).

    Returns the new place and how many events were printed.
    """
    (cursor, epoch), printed = place, 0
    while True:
        page = log.read(since=cursor, kinds=STORY, wait=max(0.0, until - time.monotonic()))
        if epoch is not None and page.epoch != epoch:  # a shared log its store lost: read it anew
            print("  ... the log began again (its Redis lost it): reading it from its start", file=out)
            page = log.read(kinds=STORY)
        epoch = page.epoch
        if page.missed:
            print(f"  ... {page.missed} events were evicted before they could be read", file=out)
        for event in page.events:
            print(event_line(event), file=out)
        out.flush()  # a page at a time, so that `demo | grep` sees events as they come
        printed += len(page.events)
        cursor = page.cursor
        if time.monotonic() >= until:
            return (cursor, epoch), printed
