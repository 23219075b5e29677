"""Benchmark the in-memory event log against baselines measured in the same run.

Run it with ``python benchmarks/bench_event_log.py`` (``--quick`` for a short smoke run). It prints:

- ns per ``append`` of a small payload against the floor: a ``collections.deque`` append, under a
  ``threading.Lock``, of a tuple holding the same fields (id from a counter, clock reading, kind,
  payload). Target: within 3x.
- for scale, a bare Python append doing only the steps every ``append``'s common path must: copy the
  payload, look at each item once to charge its size (the log's own look, `Limits.charge`), take the
  lock, fill a ring slot, keep the byte count, return an ``Event``; with the look and without. It has
  none of the real one's checks, sweeps and evictions. No target: it shows how much of the append's
  cost those steps alone take, in this interpreter, on this machine.
- ns per ``read`` of the last 10 events on a 100,000-entry log against a 1,000-entry log. Target: a
  ratio under 1.5 (finding the cursor does not depend on the log's size).
- appends per second from 8 threads against 1 thread. Target: at least 0.7x.

Each pair is measured alternately, several rounds, and the best round of each is compared, so that a
noisy neighbour slows both sides alike rather than one. Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable

from otel_eventlog import Event, InMemoryEventLog
from otel_eventlog._sizing import Limits

KIND = "turn.completed"
PAYLOAD = {"turn": 41, "tool": "search", "ok": True}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"


def best_ns_per_op(rounds: int, ops: int, *runs: Callable[[int], None]) -> list[float]:
    """Run each function `rounds` times, alternating, and return each one's best ns per op."""
    best = [float("inf")] * len(runs)
    for _ in range(rounds):
        for n, run in enumerate(runs):
            start = time.perf_counter_ns()
            run(ops)
            best[n] = min(best[n], (time.perf_counter_ns() - start) / ops)
    return best


class BareAppend:
    """A bare append: only the steps `InMemoryEventLog.append`'s common path must take, none of its checks."""

    __slots__ = ("bytes", "charge", "last_id", "lock", "now", "records", "sizes")

    def __init__(self, capacity: int) -> None:
        self.lock = threading.Lock()
        self.records: list[tuple[float, str, dict[str, object]] | None] = [None] * capacity
        self.sizes = [0] * capacity
        self.last_id = 0
        self.bytes = 0
        self.charge = Limits(16 * 1024, 64 * 1024 * 1024).charge
        self.now = time.time

    def append(self, kind: str, payload: dict[str, object]) -> Event:
        """Copy, size, store and return the event."""
        now = self.now()
        payload = payload.copy()
        size = self.charge(payload)
        with self.lock:
            event_id = self.last_id = self.last_id + 1
            slot = event_id % 10_000
            self.records[slot] = (now, kind, payload)
            self.bytes += size - self.sizes[slot]
            self.sizes[slot] = size
        return tuple.__new__(Event, (event_id, now, kind, payload, None, None))

    def append_unsized(self, kind: str, payload: dict[str, object]) -> Event:
        """Copy, store and return the event: the same without the look at each item."""
        now = self.now()
        payload = payload.copy()
        with self.lock:
            event_id = self.last_id = self.last_id + 1
            self.records[event_id % 10_000] = (now, kind, payload)
        return tuple.__new__(Event, (event_id, now, kind, payload, None, None))


def bench_append(rounds: int, ops: int) -> tuple[float, float, float, float, float]:
    lock = threading.Lock()
    floor_store: collections.deque[tuple[int, float, str, dict[str, object]]] = collections.deque(
        maxlen=10_000
    )
    counter = itertools.count(1)
    now = time.time

    def floor(n: int) -> None:
        for _ in range(n):
            with lock:
                floor_store.append((next(counter), now(), KIND, PAYLOAD))

    def appending(add: Callable[[str, dict[str, object]], object]) -> Callable[[int], None]:
        def run(n: int) -> None:
            for _ in range(n):
                add(KIND, PAYLOAD)

        return run

    log = InMemoryEventLog()

    def append_with_ids(n: int) -> None:
        add = log.append
        for _ in range(n):
            add(KIND, PAYLOAD, timestamp=1_700_000_000.5, trace_id=TRACE_ID, span_id=SPAN_ID)

    bare = BareAppend(10_000)
    floor_ns, append_ns, ids_ns, bare_ns, unsized_ns = best_ns_per_op(
        rounds,
        ops,
        floor,
        appending(log.append),
        append_with_ids,
        appending(bare.append),
        appending(bare.append_unsized),
    )
    return floor_ns, append_ns, ids_ns, bare_ns, unsized_ns


def bench_read(rounds: int, ops: int) -> tuple[float, float]:
    def filled(size: int) -> InMemoryEventLog:
        log = InMemoryEventLog(max_entries=size)
        for _ in range(size + size // 3):  # wrap the ring, as a long-running log has
            log.append(KIND, PAYLOAD)
        return log

    small, large = filled(1_000), filled(100_000)

    def reader(log: InMemoryEventLog) -> Callable[[int], None]:
        since = log.read(limit=0).latest_id - 10

        def read(n: int) -> None:
            for _ in range(n):
                log.read(since=since)

        return read

    small_ns, large_ns = best_ns_per_op(rounds, ops, reader(small), reader(large))
    return small_ns, large_ns


def bench_threads(rounds: int, ops: int, threads: int = 8) -> tuple[float, float]:
    """Return appends per second for one thread and for `threads` threads sharing one log."""

    def run_with(count: int) -> Callable[[int], None]:
        def run(n: int) -> None:
            log = InMemoryEventLog()
            per_thread = n // count
            start = threading.Barrier(count)

            def write() -> None:
                start.wait()
                for _ in range(per_thread):
                    log.append(KIND, PAYLOAD)

            workers = [threading.Thread(target=write) for _ in range(count)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()

        return run

    single_ns, multi_ns = best_ns_per_op(rounds, ops, run_with(1), run_with(threads))
    return 1e9 / single_ns, 1e9 / multi_ns


def bytes_per_event(count: int) -> float:
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    log = InMemoryEventLog(max_entries=count)
    for n in range(count):
        log.append(KIND, {"turn": n, "tool": "search", "ok": True})
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del log
    return (after - before) / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run; figures are rough")
    args = parser.parse_args()
    rounds, scale = (2, 1) if args.quick else (7, 20)

    floor_ns, append_ns, ids_ns, bare_ns, unsized_ns = bench_append(rounds, 10_000 * scale)
    small_ns, large_ns = bench_read(rounds, 2_000 * scale)
    single, multi = bench_threads(rounds, 8_000 * scale)
    memory = bytes_per_event(10_000)

    results = [
        ("append / floor", append_ns / floor_ns, "<=", 3.0),
        ("read last 10: 100k / 1k entries", large_ns / small_ns, "<", 1.5),
        ("8-thread / 1-thread append throughput", multi / single, ">=", 0.7),
    ]
    print(f"python {sys.version.split()[0]}, best of {rounds} alternating rounds")
    print(f"  floor: deque append under a lock      {floor_ns:8.0f} ns/op")
    print(f"  append(kind, payload)                 {append_ns:8.0f} ns/op")
    print(f"  append(..., timestamp, trace/span id) {ids_ns:8.0f} ns/op  ({ids_ns / floor_ns:.2f}x floor)")
    for name, ns in (("sizing", bare_ns), ("not sizing", unsized_ns)):
        print(f"  bare Python append, {name:17s} {ns:8.0f} ns/op  ({ns / floor_ns:.2f}x floor)")
    print(f"  read(since=tip-10), 1,000 entries     {small_ns:8.0f} ns/op")
    print(f"  read(since=tip-10), 100,000 entries   {large_ns:8.0f} ns/op")
    print(f"  append, 1 thread                      {single:8.0f} ops/s")
    print(f"  append, 8 threads                     {multi:8.0f} ops/s")
    print(f"  memory per resident event (small payload) {memory:6.0f} bytes")
    failed = False
    for name, ratio, op, target in results:
        ok = ratio <= target if op == "<=" else ratio < target if op == "<" else ratio >= target
        failed |= not ok
        print(f"{name:40s} {ratio:6.2f}  (target {op} {target})  {'ok' if ok else 'MISSED'}")
    return 1 if failed and not args.quick else 0


if __name__ == "__main__":
    sys.exit(main())
