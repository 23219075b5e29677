"""Benchmark what `EventLogSpanProcessor` adds to the cost of a span, against the span alone.

Run it with ``python benchmarks/bench_processor.py`` (``--quick`` for a short smoke run). It prints the
cost of one span with two events, started and ended, on a ``TracerProvider`` with a
``BatchSpanProcessor`` whose exporter discards spans, against the same provider set-up plus an
``EventLogSpanProcessor`` (live reading on, its default). Each timed round ends with the provider's
``force_flush()``, so that work a processor leaves to its own thread is counted in the round that
caused it. The two set-ups are measured alternately, in A-B and B-A order, round after round, and
the median of the per-pair ratios is the figure: pairs cancel out the slow drifts of a shared
machine. Target: at most 1.20 (the goal is 1.10). Exits 1 if the target is missed.

It also reports what `EventLogHandler` costs per stdlib log record that names an event, against the
same logger with `logging.NullHandler`: a figure to watch, without a target.

``--instructions`` counts instead of timing (about 40 s; needs ``valgrind``): the same spans run
under callgrind, which counts the instructions the process executes whatever else the machine does,
with and without the event log, each minus a run of no spans. The ratio is repeatable to within 0.01,
where the timed one moves by a few hundredths from run to run on a shared machine; it does not see
what instructions cost in time (cache misses, for one).
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from otel_eventlog import EventLogHandler, EventLogSpanProcessor, InMemoryEventLog


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


def handler_loop(handler: logging.Handler) -> Callable[[int], None]:
    logger = logging.getLogger(f"bench.{type(handler).__name__}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)

    def run(n: int) -> None:
        for turn in range(n):
            logger.info(
                "calling %s", "search", extra={"event_name": "tool.called", "tool": "search", "turn": turn}
            )

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run; figures are rough")
    parser.add_argument("--instructions", action="store_true", help="count instructions under callgrind")
    parser.add_argument("--spans-only", nargs=2, metavar=("SETUP", "SPANS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.spans_only:
        run_spans_only(args.spans_only[0] == "with", int(args.spans_only[1]))
        return 0
    if args.instructions:
        return count_instructions(1_000 if args.quick else 4_000, args.quick)
    rounds, spans = (2, 2_000) if args.quick else (31, 5_000)

    setups = [span_loop(with_event_log=False), span_loop(with_event_log=True)]
    costs: list[list[float]] = [[], []]
    for round_ in range(rounds):
        # A-B, then B-A: a machine that speeds up or slows down within a pair favours neither side.
        for n in (0, 1) if round_ % 2 == 0 else (1, 0):
            run, provider = setups[n]
            start = time.perf_counter_ns()
            run(spans)
            provider.force_flush()
            costs[n].append((time.perf_counter_ns() - start) / spans)
    for _, provider in setups:
        provider.shutdown()

    ratio = statistics.median(logged / plain for plain, logged in zip(*costs, strict=True))

    records = costs_of_handlers(rounds, spans)
    record_ratio = statistics.median(h / n for n, h in zip(*records, strict=True))
    ok = ratio <= 1.20
    print(f"python {sys.version.split()[0]}, {rounds} alternating rounds of {spans} spans; medians")
    print(f"  span + 2 events, BatchSpanProcessor              {statistics.median(costs[0]):8.0f} ns/span")
    print(f"  span + 2 events, BatchSpanProcessor + event log  {statistics.median(costs[1]):8.0f} ns/span")
    print(f"  log record naming an event, NullHandler         {statistics.median(records[0]):8.0f} ns/record")
    print(f"  log record naming an event, EventLogHandler     {statistics.median(records[1]):8.0f} ns/record")
    print(f"{'EventLogHandler / NullHandler':40s} {record_ratio:6.2f}  (no target)")
    verdict = "ok" if ok else "MISSED"
    print(f"{'with event log / without':40s} {ratio:6.2f}  (target <= 1.2, goal 1.1)  {verdict}")
    return 0 if ok or args.quick else 1


def run_spans_only(with_event_log: bool, spans: int) -> None:
    """Run `spans` spans on one set-up, after a warm-up, and flush: what callgrind counts."""
    run, provider = span_loop(with_event_log)
    run(200)  # past the interpreter's specialisation of the hot code, and the log's first growth
    provider.force_flush()
    run(spans)
    provider.force_flush()
    provider.shutdown()


def count_instructions(spans: int, quick: bool) -> int:
    """Print the instructions per span with and without the event log, counted by callgrind."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("--instructions needs valgrind on PATH (apt-get install valgrind)", file=sys.stderr)
        return 2
    collected = {}
    for setup in ("without", "with"):
        for count in (0, spans):  # each process counted whole: the difference is what the spans cost
            # One at a time: run side by side, the processes' threads interleave differently each time.
            command = [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable]
            command += [__file__, "--spans-only", setup, str(count)]
            done = subprocess.run(command, stderr=subprocess.PIPE, text=True, check=False)
            found = re.findall(r"Collected : (\d+)", done.stderr)
            if done.returncode or not found:
                print(f"callgrind run ({setup}, {count}) failed:\n{done.stderr}", file=sys.stderr)
                return 2
            collected[setup, count] = int(found[-1])
    per_span = {
        setup: (collected[setup, spans] - collected[setup, 0]) / spans for setup in ("without", "with")
    }
    ratio = per_span["with"] / per_span["without"]
    print(f"python {sys.version.split()[0]}, {spans} spans under callgrind, instructions per span")
    print(f"  span + 2 events, BatchSpanProcessor              {per_span['without']:8.0f}")
    print(f"  span + 2 events, BatchSpanProcessor + event log  {per_span['with']:8.0f}")
    ok = ratio <= 1.20
    verdict = "ok" if ok else "MISSED"
    print(f"{'with event log / without':40s} {ratio:6.3f}  (target <= 1.2, goal 1.1)  {verdict}")
    return 0 if ok or quick else 1


def costs_of_handlers(rounds: int, records: int) -> list[list[float]]:
    """Time records through a NullHandler and an EventLogHandler, alternately; ns per record."""
    loops = [handler_loop(logging.NullHandler()), handler_loop(EventLogHandler(InMemoryEventLog()))]
    costs: list[list[float]] = [[], []]
    for _ in range(rounds):
        for n, run in enumerate(loops):
            start = time.perf_counter_ns()
            run(records)
            costs[n].append((time.perf_counter_ns() - start) / records)
    return costs


if __name__ == "__main__":
    sys.exit(main())
