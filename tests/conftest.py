"""Shared fixtures: a manual clock, so that eviction by age is tested without sleeping."""

from __future__ import annotations

import pytest

from tests.helpers import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    """Return a manual clock starting at a fixed time."""
    return ManualClock()
