"""Benchmark the in-memory log's byte budget: does resident memory stay under ``max_bytes``?

Run it with ``python benchmarks/bench_memory.py`` (``--quick`` for a short smoke run). Each scenario
runs in a fresh child process, which appends events whose payload holds a distinct 1 MiB string (a
whole prompt or completion, as GenAI instrumentations record them), and reports how far its peak
resident set grew past what it was before the log existed. The baseline is that same child's RSS
after it made the payloads' source text, measured in the same run. Scenarios:

- the defaults (``max_bytes`` 64 MiB, ``max_value_bytes`` 16 KiB): every value is cut to 16 KiB;
- ``max_value_bytes`` above the payload (2 MiB): only the byte budget bounds memory.

Target: peak RSS growth at most ``max_bytes`` plus 20 %. Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

MIB = 1024 * 1024

CHILD = """
import json, resource, sys
from otel_eventlog import InMemoryEventLog

count, max_value_bytes = int(sys.argv[1]), int(sys.argv[2])
source = "abcdefghijklmnopqrstuvwxyz0123456789" * (2 * 1024 * 1024 // 36)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
log = InMemoryEventLog(max_value_bytes=max_value_bytes)
for n in range(count):
    offset = n % 4096
    log.append("gen_ai.choice", {"n": n, "gen_ai.completion": source[offset : offset + 1024 * 1024]})
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
stats = log.stats()
print(json.dumps({"growth": peak - before, "max_bytes": log.max_bytes, **stats}))
"""


def run(count: int, max_value_bytes: int) -> dict[str, int]:
    """Run one scenario in a fresh interpreter and return what it reports."""
    output = subprocess.run(
        [sys.executable, "-c", CHILD, str(count), str(max_value_bytes)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, int] = json.loads(output)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run; figures are rough")
    args = parser.parse_args()
    count = 5_000 if args.quick else 100_000
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 0  # Linux and macOS report it
    failed = False
    print(f"python {sys.version.split()[0]}, {count:,} appends of a distinct 1 MiB string each")
    scenarios = (("defaults (values cut to 16 KiB)", 16 * 1024), ("values kept whole", 2 * MIB))
    for name, max_value_bytes in scenarios:
        result = run(count, max_value_bytes)
        ratio = result["growth"] / result["max_bytes"]
        ok = ratio <= 1.2
        failed |= not ok
        print(
            f"  {name:34s} peak RSS growth {result['growth'] / MIB:7.1f} MiB, "
            f"resident {result['resident']:5d} events ({result['resident_bytes'] / MIB:5.1f} MiB charged), "
            f"evicted by bytes {result['evicted_by_bytes']:6d}"
        )
        verdict = "ok" if ok else "MISSED"
        print(f"{'RSS growth / max_bytes, ' + name:60s} {ratio:6.2f}  (target <= 1.2)  {verdict}")
    return 1 if failed and not args.quick else 0


if __name__ == "__main__":
    sys.exit(main())
