"""Refresh ``docs/activity-page.png``: the Activity page following ``otel-eventlog demo``.

Run it with ``python docs/screenshot.py`` (it needs Chromium at ``/usr/bin/chromium`` and Playwright, from
the test extras). It starts the demo on a free port, lets it work for a few seconds, and photographs
the page at 1280 x 860.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

OUT = Path(__file__).with_name("activity-page.png")


def main() -> None:
    """Start the demo, photograph its page after a few seconds, and stop the demo."""
    demo = subprocess.Popen(
        [sys.executable, "-m", "otel_eventlog", "demo", "--port", "0", "--duration", "30"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert demo.stdout is not None
        url = demo.stdout.readline().rsplit(" ", 1)[1].strip()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(url)
            time.sleep(8)  # a few turns of each session: model calls, tools, running spans
            page.screenshot(path=str(OUT))
            browser.close()
    finally:
        demo.terminate()
        demo.wait()
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
