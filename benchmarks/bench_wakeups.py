"""Benchmark what waiting readers cost the writer: an append with 1,000 waiting threads or coroutines.

Run it with ``python benchmarks/bench_wakeups.py`` (``--quick`` for a short smoke run). The writer
appends events one at a time while 1,000 threads, or 1,000 coroutines on one event loop, long-poll the
log for a kind that never comes, so that each append wakes them all and they go back to waiting. The
figure is the writer's own CPU time per append (``time.thread_time``, which leaves out the time it
waits for the GIL while the readers run), against the same appends with nobody waiting, measured in
the same run. Target: within 2x. Exits 1 if the target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time

from otel_eventlog import InMemoryEventLog

TARGET = 2.0


def writer_cpu_per_append(log: InMemoryEventLog, appends: int) -> float:
    """Append `appends` events, pausing between them so readers settle; return CPU seconds per append."""
    spent = 0.0
    for n in range(appends):
        started = time.thread_time()
        log.append("tick", {"n": n})
        spent += time.thread_time() - started
        time.sleep(0.0005)  # let the woken readers run and wait again, as between real events
    return spent / appends


def with_threads(readers: int, appends: int) -> float:
    log = InMemoryEventLog(max_entries=100_000)
    ready = threading.Barrier(readers + 1)

    def reader() -> None:
        ready.wait()
        cursor = log.read().cursor
        while not log.closed:
            cursor = log.read(since=cursor, kinds="never", wait=30).cursor

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(readers)]
    for thread in threads:
        thread.start()
    ready.wait()
    time.sleep(0.2)  # the readers go to waiting
    try:
        return writer_cpu_per_append(log, appends)
    finally:
        log.close()
        for thread in threads:
            thread.join()


def with_coroutines(readers: int, appends: int) -> float:
    log = InMemoryEventLog(max_entries=100_000)
    loop = asyncio.new_event_loop()
    started = threading.Event()

    async def reader() -> None:
        cursor = log.read().cursor
        while not log.closed:
            cursor = (await log.read_async(since=cursor, kinds="never", wait=30)).cursor

    async def main() -> None:
        tasks = [asyncio.ensure_future(reader()) for _ in range(readers)]
        started.set()
        await asyncio.gather(*tasks)

    runner = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    runner.start()
    started.wait()
    time.sleep(0.2)  # the readers go to waiting
    try:
        return writer_cpu_per_append(log, appends)
    finally:
        log.close()
        runner.join()
        loop.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer readers and appends, for a smoke run")
    args = parser.parse_args(argv)
    readers, appends, rounds = (100, 200, 3) if args.quick else (1000, 1000, 5)
    alone, threads, coroutines = [], [], []
    for _ in range(rounds):  # alternating, so that a busy machine slows every side alike
        alone.append(with_threads(0, appends))
        threads.append(with_threads(readers, appends))
        coroutines.append(with_coroutines(readers, appends))
    base, on_threads, on_loops = (statistics.median(x) for x in (alone, threads, coroutines))
    print(f"python {sys.version.split()[0]}, {rounds} alternating rounds of {appends} appends; medians")
    print(f"  writer CPU per append, nobody waiting           {base * 1e6:8.1f} us")
    print(f"  writer CPU per append, {readers} waiting threads    {on_threads * 1e6:8.1f} us")
    print(f"  writer CPU per append, {readers} waiting coroutines {on_loops * 1e6:8.1f} us")
    ok = True
    for name, value in (("threads", on_threads), ("coroutines", on_loops)):
        ratio = value / base
        ok &= ratio <= TARGET
        verdict = "ok" if ratio <= TARGET else "MISSED"
        print(
            f"{readers} waiting {name:<10} / none             {ratio:6.2f}  (target <= {TARGET})  {verdict}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
