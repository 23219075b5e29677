"""Tests for the ``otel-eventlog`` command line, run as a user would: in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from otel_eventlog import __version__


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_EVENTLOG_")}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "otel_eventlog", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        check=False,
    )


def test_version() -> None:
    """--version prints the package version."""
    result = run("--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"otel-eventlog {__version__}")


def test_no_command_prints_usage_and_fails() -> None:
    """Without a command the usage is printed to stderr and the exit status is 2."""
    result = run()
    assert result.returncode == 2
    assert "check-config" in result.stderr


def test_check_config_prints_the_effective_config(tmp_path: Path) -> None:
    """A valid file prints its effective config, environment applied, and exits 0."""
    path = tmp_path / "obs.yaml"
    path.write_text("observability:\n  event_log:\n    backend: OFF\n    ttl_seconds: 60\n")
    result = run("check-config", str(path), env={"OTEL_EVENTLOG_MAX_ENTRIES": "500"})
    assert result.returncode == 0, result.stderr
    event_log = yaml.safe_load(result.stdout)["observability"]["event_log"]
    assert (event_log["backend"], event_log["ttl_seconds"], event_log["max_entries"]) == ("off", 60, 500)
    assert event_log["capture"]["logging_level"] == "INFO"


def test_check_config_reports_the_error_without_a_traceback(tmp_path: Path) -> None:
    """An invalid file prints one error line naming the key path and exits 1."""
    path = tmp_path / "obs.yaml"
    path.write_text("observability:\n  event_log:\n    max_entries: lots\n")
    result = run("check-config", str(path))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"otel-eventlog: error: {path}: observability.event_log.max_entries: "
        "expected a positive integer, got 'lots' (str)\n"
    )


def test_check_config_names_a_missing_file(tmp_path: Path) -> None:
    """A missing file is reported by name with exit status 1."""
    result = run("check-config", str(tmp_path / "absent.yaml"))
    assert result.returncode == 1
    assert "absent.yaml: config file not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_runs_the_agent_and_prints_its_feed() -> None:
    """The demo stops by itself after --duration and prints the events it read, session starts among them."""
    result = run("demo", "--duration", "1", "--sessions", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("session.started") == 2
    assert "events; the log holds" in result.stdout


def test_demo_reports_a_bad_config_without_a_traceback(tmp_path: Path) -> None:
    """A wrong config file is reported on one line with exit status 1."""
    path = tmp_path / "obs.yaml"
    path.write_text("observability:\n  event_log:\n    capture:\n      include: 5\n")
    result = run("demo", "--config", str(path), "--duration", "1")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"otel-eventlog: error: {path}: observability.event_log.capture.include: "
        "expected an event name or a list of them, got 5 (int)"
    )
