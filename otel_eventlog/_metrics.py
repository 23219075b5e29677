"""The library's own counters as OpenTelemetry metrics, read when the application's meter collects.

Observable instruments on the ``otel_eventlog`` meter, whose callbacks read the ``stats()`` of the log
and the processors that `configure` attached: nothing is counted twice and nothing costs anything
until a reader collects. Without an SDK ``MeterProvider`` the instruments are the API's no-ops.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping

from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

from otel_eventlog._version import __version__

__all__ = ["observe"]

Stats = Callable[[], Mapping[str, int]]
# How long the log's counters, once read, serve the instruments: one read for all of them in a
# collection (counted from when the read ended), since a shared log's counters are a round trip to its
# store (Redis) each time.
_FRESH_SECONDS = 0.1


def observe(
    meter_provider: MeterProvider, log: Stats, capture: Mapping[str, Stats], alive: Callable[[], bool]
) -> None:
    """Register the instruments; they report while `alive()` is true.

    Args:
        meter_provider: Where the instruments are made.
        log: The event log's ``stats``.
        capture: Each capture path's ``stats``, by the name reported in the ``path`` attribute.
        alive: Whether the log is still attached (after `otel_eventlog.unconfigure`, nothing is reported).
    """
    meter = meter_provider.get_meter("otel_eventlog", __version__)
    read: tuple[float, Mapping[str, int]] = (-math.inf, {})

    def log_stats() -> Mapping[str, int]:
        nonlocal read
        if time.monotonic() - read[0] >= _FRESH_SECONDS:
            stats = log()
            read = (time.monotonic(), stats)  # from when it was read: a slow read serves as long
        return read[1]

    def from_log(
        *keys: str, attribute: str | None = None
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            if not alive():
                return []
            stats = log_stats()
            if attribute is None:
                return [Observation(sum(stats.get(key, 0) for key in keys))]
            return [Observation(stats.get(key, 0), {attribute: key.rpartition("_")[2]}) for key in keys]

        return callback

    def from_capture(key: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            if not alive():
                return []
            return [Observation(stats().get(key, 0), {"path": path}) for path, stats in capture.items()]

        return callback

    meter.create_observable_counter(
        "otel_eventlog.events.appended",
        [from_log("appended")],
        unit="{event}",
        description="Events given an id",
    )
    meter.create_observable_up_down_counter(
        "otel_eventlog.events.resident", [from_log("resident")], unit="{event}", description="Events kept now"
    )
    meter.create_observable_counter(
        "otel_eventlog.events.evicted",
        [from_log("evicted_by_count", "evicted_by_ttl", "evicted_by_bytes", "cleared", attribute="reason")],
        unit="{event}",
        description="Events no longer kept, by reason (count, ttl, bytes, cleared)",
    )
    meter.create_observable_up_down_counter(
        "otel_eventlog.events.resident_size",
        [from_log("resident_bytes")],
        unit="By",
        description="What the events kept now cost in memory, as estimated",
    )
    meter.create_observable_up_down_counter(
        "otel_eventlog.readers.waiting",
        [from_log("waiting_readers")],
        unit="{reader}",
        description="Readers waiting",
    )
    meter.create_observable_counter(
        "otel_eventlog.values.redacted", [from_log("redacted")], unit="{value}", description="Values redacted"
    )
    meter.create_observable_counter(
        "otel_eventlog.values.truncated",
        [from_log("truncated")],
        unit="{value}",
        description="Values cut to max_value_bytes or to fit max_bytes",
    )
    meter.create_observable_counter(
        "otel_eventlog.capture.failures",
        [from_capture("failures")],
        unit="{failure}",
        description="Failures on a capture path, counted instead of raised",
    )
    meter.create_observable_counter(
        "otel_eventlog.capture.dropped",
        [from_capture("dropped")],
        unit="{event}",
        description="Events dropped by before_append",
    )
