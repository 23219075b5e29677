"""Benchmark the Activity page: how smooth it stays while 100,000 events stream through it.

Run it with ``python benchmarks/bench_page.py`` (``--quick`` for a short smoke run); it needs Chromium
at ``/usr/bin/chromium`` and Playwright (the test extras). In each round a fresh log and server stream
100,000 events, appended as fast as the log takes them, to a headless Chromium that records the time
between its animation frames. Rounds alternate between the Activity page and a baseline: a minimal page
on the same server whose `EventSource` only counts the events, which is what the browser itself spends
on receiving them (on a 2-core machine the server shares the CPU with it). It reports, over the rounds:

- the frame time of each page during the flood, median, 95th percentile and worst, and the ratio of the
  Activity page's 95th percentile to the baseline's (target: at most 2: drawing the rows, the running
  spans and the counts never costs more than receiving the events);
- how long each page took to receive all the events, against how long appending them took;
- the frame time of the idle Activity page, for scale (16.7 ms at 60 frames per second), and while a
  steady 1,000 events a second stream to it: a busy agent fleet, as opposed to a flood.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from otel_eventlog import Entry, InMemoryEventLog, start_activity_server

CHROMIUM = "/usr/bin/chromium"

# Records the time between animation frames, from the moment `window.frames_start()` is called.
FRAME_RECORDER = """
window.frameTimes = [];
let last = null;
function tick(now) {
  if (last !== null) window.frameTimes.push(now - last);
  last = now;
  requestAnimationFrame(tick);
}
window.frames_start = () => { window.frameTimes = []; last = null; };
requestAnimationFrame(tick);
"""

# The baseline: the same stream, each event only counted (and the count shown now and then).
BASELINE_PAGE = """<!doctype html><meta charset="utf-8">
<span id="counts"></span><span id="status"></span><script>
let received = 0;
const source = new EventSource("activity/stream");
source.onopen = () => { document.getElementById("status").textContent = "live"; };
source.onmessage = () => {
  received += 1;
  if (received % 1000 === 0) {
    document.getElementById("counts").textContent = received.toLocaleString("en") + " received";
  }
};
</script>"""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def one_round(
    browser: object, total: int, baseline: bool, idle_seconds: float
) -> tuple[list[float], list[float], float, float]:
    """Return the idle and the flood's frame times, the seconds appending took and until all arrived."""
    log = InMemoryEventLog(max_entries=total)
    with start_activity_server(log, port=0) as server:
        page = browser.new_page()  # type: ignore[attr-defined]
        try:
            if baseline:
                page.route(
                    server.url, lambda route: route.fulfill(content_type="text/html", body=BASELINE_PAGE)
                )
            page.goto(server.url)
            page.wait_for_function("document.getElementById('status').textContent === 'live'")
            page.evaluate(FRAME_RECORDER)
            page.wait_for_timeout(idle_seconds * 1000)
            idle = page.evaluate("window.frameTimes")
            page.evaluate("window.frames_start()")
            started = time.perf_counter()
            for start in range(0, total, 5_000):
                log.extend(
                    Entry("flood", {"n": n, "text": "an event of the flood"})
                    for n in range(start, start + 5_000)
                )
            appended = time.perf_counter() - started
            page.wait_for_function(
                f"document.getElementById('counts').textContent.startsWith('{total:,} received')",
                timeout=120_000,
            )
            if not baseline:
                page.wait_for_selector(f".row[data-id='{total}']")
            arrived = time.perf_counter() - started
            flood = page.evaluate("window.frameTimes")
        finally:
            page.close()
    return idle, flood, appended, arrived


def paced_round(browser: object, rate: int, seconds: float) -> list[float]:
    """Return the Activity page's frame times while `rate` events a second stream to it."""
    log = InMemoryEventLog()
    with start_activity_server(log, port=0) as server:
        page = browser.new_page()  # type: ignore[attr-defined]
        try:
            page.goto(server.url)
            page.wait_for_function("document.getElementById('status').textContent === 'live'")
            page.evaluate(FRAME_RECORDER)
            started = time.perf_counter()
            sent = 0
            while (elapsed := time.perf_counter() - started) < seconds:
                due = int(elapsed * rate)
                log.extend(Entry("paced", {"n": n, "text": "a paced event"}) for n in range(sent, due))
                sent = max(sent, due)
                time.sleep(0.005)
            page.wait_for_selector(f".row[data-id='{sent}']")
            return list(page.evaluate("window.frameTimes"))
        finally:
            page.close()


def line(name: str, frames: list[float]) -> str:
    return (
        f"{name:<34} median {statistics.median(frames):6.1f} ms, "
        f"p95 {percentile(frames, 0.95):6.1f} ms, worst {max(frames):6.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short round, for a smoke run")
    args = parser.parse_args()
    rounds, total, idle_seconds = (1, 20_000, 0.5) if args.quick else (3, 100_000, 2.0)
    rate = 1_000
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("Playwright is missing: pip install -e '.[test]'", file=sys.stderr)
        return 1
    idle: list[float] = []
    frames: dict[bool, list[float]] = {True: [], False: []}
    arrived: dict[bool, list[float]] = {True: [], False: []}
    appended: list[float] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            for n in range(rounds):
                for baseline in (False, True) if n % 2 == 0 else (True, False):
                    quiet, busy, took, seen = one_round(browser, total, baseline, idle_seconds)
                    if not baseline:
                        idle += quiet
                    frames[baseline] += busy
                    arrived[baseline].append(seen)
                    appended.append(took)
            paced = paced_round(browser, rate, idle_seconds * 2)
        finally:
            browser.close()
    ratio = percentile(frames[False], 0.95) / percentile(frames[True], 0.95)
    print(f"{total:,} events streamed to a page, {rounds} round(s) of each page")
    print(line("Activity page, idle", idle))
    print(line("Activity page, during the flood", frames[False]))
    print(line("baseline page, during the flood", frames[True]))
    print(f"Activity page / baseline, p95 frame time   {ratio:.2f}  (target <= 2)")
    print(line(f"Activity page, {rate:,} events/s", paced))
    steady = percentile(paced, 0.95) / percentile(idle, 0.95)
    print(f"{rate:,} events/s / idle, p95 frame time       {steady:.2f}")
    print(
        f"all events received: Activity page {statistics.median(arrived[False]):.2f} s, "
        f"baseline {statistics.median(arrived[True]):.2f} s "
        f"(appending them took {statistics.median(appended):.2f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
