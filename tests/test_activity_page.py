"""The live Activity page in a real headless Chromium, driven by Playwright.

Skipped, with the reason, when Chromium (Debian's ``/usr/bin/chromium``) or Playwright is missing;
``OTEL_EVENTLOG_REQUIRE_BROWSER=1`` turns the skip into a failure, as CI sets it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from otel_eventlog import Entry, EventLogSpanProcessor, InMemoryEventLog, RedisEventLog, start_activity_server

CHROMIUM = "/usr/bin/chromium"
WAIT_MS = 10_000


def browser_missing() -> str | None:
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
    missing = browser_missing()
    if missing is not None:
        if os.environ.get("OTEL_EVENTLOG_REQUIRE_BROWSER") == "1":
            pytest.fail(f"OTEL_EVENTLOG_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()


TRACE_A = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACE_B = "0af7651916cd43dd8448eb211c80319c"


def _open(browser: Any, url: str, **options: Any) -> Any:
    """A page on `url`, once its stream is live; it fails the test on any script error."""
    page = browser.new_page(**options)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    page.wait_for_function("document.getElementById('status').textContent === 'live'", timeout=WAIT_MS)
    page.errors = errors
    return page


@contextmanager
def _viewing(browser: Any, log: InMemoryEventLog, query: str = "", **options: Any) -> Iterator[Any]:
    """Serve `log` and open its page (with `query`), live; close both at the end."""
    with start_activity_server(log, port=0) as server:
        page = _open(browser, server.url + query, **options)
        try:
            yield page
        finally:
            page.close()


def _rows(page: Any, kind: str) -> Any:
    return page.locator(f"#events .row[data-kind='{kind}']")


def test_the_page_shows_events_live_and_filters_them(browser: Any, tmp_path: Path) -> None:
    """An event appended after the page loaded appears on it; the kind filter hides the others."""
    log = InMemoryEventLog()
    log.append("session.started", {"session": 1}, trace_id=TRACE_A)
    with _viewing(browser, log) as page:
        page.wait_for_selector(".row[data-kind='session.started']", timeout=WAIT_MS)
        log.append("turn.started", {"turn": 41})
        row = page.wait_for_selector(".row[data-kind='turn.started']", timeout=WAIT_MS)
        assert row is not None
        assert "#2" in row.inner_text()
        assert row.inner_text().split("\n")[-1] == "turn 41"  # key and value, not raw JSON
        assert "4bf92f35" in page.inner_text(".row[data-kind='session.started']")
        assert page.inner_text(".cols").split() == ["ID", "TIME", "KIND", "TRACE", "DETAILS"]
        page.fill("#filter", "turn.*")
        assert page.is_hidden(".row[data-kind='session.started']")
        assert page.is_visible(".row[data-kind='turn.started']")
        page.screenshot(path=str(tmp_path / "activity.png"))
        assert (tmp_path / "activity.png").stat().st_size > 0
        assert page.errors == []


def test_rows_run_newest_first_by_time_with_times_of_day_and_times_ago(browser: Any) -> None:
    """Rows are ordered by when things happened, whatever order their ids came in; both times show."""
    log = InMemoryEventLog()
    now = time.time()
    log.append("later", timestamp=now - 5)
    log.append("earlier", timestamp=now - 65)  # a span event that reached the log after a later one
    with _viewing(browser, log) as page:
        page.wait_for_function("document.querySelectorAll('#events .row').length === 2", timeout=WAIT_MS)
        assert [row.get_attribute("data-kind") for row in page.query_selector_all("#events .row")] == [
            "later",
            "earlier",
        ]
        earlier = _rows(page, "earlier")
        assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", earlier.locator(".abs").inner_text())
        assert earlier.locator(".rel").inner_text() == "1m 5s ago"
        page.click("#times")
        assert earlier.locator(".abs").inner_text() == "1m 5s ago"
        assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", earlier.locator(".rel").inner_text())


def test_events_group_by_trace_under_their_session_and_filter_by_trace(browser: Any) -> None:
    """The trace view puts each trace's events together, in order, titled by its session."""
    log = InMemoryEventLog()
    for turn in (1, 2):
        for trace_id, session in ((TRACE_A, "alpha"), (TRACE_B, "beta")):
            log.append("turn.started", {"session": session, "turn": turn}, trace_id=trace_id)
    log.append("heartbeat")  # no trace
    with _viewing(browser, log) as page:
        page.wait_for_function("document.querySelectorAll('#events .row').length === 5", timeout=WAIT_MS)
        page.select_option("#view", "trace")
        groups = page.locator("#events .group")
        assert groups.count() == 3
        titles = [groups.nth(n).locator(".title b").inner_text() for n in range(3)]
        assert titles == ["no trace", "session beta · trace 0af76519", "session alpha · trace 4bf92f35"]
        alpha = page.locator(f"#events .group[data-trace='{TRACE_A}'] .row .id")
        assert alpha.all_inner_texts() == ["#1", "#3"]  # oldest first within a trace
        assert "2 events" in page.inner_text(f"#events .group[data-trace='{TRACE_A}'] .meta")
        page.locator(f"#events .group[data-trace='{TRACE_B}'] .trace").first.click()
        assert page.input_value("#trace") == TRACE_B
        assert page.locator("#events .row").count() == 2
        assert page.locator("#events .group").count() == 1
        page.select_option("#view", "flat")
        assert page.locator("#events .row").count() == 2  # the filter holds in the timeline too


def test_running_now_shows_open_spans_from_the_log_with_age_and_latest_event(browser: Any) -> None:
    """Spans an OpenTelemetry tracer started show under Running now, with their latest event, until they end.

    The session span started long before the page opened, 300 events back, beyond the stream's first
    page: the page finds it in the log's history.
    """
    log = InMemoryEventLog()
    provider = TracerProvider()
    processor = EventLogSpanProcessor(log, span_lifecycle=True, live_interval=0.05)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("test")
    session = tracer.start_span("session")
    with trace.use_span(session):
        session.add_event("session.started", {"session": 7})
        processor.force_flush()
        for n in range(300):
            log.append("noise", {"n": n})
        with start_activity_server(log, port=0) as server:
            page = _open(browser, server.url)
            try:
                page.wait_for_selector("#running-list .span .name:text-is('session')", timeout=WAIT_MS)
                # Its session is named by an event 300 back, read with the history too.
                page.wait_for_selector("#running-list .span:has-text('session 7')", timeout=WAIT_MS)
                with tracer.start_as_current_span("turn") as turn:
                    turn.add_event("turn.started", {"turn": 1})
                    page.wait_for_function(
                        "[...document.querySelectorAll('#running-list .span')].map(s => s.innerText)"
                        ".some(t => t.includes('turn') && t.includes('latest: turn.started'))",
                        timeout=WAIT_MS,
                    )
                    session_node = page.locator(
                        f"#running-list .span[data-span='{session.get_span_context().span_id:016x}']"
                    )
                    assert "latest: turn.started" in session_node.inner_text()  # a child's news is its news
                    assert re.search(r"\d+\.\ds", session_node.locator(".age").inner_text())
                    assert page.inner_text("#running-count") == "(2)"
                page.wait_for_function(
                    "document.getElementById('running-count').textContent === '(1)'", timeout=WAIT_MS
                )
                session.end()
                page.wait_for_selector("#running-list .hint:text-is('Nothing is running.')", timeout=WAIT_MS)
                assert page.errors == []
            finally:
                page.close()
                provider.shutdown()


def test_running_now_and_grouping_work_on_the_shared_redis_feed(browser: Any) -> None:
    """A page served by one process shows what another process's tracer is running, through Redis."""
    from tests import redis_server

    url, stream = redis_server.shared().url, redis_server.stream_name()
    writer, reader = RedisEventLog(url, stream=stream), RedisEventLog(url, stream=stream)
    provider = TracerProvider()
    provider.add_span_processor(EventLogSpanProcessor(writer, span_lifecycle=True, live_interval=0.05))
    try:
        with start_activity_server(reader, port=0) as server:
            page = _open(browser, server.url)
            try:
                with provider.get_tracer("test").start_as_current_span("agent run") as span:
                    span.add_event("session.started", {"session": "s-9"})
                    page.wait_for_selector("#running-list .span .name:text-is('agent run')", timeout=WAIT_MS)
                    page.select_option("#view", "trace")
                    title = page.wait_for_selector("#events .group .title b", timeout=WAIT_MS)
                    assert title is not None
                    assert title.inner_text().startswith("session s-9 · trace ")
                page.wait_for_selector("#running-list .hint:text-is('Nothing is running.')", timeout=WAIT_MS)
            finally:
                page.close()
    finally:
        provider.shutdown()
        writer.close()
        reader.close()


def test_running_now_says_what_it_needs_when_the_log_has_no_span_entries(browser: Any) -> None:
    """Without span.started / span.ended entries the panel names the setting that brings them."""
    log = InMemoryEventLog()
    log.append("turn.started")
    with _viewing(browser, log) as page:
        page.wait_for_selector("#running-list .hint", timeout=WAIT_MS)
        assert "span_lifecycle: true" in page.inner_text("#running-list")


def test_span_entries_feed_running_now_and_show_in_the_feed_on_request(browser: Any) -> None:
    """span.started / span.ended rows stay out of the feed unless asked for; the page says so when empty."""
    log = InMemoryEventLog()
    log.append("span.started", {"name": "session"}, trace_id=TRACE_A, span_id="00f067aa0ba902b7")
    with _viewing(browser, log) as page:
        page.wait_for_selector("#running-list .span .name:text-is('session')", timeout=WAIT_MS)
        assert page.inner_text("#empty").startswith(
            "Only span.started / span.ended entries so far: tick “span entries” to see them (1 event is"
        )
        page.check("#spans")
        assert _rows(page, "span.started").count() == 1
        log.append("turn.started", {"session": "s-1"}, trace_id=TRACE_A, span_id="00f067aa0ba902b7")
        page.wait_for_selector(
            "#running-list .span:has-text('session s-1'):has-text('latest: turn.started')",
            timeout=WAIT_MS,
        )


def test_pause_holds_new_events_and_counts_them_until_resumed(browser: Any) -> None:
    """While paused, new events wait and the button counts them; resuming shows them."""
    log = InMemoryEventLog()
    log.append("first")
    with _viewing(browser, log) as page:
        page.wait_for_selector(".row[data-kind='first']", timeout=WAIT_MS)
        page.click("#pause")
        assert page.inner_text("#status") == "paused"
        for n in range(5):
            log.append("while.paused", {"n": n})
        page.wait_for_function(
            "document.getElementById('pause').textContent === 'Resume (5 new)'", timeout=WAIT_MS
        )
        assert _rows(page, "while.paused").count() == 0
        page.click("#pause")
        page.wait_for_function(
            "document.querySelectorAll(\"#events .row[data-kind='while.paused']\").length === 5",
            timeout=WAIT_MS,
        )
        assert page.inner_text("#pause") == "Pause"
        assert page.inner_text("#status") == "live"


def test_payloads_read_as_fields_messages_and_folded_values(browser: Any) -> None:
    """GenAI messages show as messages; a long value is folded behind "more"; nested values as JSON."""
    log = InMemoryEventLog()
    messages = [
        {"role": "user", "parts": [{"type": "text", "content": "What is the weather in Paris?"}]},
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "name": "get_weather", "arguments": {"city": "Paris"}}],
        },
    ]
    log.append(
        "gen_ai.chat",
        {
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.input.messages": json.dumps(messages),
            "notes": "word " * 100,
            "usage": {"input_tokens": 41},
        },
    )
    log.append("gen_ai.choice", {"body": {"index": 0, "message": {"role": "assistant", "content": "Sunny."}}})
    with _viewing(browser, log) as page:
        chat = page.wait_for_selector(".row[data-kind='gen_ai.chat']", timeout=WAIT_MS)
        assert chat is not None
        assert page.locator(".row[data-kind='gen_ai.chat'] .message.user").inner_text() == (
            "USER What is the weather in Paris?"
        )
        assert "get_weather" in page.inner_text(".row[data-kind='gen_ai.chat'] .message.assistant")
        assert page.inner_text(".row[data-kind='gen_ai.choice'] .message.assistant").endswith("Sunny.")
        notes = page.locator(".row[data-kind='gen_ai.chat'] .kv", has_text="notes")
        assert notes.inner_text().endswith("word …more")  # cut at 160 characters
        notes.locator(".more").click()
        assert notes.inner_text().endswith("word less")
        assert '{"input_tokens":41}' in page.inner_text(".row[data-kind='gen_ai.chat']")


def test_an_event_the_page_cannot_lay_out_never_stops_the_feed(browser: Any) -> None:
    """Odd messages and a time no date can hold are shown as they are, and the events after them too."""
    log = InMemoryEventLog()
    with _viewing(browser, log) as page:
        odd = {"role": "assistant", "content": "hi"}
        for tool_calls in ({"x": 1}, [None], 5, [{"function": None}]):
            log.append("gen_ai.choice", {"messages": [{**odd, "tool_calls": tool_calls}]})
        log.append("nanoseconds", timestamp=float(time.time_ns()))
        log.append("after.them")
        page.wait_for_selector(".row[data-kind='after.them']", timeout=WAIT_MS)
        assert _rows(page, "gen_ai.choice").count() == 4
        assert str(time.time_ns())[:6] in _rows(page, "nanoseconds").inner_text()
        assert page.errors == []


def test_the_openai_instrumentation_s_message_events_read_as_messages(browser: Any) -> None:
    """gen_ai.user.message / gen_ai.assistant.message / gen_ai.tool.message bodies show as messages."""
    log = InMemoryEventLog()
    log.append("gen_ai.user.message", {"gen_ai.system": "openai", "body": {"content": "Weather in Paris?"}})
    call = {"id": "call_7Qx", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    log.append("gen_ai.assistant.message", {"body": {"tool_calls": [call]}})
    log.append("gen_ai.tool.message", {"body": {"id": "call_7Qx", "content": "21 C, sunny"}})
    with _viewing(browser, log) as page:
        page.wait_for_selector(".row[data-kind='gen_ai.tool.message']", timeout=WAIT_MS)
        user = ".row[data-kind='gen_ai.user.message'] .message.user"
        assert page.inner_text(user) == "USER Weather in Paris?"
        assert "get_weather" in page.inner_text(
            ".row[data-kind='gen_ai.assistant.message'] .message.assistant"
        )
        assert page.inner_text(".row[data-kind='gen_ai.tool.message'] .message.tool") == "TOOL 21 C, sunny"
        page.select_option("#view", "trace")
        page.click("#events .group .title")  # folded
        page.fill("#filter", "gen_ai.*")
        assert (
            page.get_attribute("#events .group .title", "aria-expanded") == "false"
        )  # still, after a redraw
        assert page.errors == []


def test_a_filter_that_matches_nothing_says_so_and_offers_to_clear_it(browser: Any) -> None:
    """An empty result is explained, with how many events the filters hide and a way back."""
    log = InMemoryEventLog()
    for _ in range(3):
        log.append("turn.started")
    with _viewing(browser, log) as page:
        page.wait_for_function("document.querySelectorAll('#events .row').length === 3", timeout=WAIT_MS)
        page.fill("#filter", "tool.*")
        assert page.inner_text("#empty").startswith(
            "No event on this page matches kind “tool.*” (3 events are hidden)."
        )
        page.click("#empty button")
        assert page.locator("#events .row").count() == 3
        assert page.is_hidden("#empty")


def test_the_page_fits_a_phone(browser: Any) -> None:
    """At 390 px wide nothing runs off the side: every column, payloads included, is on screen."""
    log = InMemoryEventLog()
    log.append("gen_ai.chat", {"gen_ai.request.model": "gpt-4o-mini", "text": "x" * 2000}, trace_id=TRACE_A)
    with _viewing(browser, log, viewport={"width": 390, "height": 844}) as page:
        page.wait_for_selector(".row[data-kind='gen_ai.chat']", timeout=WAIT_MS)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        box = page.locator(".row[data-kind='gen_ai.chat'] .payload").bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 390


def test_a_flood_of_100000_events_keeps_the_page_capped_and_current(browser: Any) -> None:
    """100,000 events streamed through the page: it counts each, keeps the newest 1,000, shows the last.

    How smooth the page stays meanwhile (its frame times) is measured in benchmarks/bench_page.py.
    """
    total = 100_000
    log = InMemoryEventLog(max_entries=total)
    with _viewing(browser, log) as page:
        for start in range(0, total, 5_000):
            log.extend(Entry("flood", {"n": n}) for n in range(start, start + 5_000))
        page.wait_for_function(
            "document.getElementById('counts').textContent.startsWith('100,000 received')",
            timeout=60_000,
        )
        page.wait_for_selector(f".row[data-id='{total}']", timeout=WAIT_MS)
        assert page.locator("#events .row").count() == 1_000
        assert "latest 1,000 kept" in page.inner_text("#counts")
        assert page.errors == []


def test_the_page_says_plainly_when_events_were_missed(browser: Any) -> None:
    """A page that starts from events already evicted shows how many it missed."""
    log = InMemoryEventLog(max_entries=3)
    for n in range(10):
        log.append("tick", {"n": n})
    with _viewing(browser, log, "?since=0") as page:
        page.wait_for_selector("#missed:visible", timeout=WAIT_MS)
        assert page.inner_text("#missed").startswith("7 event(s) were missed")
        assert page.locator("#events .row[data-kind='tick']").count() == 3
        rows = page.locator("#events .row")
        assert rows.count() == 4
        assert rows.nth(3).inner_text() == "⋯ 7 event(s) missed here ⋯"  # below what came after it


def test_the_page_passes_its_token_to_the_stream(browser: Any) -> None:
    """Opened with ?token=, the page's stream is let in."""
    log = InMemoryEventLog()
    log.append("turn.started")
    with start_activity_server(log, port=0, token="s3cret") as server:
        page = browser.new_page()
        try:
            page.goto(server.url + "?token=s3cret")
            page.wait_for_selector(".row[data-kind='turn.started']", timeout=WAIT_MS)
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
            "document.querySelectorAll(\".row[data-kind='before.restart']\").length === 5", timeout=WAIT_MS
        )
        server.close()  # the application stops; the page's stream reconnects with Last-Event-ID <epoch>-5
        new = InMemoryEventLog()
        new.append("after.restart")  # id 1: below the page's cursor, which only the epoch tells apart
        with start_activity_server(new, port=port):
            page.wait_for_selector(".row[data-kind='after.restart']", timeout=WAIT_MS)
            assert page.locator(".row[data-kind='before.restart']").count() == 0
            assert "began again" in page.inner_text("#restarted")
    finally:
        page.close()
        server.close()
