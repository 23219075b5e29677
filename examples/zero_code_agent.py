"""An agent that sets up nothing itself: run it under ``opentelemetry-instrument`` to get its event log.

From a clone of the repository, with ``pip install 'otel-eventlog[otlp]' opentelemetry-distro``::

    export OTEL_EVENTLOG_CONFIG=examples/observability.yaml OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf
    opentelemetry-instrument python examples/zero_code_agent.py

It uses the OpenTelemetry API alone: a session span with a few turns, each with ``turn.started`` and
``turn.completed`` span events and a ``tool.called`` stdlib log record. ``opentelemetry-instrument``
sets up the tracer provider (and its OTLP export), and otel_eventlog's entry point attaches the event log
to it from ``OTEL_EVENTLOG_CONFIG``. At the end the agent reads its own feed through
``otel_eventlog.get_event_log()`` and prints it; without an event log (run without
``opentelemetry-instrument``, or if that failed to set up), it says so and exits with status 1.
"""

from __future__ import annotations

import json
import logging
import sys

from opentelemetry import trace

import otel_eventlog

logger = logging.getLogger("agent")
logger.setLevel(logging.INFO)  # loggers drop records below their level (WARNING by default) unseen


def main() -> int:
    tracer = trace.get_tracer("agent")
    with tracer.start_as_current_span("session") as session:
        session.add_event("session.started", {"session": 1})
        for turn in (1, 2):
            with tracer.start_as_current_span("turn") as span:
                span.add_event("turn.started", {"session": 1, "turn": turn})
                logger.info("calling search", extra={"event_name": "tool.called", "tool": "search"})
                span.add_event("turn.completed", {"session": 1, "turn": turn})
        session.add_event("session.ended", {"session": 1, "turns": 2})

    log = otel_eventlog.get_event_log()
    if log is None:
        print("no event log: run me under opentelemetry-instrument (see its errors, if any)", file=sys.stderr)
        return 1
    # Events of ended spans reach the log within live_interval_seconds: wait for the last one.
    log.read(kinds="session.ended", wait=5)
    for event in log.read(since=0, kinds=["session.*", "turn.*", "tool.*"]).events:
        print(f"#{event.id:<3} {event.kind:<16} {json.dumps(event.payload)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
