"""Tests for the exception family: one base to catch, builtin bases kept for code that expects them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import otel_eventlog
from otel_eventlog import ConfigError, EventLogError, InMemoryEventLog, load_config
from otel_eventlog.errors import ArgumentTypeError, ArgumentValueError, BadRequest, TailError


@pytest.mark.parametrize(
    ("call", "builtin"),
    [
        (lambda: InMemoryEventLog().append(3), TypeError),  # type: ignore[arg-type]
        (lambda: InMemoryEventLog().append(""), ValueError),
        (lambda: InMemoryEventLog().read(since=-1), ValueError),
        (lambda: InMemoryEventLog().read(kinds=[""]), ValueError),
        (lambda: otel_eventlog.create_event_log(3), TypeError),  # type: ignore[arg-type]
        (lambda: otel_eventlog.EventLogSpanProcessor({}), TypeError),  # type: ignore[arg-type]
        (lambda: otel_eventlog.ActivityLimits(max_wait=0), ValueError),
        (lambda: load_config({"observability": {"event_log": {"ttl_seconds": "soon"}}}), ValueError),
    ],
)
def test_every_refusal_is_an_event_log_error_and_the_builtin_one(
    call: Callable[[], object], builtin: type[Exception]
) -> None:
    """Wrong arguments and config raise an EventLogError that is also the TypeError or ValueError expected."""
    with pytest.raises(EventLogError) as caught:
        call()
    assert isinstance(caught.value, builtin)


def test_the_family_tree() -> None:
    """The argument, config, request and tail errors all derive from EventLogError."""
    assert issubclass(ArgumentTypeError, TypeError)
    assert issubclass(ArgumentValueError, ValueError)
    assert issubclass(ConfigError, ValueError)
    for error in (ArgumentTypeError, ArgumentValueError, ConfigError, BadRequest, TailError):
        assert issubclass(error, EventLogError)


def test_errors_carry_what_went_wrong() -> None:
    """ConfigError names the path and file; BadRequest names the parameter."""
    config = ConfigError("expected a number", path="observability.event_log.ttl_seconds", source="app.yaml")
    assert str(config) == "app.yaml: observability.event_log.ttl_seconds: expected a number"
    assert (config.problem, config.path, config.source) == (
        "expected a number",
        "observability.event_log.ttl_seconds",
        "app.yaml",
    )
    request = BadRequest("since", "expected a non-negative integer")
    assert (request.parameter, request.problem, str(request)) == (
        "since",
        "expected a non-negative integer",
        "since: expected a non-negative integer",
    )


class Unrepresentable:
    """An object whose repr raises."""

    def __repr__(self) -> str:
        raise RuntimeError("no")


def test_a_value_that_cannot_be_shown_still_gives_a_clear_error() -> None:
    """The message names the argument and the value's type even when the value's repr raises."""
    with pytest.raises(
        TypeError,
        match=r"live_interval must be .* got <Unrepresentable instance at 0x[0-9a-f]+> \(Unrepresentable\)",
    ):
        otel_eventlog.EventLogSpanProcessor(InMemoryEventLog(), live_interval=Unrepresentable())  # type: ignore[arg-type]
