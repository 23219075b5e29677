"""The live Activity page in a real headless Chromium, driven by Playwright.

Skipped, with the reason, when Chromium (Debian's ``/usr/bin/chromium``) or Playwright is missing;
``OTEL_EVENTLOG_REQUIRE_BROWSER=1`` turns the skip into a failure, as CI sets it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otel_eventlog import InMemoryEventLog, start_activity_server

CHROMIUM = "/usr/bin/chromium"
WAIT_MS = 10_000


def _browser_missing() -> str | None:
    if not shutil.which(CHROMIUM):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium, or a skip (a failure when a browser is required)."""
    missing = _browser_missing()
    if missing is not None:
        if os.environ.get("OTEL_EVENTLOG_REQUIRE_BROWSER") == "1":
            pytest.fail(f"OTEL_EVENTLOG_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def test_the_page_shows_events_live_and_filters_them(browser: Any, tmp_path: Path) -> None:
    """An event appended after the page loaded appears on it; the kind filter hides the others."""
    log = InMemoryEventLog()
    log.append("session.started", {"session": 1}, trace_id="4bf92f3577b34da6a3ce929d0e0e4736")
    with start_activity_server(log, port=0) as server:
        page = browser.new_page()
        try:
            page.goto(server.url)
            page.wait_for_selector("tr[data-kind='session.started']", timeout=WAIT_MS)
            page.wait_for_function(
                "document.getElementById('status').textContent === 'live'", timeout=WAIT_MS
            )
            log.append("turn.started", {"turn": 41})
            row = page.wait_for_selector("tr[data-kind='turn.started']", timeout=WAIT_MS)
            assert row is not None
            assert "#2" in row.inner_text()
            assert '{"turn":41}' in row.inner_text()
            assert "4bf92f35" in page.inner_text("tr[data-kind='session.started']")
            page.fill("#filter", "turn.*")
            assert page.is_hidden("tr[data-kind='session.started']")
            assert page.is_visible("tr[data-kind='turn.started']")
            page.screenshot(path=str(tmp_path / "activity.png"))
            assert (tmp_path / "activity.png").stat().st_size > 0
        finally:
            page.close()


def test_the_page_says_plainly_when_events_were_missed(browser: Any) -> None:
    """A page that starts from events already evicted shows how many it missed."""
    log = InMemoryEventLog(max_entries=3)
    for n in range(10):
        log.append("tick", {"n": n})
    with start_activity_server(log, port=0) as server:
        page = browser.new_page()
        try:
            page.goto(server.url + "?since=0")
            page.wait_for_selector("#missed:visible", timeout=WAIT_MS)
            assert page.inner_text("#missed").startswith("7 event(s) were missed")
            assert page.locator("tr[data-kind='tick']").count() == 3
        finally:
            page.close()


def test_the_page_passes_its_token_to_the_stream(browser: Any) -> None:
    """Opened with ?token=, the page's stream is let in."""
    log = InMemoryEventLog()
    log.append("turn.started")
    with start_activity_server(log, port=0, token="s3cret") as server:
        page = browser.new_page()
        try:
            page.goto(server.url + "?token=s3cret")
            page.wait_for_selector("tr[data-kind='turn.started']", timeout=WAIT_MS)
        finally:
            page.close()


def test_the_page_follows_a_restarted_application_without_a_reload(browser: Any) -> None:
    """When the server comes back with a new log, the page reconnects, drops the old rows, shows the new."""
    old = InMemoryEventLog()
    for n in range(5):
        old.append("before.restart", {"n": n})
    server = start_activity_server(old, port=0)
    port = server.port
    page = browser.new_page()
    try:
        page.goto(server.url)
        page.wait_for_function(
            "document.querySelectorAll(\"tr[data-kind='before.restart']\").length === 5", timeout=WAIT_MS
        )
        server.close()  # the application stops; the page's stream reconnects with Last-Event-ID <epoch>-5
        new = InMemoryEventLog()
        new.append("after.restart")  # id 1: below the page's cursor, which only the epoch tells apart
        with start_activity_server(new, port=port):
            page.wait_for_selector("tr[data-kind='after.restart']", timeout=WAIT_MS)
            assert page.locator("tr[data-kind='before.restart']").count() == 0
    finally:
        page.close()
        server.close()
