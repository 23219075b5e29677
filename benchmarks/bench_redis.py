"""Benchmark the Redis backend against a throw-away ``redis-server``, each figure a ratio measured in one run.

Run it with ``python benchmarks/bench_redis.py`` (``--quick`` for a short smoke run); it needs
``redis-server`` on PATH and redis-py (``pip install 'otel-eventlog[redis]'``). It prints:

- **events per second**, written through `RedisEventLog`'s batched writer (one ``write_batch`` call
  per event, as the logging handler makes them, then ``flush``) against one ``XADD`` per event with
  redis-py, the same encoded event each time. Target: at least 20.
- **cost per span on the application's thread**: a span with two events, started and ended, on a
  ``TracerProvider`` with an ``EventLogSpanProcessor`` writing to a `RedisEventLog`, against the same
  with an `InMemoryEventLog`. Rounds alternate A-B and B-A; the median of the per-pair ratios is the
  figure. The writer's own thread is left running (it shares the interpreter). Target: at most 1.10.
- **append-to-reader latency across processes**: another process writes 10,000 events a second
  through the capture path (``write_batch``), each stamped with the time it was handed over; this
  process follows the stream with ``read(wait=...)`` and measures when each arrives. p50 and p99;
  target: p99 at most 10 ms.

Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable

import redis
from opentelemetry.sdk.trace import TracerProvider

from otel_eventlog import Entry, EventLog, EventLogSpanProcessor, InMemoryEventLog, RedisEventLog

THROUGHPUT_TARGET = 20.0
SPAN_TARGET = 1.10
LATENCY_TARGET_MS = 10.0


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    """Start an empty ``redis-server`` on a free port; return it and its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("bench_redis: redis-server is not on PATH")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    directory = tempfile.mkdtemp(prefix="bench-redis-")
    server = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", directory],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                sys.exit("bench_redis: redis-server did not start")
            time.sleep(0.01)
    client.close()
    return server, url


def throughput(url: str, events: int) -> tuple[float, float]:
    """Return events per second through the batched writer, and through one XADD per event."""
    payload = {"tool": "search", "turn": 3, "query": "weather in Lisbon"}
    log = RedisEventLog(url, stream=f"bench-{uuid.uuid4().hex}", max_entries=events + 1)
    started = time.perf_counter()
    for _ in range(events):
        log.write_batch([Entry("tool.called", dict(payload))])
    assert log.flush(120)
    batched = events / (time.perf_counter() - started)
    log.close()
    client = redis.Redis.from_url(url)
    stream, encoded = f"bench-{uuid.uuid4().hex}", json.dumps(["0", "tool.called", payload, None, None])
    started = time.perf_counter()
    for _ in range(events):
        client.xadd(stream, {"e": encoded})
    single = events / (time.perf_counter() - started)
    client.close()
    return batched, single


def span_loop(log: EventLog) -> Callable[[int], None]:
    provider = TracerProvider()
    provider.add_span_processor(EventLogSpanProcessor(log))
    tracer = provider.get_tracer("bench")

    def run(n: int) -> None:
        for turn in range(n):
            span = tracer.start_span("turn")
            span.add_event("turn.started", {"turn": turn})
            span.add_event("turn.completed", {"turn": turn, "tokens": 120})
            span.end()

    return run


def span_cost(url: str, rounds: int, spans: int) -> float:
    """Return the median, over alternating pairs of rounds, of the Redis / in-memory cost per span."""
    redis_log = RedisEventLog(url, stream=f"bench-{uuid.uuid4().hex}", queue_events=1 << 20)
    loops = {"redis": span_loop(redis_log), "memory": span_loop(InMemoryEventLog())}
    for run in loops.values():
        run(spans)  # warm up
    ratios = []
    for round_number in range(rounds):
        order = ("redis", "memory") if round_number % 2 == 0 else ("memory", "redis")
        seconds = {}
        for name in order:
            started = time.perf_counter()
            loops[name](spans)
            seconds[name] = time.perf_counter() - started
        ratios.append(seconds["redis"] / seconds["memory"])
        redis_log.flush(60)  # between rounds: the next round starts with an empty queue
    redis_log.close()
    return statistics.median(ratios)


WRITER = """
import sys, time
from otel_eventlog import Entry, RedisEventLog

url, stream, rate, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
log = RedisEventLog(url, stream=stream)
log.append("ready")
burst = max(1, rate // 1000)  # a burst every millisecond
start, sent = time.perf_counter(), 0
while sent < rate * seconds:
    for _ in range(burst):
        log.write_batch([Entry("tick", {"sent": time.time(), "n": sent})])
        sent += 1
    pause = start + sent / rate - time.perf_counter()
    if pause > 0:
        time.sleep(pause)
assert log.flush(60)
"""


def latency(url: str, rate: int, seconds: float) -> list[float]:
    """Return how long each event took from another process's write_batch to this process's read, in ms."""
    stream = f"bench-{uuid.uuid4().hex}"
    log = RedisEventLog(url, stream=stream, max_entries=int(rate * seconds) + 10)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, url, stream, str(rate), str(seconds)])
    delays: list[float] = []
    cursor, expected = 0, int(rate * seconds) + 1
    seen = 0
    while seen < expected:
        page = log.read(since=cursor, wait=30)
        arrived = time.time()
        cursor = page.cursor
        for event in page.events:
            seen += 1
            if event.kind == "tick":
                delays.append((arrived - event.payload["sent"]) * 1000)
    writer.wait(60)
    log.close()
    return delays


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args()
    events, rounds, spans, seconds = (2_000, 4, 500, 0.3) if args.quick else (20_000, 20, 2_000, 3.0)
    server, url = start_server()
    try:
        batched, single = throughput(url, events)
        ratio = span_cost(url, rounds, spans)
        delays = sorted(latency(url, 10_000, seconds))
    finally:
        server.kill()
        server.wait()
    p50 = delays[len(delays) // 2]
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    missed = []
    print(
        f"{'events per second: batched writer / one XADD per event':58} {batched / single:6.2f}"
        f"  (target >= {THROUGHPUT_TARGET:.0f}; {batched:,.0f} vs {single:,.0f} events/s)"
    )
    print(
        f"{'cost per span on the app thread: redis / in-memory':58} {ratio:6.2f}  (target <= {SPAN_TARGET})"
    )
    print(
        f"{'append -> reader in another process, 10,000 events/s':58} p50 {p50:.2f} ms, p99 {p99:.2f} ms"
        f"  (target p99 <= {LATENCY_TARGET_MS:.0f} ms; {len(delays):,} events)"
    )
    if batched / single < THROUGHPUT_TARGET:
        missed.append("throughput")
    if ratio > SPAN_TARGET:
        missed.append("span cost")
    if p99 > LATENCY_TARGET_MS:
        missed.append("latency")
    if missed and not args.quick:
        print(f"missed: {', '.join(missed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
