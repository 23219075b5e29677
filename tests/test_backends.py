"""Tests for `create_event_log`, which picks a backend by name, and the `EventLog` protocol."""

from __future__ import annotations

import logging

import pytest

from otel_eventlog import DisabledEventLog, EventLog, InMemoryEventLog, create_event_log
from tests.helpers import ManualClock


@pytest.mark.parametrize("name", ["disabled", "off", "none", " OFF ", "Disabled", "\tnone\n"])
def test_disabled_names_give_the_disabled_log(name: str) -> None:
    """disabled, off and none, trimmed and in any case, give a DisabledEventLog."""
    assert isinstance(create_event_log(name), DisabledEventLog)


@pytest.mark.parametrize("name", ["memory", "", "  ", "MEMORY", " Memory "])
def test_memory_names_give_the_in_memory_log(name: str, caplog: pytest.LogCaptureFixture) -> None:
    """The name memory and the empty name give an InMemoryEventLog, without a warning."""
    assert isinstance(create_event_log(name), InMemoryEventLog)
    assert caplog.records == []


def test_memory_is_the_default() -> None:
    """Without a name, the in-memory backend is used."""
    assert isinstance(create_event_log(), InMemoryEventLog)


def test_unknown_name_falls_back_to_memory_with_a_warning_naming_it(caplog: pytest.LogCaptureFixture) -> None:
    """A typo gives an in-memory log and a warning that names the typo, never a disabled log."""
    with caplog.at_level(logging.WARNING, logger="otel_eventlog"):
        log = create_event_log("memroy")
    assert isinstance(log, InMemoryEventLog)
    assert len(caplog.records) == 1
    assert "'memroy'" in caplog.records[0].getMessage()


def test_bounds_flow_through_to_the_instance(clock: ManualClock) -> None:
    """ttl_seconds, max_entries and the clock reach the in-memory log."""
    log = create_event_log("memory", ttl_seconds=30, max_entries=5, now=clock)
    assert isinstance(log, InMemoryEventLog)
    assert (log.ttl_seconds, log.max_entries) == (30, 5)
    assert log.append("tick").timestamp == clock.now


def test_none_bounds_mean_the_defaults() -> None:
    """Bounds left as None give the backend's defaults."""
    log = create_event_log("memory")
    assert isinstance(log, InMemoryEventLog)
    assert (log.ttl_seconds, log.max_entries) == (3600, 10_000)


def test_the_disabled_log_takes_the_clock(clock: ManualClock) -> None:
    """The clock option reaches the disabled log too."""
    assert create_event_log("off", now=clock).append("tick").timestamp == clock.now


def test_unknown_options_and_bad_names_raise() -> None:
    """A backend option the backend does not take, or a name that is not a string, raises."""
    with pytest.raises(TypeError, match="backend 'memory' does not take the option"):
        create_event_log("memory", colour="blue")
    with pytest.raises(TypeError, match="backend must be a string, got int 3"):
        create_event_log(3)  # type: ignore[arg-type]


def test_every_backend_keeps_the_protocol() -> None:
    """Both backends are EventLogs by the runtime-checkable protocol."""
    assert isinstance(create_event_log("memory"), EventLog)
    assert isinstance(create_event_log("disabled"), EventLog)
