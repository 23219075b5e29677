"""Shared fixtures: a manual clock, and the Redis tests' servers and logs.

The clock lets eviction by age be tested without sleeping.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from otel_eventlog import RedisEventLog
from tests import redis_server
from tests.helpers import ManualClock
from tests.redis_server import RedisServer, stream_name


@pytest.fixture
def clock() -> ManualClock:
    """Return a manual clock starting at a fixed time."""
    return ManualClock()


@pytest.fixture
def url() -> str:
    """The shared throw-away server's URL."""
    return redis_server.shared().url


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A server of the test's own, which it may pause, kill or flush."""
    own = RedisServer()
    try:
        yield own
    finally:
        own.resume()
        own.stop()


@pytest.fixture
def log(url: str) -> Iterator[RedisEventLog]:
    """A log on a stream of its own."""
    made = RedisEventLog(url, stream=stream_name())
    yield made
    made.close()
