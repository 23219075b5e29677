"""The examples and benchmarks run on their own, as their docstrings say."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def test_quickstart_reads_by_cursor_and_reports_missed_events() -> None:
    """The quick start appends events, pages through them by cursor and shows a missed count."""
    result = run_script("examples/quickstart.py")
    assert result.returncode == 0, result.stderr
    assert "== read(since=0, limit=4): cursor=4 missed=0 latest_id=6" in result.stdout
    assert "== read(since=4): cursor=6 missed=0 latest_id=6" in result.stdout
    assert "read(since=0) of a ring of 8: cursor=9 missed=1 latest_id=9" in result.stdout


def test_agent_example_prints_live_events_from_open_session_spans() -> None:
    """The agent's feed shows each session's start, from its still-open span, long before its end."""
    result = run_script("examples/agent.py", "--duration", "1.5", "--sessions", "2")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("#") and line[1].isdigit()]
    kinds = [line.split()[2] for line in lines]
    assert kinds.count("session.started") == kinds.count("session.ended") >= 2
    assert "turn.started" in kinds
    assert "tool.called" in kinds or "turn.completed" in kinds
    # Each session's start is read while its span is open: before its end, which the span's end brings.
    traces = [line.split()[-1] for line in lines]
    for trace in set(traces):
        story = [kind for kind, t in zip(kinds, traces, strict=True) if t == trace]
        assert story[0] == "session.started", story
        assert story[-1] == "session.ended", story
    ids = [int(line.split()[0][1:]) for line in lines]
    assert ids == sorted(set(ids))  # each event once, by cursor (the span.* entries are not printed)


def test_event_log_benchmark_prints_its_ratios() -> None:
    """A quick run of the event log benchmark prints a ratio for each of its three targets."""
    result = run_script("benchmarks/bench_event_log.py", "--quick")
    assert result.returncode == 0, result.stderr
    for name in ("append / floor", "read last 10: 100k / 1k entries", "8-thread / 1-thread append"):
        assert re.search(rf"^{re.escape(name)}.*\d+\.\d\d  \(target", result.stdout, re.MULTILINE)


def test_processor_benchmark_prints_its_ratio() -> None:
    """A quick run of the span processor benchmark prints the overhead ratio."""
    result = run_script("benchmarks/bench_processor.py", "--quick")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^with event log / without\s+\d+\.\d\d  \(target", result.stdout, re.MULTILINE)


def test_processor_benchmark_counts_instructions_under_callgrind() -> None:
    """With --instructions, the span processor benchmark prints the ratio callgrind counts."""
    if shutil.which("valgrind") is None:
        missing = "valgrind is not on PATH: the benchmark's --instructions needs it"
        if os.environ.get("OTEL_EVENTLOG_REQUIRE_VALGRIND") == "1":
            pytest.fail(f"OTEL_EVENTLOG_REQUIRE_VALGRIND=1 but {missing}")
        pytest.skip(missing)
    result = run_script("benchmarks/bench_processor.py", "--instructions", "--quick")
    assert result.returncode == 0, result.stderr
    counts = re.findall(r"^  span \+ 2 events, BatchSpanProcessor.*?\s(\d+)$", result.stdout, re.MULTILINE)
    assert len(counts) == 2
    assert 100_000 < int(counts[0]) < int(counts[1])  # a span costs some 200,000 instructions on its own
    assert re.search(r"^with event log / without\s+\d+\.\d\d\d  \(target", result.stdout, re.MULTILINE)


def test_activity_benchmark_prints_its_figures() -> None:
    """A quick run of the Activity benchmark prints the request ratio and the stream latency."""
    result = run_script("benchmarks/bench_activity.py", "--quick")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^/activity / fixed JSON requests per second\s+\d+\.\d\d", result.stdout, re.MULTILINE)
    assert re.search(r"append -> SSE client, 20 events\s+median \d+\.\d\d ms", result.stdout)


def test_page_benchmark_prints_its_frame_times() -> None:
    """A quick run of the Activity page benchmark prints the frame times and their ratios."""
    from tests.test_activity_page import browser_missing

    missing = browser_missing()
    if missing is not None:
        if os.environ.get("OTEL_EVENTLOG_REQUIRE_BROWSER") == "1":
            pytest.fail(f"OTEL_EVENTLOG_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(missing)
    result = run_script("benchmarks/bench_page.py", "--quick")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^Activity page, during the flood\s+median\s+\d+\.\d ms", result.stdout, re.M)
    assert re.search(r"^Activity page / baseline, p95 frame time\s+\d+\.\d\d  \(target", result.stdout, re.M)


def test_redis_benchmark_prints_its_figures() -> None:
    """A quick run of the Redis benchmark prints the throughput ratio, the span cost and the latency."""
    from tests import redis_server

    redis_server.binary()  # skips (or fails, when Redis is required) without redis-server
    result = run_script("benchmarks/bench_redis.py", "--quick")
    assert result.returncode == 0, result.stderr
    assert re.search(
        r"^events per second: batched writer / one XADD per event\s+\d+\.\d\d", result.stdout, re.M
    )
    assert re.search(r"^cost per span on the app thread: redis / in-memory\s+\d+\.\d\d", result.stdout, re.M)
    assert re.search(r"p50 \d+\.\d\d ms, p99 \d+\.\d\d ms", result.stdout)
