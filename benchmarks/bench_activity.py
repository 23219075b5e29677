"""Benchmark the Activity server: page requests per second, and how soon an event reaches a stream.

Run it with ``python benchmarks/bench_activity.py`` (``--quick`` for a short smoke run). It reports:

- requests per second for ``GET /activity?since=<tip-10>`` on the stdlib Activity server, against the
  same server class answering every request with a fixed JSON body of the same size (the cost of
  HTTP itself), measured in alternating rounds in one run, best round of each;
- the time from `append` to the event arriving at a Server-Sent Events client, median and 99th
  percentile, over events sent one at a time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from otel_eventlog import InMemoryEventLog, start_activity_server


def fixed_json_server(body: bytes) -> ThreadingHTTPServer:
    """Start a server like the Activity server that answers everything with `body`."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Keep quiet, as the Activity server does."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True).start()
    return server


def requests_per_second(port: int, target: str, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        connection = http.client.HTTPConnection("127.0.0.1", port)
        connection.request("GET", target)
        response = connection.getresponse()
        response.read()
        assert response.status == 200
        connection.close()
    return count / (time.perf_counter() - start)


def stream_latencies(log: InMemoryEventLog, port: int, count: int) -> list[float]:
    """Append `count` events one at a time; return how long each took to reach a stream client."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", f"/activity/stream?since={log.read().latest_id}")
    response = connection.getresponse()
    latencies: list[float] = []
    received = threading.Event()

    def client() -> None:
        while len(latencies) < count:
            line = response.fp.readline()
            if line.startswith(b'data: {"id"'):
                sent = json.loads(line[6:])["payload"]["sent"]
                latencies.append(time.perf_counter() - sent)
                received.set()

    reader = threading.Thread(target=client, daemon=True)
    reader.start()
    for _ in range(count):
        received.clear()
        log.append("ping", {"sent": time.perf_counter()})
        assert received.wait(10)
    reader.join(10)
    connection.close()
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run; figures are rough")
    args = parser.parse_args()
    rounds, requests, pings = (2, 50, 20) if args.quick else (7, 500, 300)

    log = InMemoryEventLog()
    for n in range(1_000):
        log.append("tool.called", {"tool": "search", "turn": n})
    target = f"/activity?since={log.read().latest_id - 10}"
    with start_activity_server(log, port=0) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port)
        connection.request("GET", target)
        body = connection.getresponse().read()
        connection.close()
        baseline = fixed_json_server(body)
        best = [0.0, 0.0]
        for _ in range(rounds):
            best[0] = max(best[0], requests_per_second(baseline.server_address[1], target, requests))
            best[1] = max(best[1], requests_per_second(server.port, target, requests))
        baseline.shutdown()
        baseline.server_close()
        latencies = sorted(stream_latencies(log, server.port, pings))

    print(f"python {sys.version.split()[0]}, best of {rounds} alternating rounds of {requests} requests")
    print(f"  {f'fixed {len(body)}-byte JSON, same server class':44s} {best[0]:8.0f} requests/s")
    print(f"  {'GET /activity?since=<tip-10>':44s} {best[1]:8.0f} requests/s")
    median = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    print(f"  {f'append -> SSE client, {pings} events':44s} median {median:.2f} ms, p99 {p99:.2f} ms")
    print(f"{'/activity / fixed JSON requests per second':44s} {best[1] / best[0]:6.2f}  (no target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
