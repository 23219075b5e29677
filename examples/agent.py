"""A simulated AI agent whose Activity feed is printed live, by cursor, as it works.

Run it with ``python examples/agent.py`` (``--duration`` and ``--sessions`` to change the run). It is
configured by ``examples/observability.yaml``: ``otel_eventlog.configure()`` builds the event log and
attaches its processors to the agent's ``TracerProvider`` and to the root logger. Several sessions
work at once inside long-lived session spans; the ``session.started`` lines appear while those spans
are still open. Set ``OTEL_EXPORTER_OTLP_ENDPOINT`` (and ``pip install 'otel-eventlog[otlp]'``) to
export the spans over OTLP/HTTP at the same time. The agent itself is ``otel_eventlog.cli.demo``, which
``otel-eventlog demo`` runs too.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from otel_eventlog.cli.demo import run_demo

CONFIG = Path(__file__).with_name("observability.yaml")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds the agent works (default 5)")
    parser.add_argument("--sessions", type=sessions, default=3, help="sessions working at once (default 3)")
    args = parser.parse_args()
    try:
        run_demo(CONFIG, duration=args.duration, sessions=args.sessions, out=sys.stdout)
    except BrokenPipeError:  # `python examples/agent.py | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def sessions(text: str) -> int:
    """Read --sessions: a whole number from 1 to 32."""
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 32):
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 32, got {text!r}")
    return int(text)


if __name__ == "__main__":
    main()
