"""Self-observability: the counters of logs and processors, GET /activity/stats, and OpenTelemetry metrics."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from otel_eventlog import DisabledEventLog, InMemoryEventLog, configure, start_activity_server, unconfigure
from tests.helpers import ListEventLog, ManualClock

WAIT = 10.0  # seconds: only ever reached when a test fails


def test_the_log_counts_where_every_event_went(clock: ManualClock) -> None:
    """Every event appended is resident or evicted by count, age or bytes, or cleared, counted exactly."""
    log = InMemoryEventLog(ttl_seconds=10, max_entries=3, max_bytes=1300, max_value_bytes=500, now=clock)
    for _ in range(5):  # 2 pushed out by max_entries
        log.append("tick")
    clock.advance(11)
    log.append("late")  # the 3 older ones expire
    log.append("later")
    log.append("long", {"text": "x" * 1000})  # cut to 500 bytes; "late" no longer fits
    log.clear()  # 2 cleared
    log.append("after", {"password": "p"})
    log.query()  # redacts one value
    stats = log.stats()
    assert stats == {
        "appended": 9,
        "resident": 1,
        "resident_bytes": stats["resident_bytes"],
        "evicted_by_count": 2,
        "evicted_by_ttl": 3,
        "evicted_by_bytes": 1,
        "cleared": 2,
        "truncated": 1,
        "waiting_readers": 0,
        "redacted": stats["redacted"],  # shared by every log using the default policy
    }
    assert 0 < stats["resident_bytes"] < 1300
    assert log.stats()["redacted"] >= 1
    assert DisabledEventLog().stats()["resident"] == 0


def test_waiting_readers_are_counted_while_they_wait() -> None:
    """A long-polling reader shows in waiting_readers until it returns."""
    log = InMemoryEventLog()
    seen: list[int] = []
    reader = threading.Thread(target=lambda: log.read(since=0, wait=WAIT))
    reader.start()
    while not seen or seen[-1] == 0:  # the reader registers within a moment
        seen.append(log.stats()["waiting_readers"])
        if len(seen) > 100_000:
            break
    log.append("tick")
    reader.join(WAIT)
    assert seen[-1] == 1
    assert log.stats()["waiting_readers"] == 0


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=WAIT) as response:
        return json.load(response)


def test_the_stats_endpoint_serves_the_counters() -> None:
    """GET /activity/stats answers the log's counters and the open streams; a plain log tells what it can."""
    log = InMemoryEventLog()
    log.append("tick")
    with start_activity_server(log, port=0) as server:
        stats = get_json(server.url + "activity/stats")
    assert stats["epoch"] == log.epoch
    assert (stats["log"]["appended"], stats["log"]["resident"], stats["open_streams"]) == (1, 1, 0)
    plain = ListEventLog()
    plain.append("tick")
    with start_activity_server(plain, port=0) as server:  # type: ignore[arg-type]
        assert get_json(server.url + "activity/stats")["log"] == {"appended": 1, "resident": 1}


def test_configure_reports_the_counters_as_metrics_until_unconfigured() -> None:
    """With an SDK MeterProvider, the counters are OpenTelemetry metrics; after unconfigure, nothing."""
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    tracers = TracerProvider()
    log = configure(
        {"observability": {"event_log": {"max_entries": 2, "capture": {"live_interval_seconds": 0}}}},
        tracer_provider=tracers,
        meter_provider=meters,
    )
    for _ in range(3):
        log.append("tick")

    def points() -> dict[str, list[tuple[dict[str, Any], float]]]:
        data = reader.get_metrics_data()
        found: dict[str, list[tuple[dict[str, Any], float]]] = {}
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found[metric.name] = [
                        (dict(p.attributes or {}), p.value) for p in metric.data.data_points
                    ]
        return found

    try:
        metrics = points()
        assert metrics["otel_eventlog.events.appended"] == [({}, 3)]
        assert metrics["otel_eventlog.events.resident"] == [({}, 2)]
        assert ({"reason": "count"}, 1) in metrics["otel_eventlog.events.evicted"]
        assert ({"path": "span"}, 0) in metrics["otel_eventlog.capture.failures"]
    finally:
        unconfigure()
        tracers.shutdown()
    assert all(not values for values in points().values())
    meters.shutdown()


def test_one_collection_reads_the_log_counters_once() -> None:
    """The log's counters are read once for all the instruments of a collection: for Redis, a round trip."""
    from otel_eventlog._metrics import observe

    log = InMemoryEventLog()
    log.append("tick")
    reads = []

    def stats() -> Mapping[str, int]:
        reads.append(1)
        return log.stats()

    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    observe(meters, stats, {}, lambda: True)
    data = reader.get_metrics_data()
    assert data is not None
    names = {
        metric.name
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert {"otel_eventlog.events.appended", "otel_eventlog.values.truncated"} <= names
    assert len(reads) == 1
    meters.shutdown()
