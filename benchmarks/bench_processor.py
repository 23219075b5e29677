"""Benchmark what `EventLogSpanProcessor` adds to the cost of a span, against the span alone.

Run it with ``python benchmarks/bench_processor.py`` (``--quick`` for a short smoke run). It prints the
cost of one span with two events, started and ended, on a ``TracerProvider`` with a
``BatchSpanProcessor`` whose exporter discards spans, against the same provider set-up plus an
``EventLogSpanProcessor`` (live reading on, its default). The two are measured alternately, several
rounds, and the best round of each compared. Target: a ratio of at most 1.20 (the goal is 1.10).
Exits 1 if the target is missed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from otel_eventlog import InMemoryEventLog
from otel_eventlog.span_processor import EventLogSpanProcessor


class DiscardingExporter(SpanExporter):
    """Exports nothing, successfully."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Drop `spans`."""
        return SpanExportResult.SUCCESS


def span_loop(with_event_log: bool) -> tuple[Callable[[int], None], TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DiscardingExporter(), max_queue_size=1 << 16))
    if with_event_log:
        provider.add_span_processor(EventLogSpanProcessor(InMemoryEventLog()))
    tracer = provider.get_tracer("bench")

    def run(n: int) -> None:
        for turn in range(n):
            span = tracer.start_span("turn")
            span.add_event("turn.started", {"turn": turn})
            span.add_event("turn.completed", {"turn": turn, "tokens": 120})
            span.end()

    return run, provider


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run; figures are rough")
    args = parser.parse_args()
    rounds, spans = (2, 2_000) if args.quick else (9, 20_000)

    plain, plain_provider = span_loop(with_event_log=False)
    logged, logged_provider = span_loop(with_event_log=True)
    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        for n, run in enumerate((plain, logged)):
            start = time.perf_counter_ns()
            run(spans)
            best[n] = min(best[n], (time.perf_counter_ns() - start) / spans)
    plain_provider.shutdown()
    logged_provider.shutdown()

    ratio = best[1] / best[0]
    ok = ratio <= 1.20
    print(f"python {sys.version.split()[0]}, best of {rounds} alternating rounds of {spans} spans")
    print(f"  span + 2 events, BatchSpanProcessor              {best[0]:8.0f} ns/span")
    print(f"  span + 2 events, BatchSpanProcessor + event log  {best[1]:8.0f} ns/span")
    verdict = "ok" if ok else "MISSED"
    print(f"{'with event log / without':40s} {ratio:6.2f}  (target <= 1.2, goal 1.1)  {verdict}")
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
