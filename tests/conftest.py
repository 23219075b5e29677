"""Shared fixtures: a manual clock, so that eviction by age is tested without sleeping."""

from __future__ import annotations

import pytest


class ManualClock:
    """A clock that only moves when a test moves it."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        """Return the current reading."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by `seconds`."""
        self.now += seconds


@pytest.fixture
def clock() -> ManualClock:
    """Return a manual clock starting at a fixed time."""
    return ManualClock()
