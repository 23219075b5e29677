"""Tests for `configure()` and the zero-code path: the event log beside a real OTLP export."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_eventlog import (
    ConfigError,
    DisabledEventLog,
    InMemoryEventLog,
    configure,
    get_activity_server,
    get_event_log,
    unconfigure,
)
from otel_eventlog.pipeline import instrument
from tests.otlp_receiver import otlp_receiver

LIVE_ZERO = {"observability": {"event_log": {"capture": {"live_interval_seconds": 0}}}}


@pytest.fixture(autouse=True)
def undo_configure() -> Iterator[None]:
    """Undo whatever a test's configure() attached, through the public way to do it."""
    yield
    unconfigure()


def test_configure_beside_an_otlp_export() -> None:
    """Every span reaches the OTLP receiver and every span event reaches the log, side by side."""
    threads, turns = 4, 10
    with otlp_receiver() as receiver:
        provider = TracerProvider()
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces"))
        )
        log = configure(LIVE_ZERO, tracer_provider=provider, logger_provider=LoggerProvider())
        tracer = provider.get_tracer("agent")

        def session(worker: int) -> None:
            for turn in range(turns):
                with tracer.start_as_current_span("turn") as span:
                    span.add_event("turn.started", {"worker": worker, "turn": turn})
                    span.add_event("turn.completed", {"worker": worker, "turn": turn})

        workers = [threading.Thread(target=session, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        provider.force_flush()
        spans = receiver.wait_for(threads * turns)
        provider.shutdown()
    assert len(spans) == threads * turns
    exported = {
        (span.trace_id.hex(), span.span_id.hex(), event.name, event.time_unix_nano)
        for span in spans
        for event in span.events
    }
    logged = {(e.trace_id, e.span_id, e.kind, round(e.timestamp * 1_000_000_000)) for e in log.query()}
    assert len(logged) == len(log.query()) == 2 * threads * turns
    assert {(t, s, k) for t, s, k, _ in logged} == {(t, s, k) for t, s, k, _ in exported}
    for (_, _, _, logged_ns), (_, _, _, exported_ns) in zip(sorted(logged), sorted(exported), strict=True):
        assert abs(logged_ns - exported_ns) < 1_000  # the same instant, up to float rounding


def test_configure_leaves_the_other_processors_working() -> None:
    """A provider's existing processor keeps getting every span after configure()."""
    with otlp_receiver() as receiver:
        provider = TracerProvider()
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces"))
        )
        configure(LIVE_ZERO, tracer_provider=provider, logger_provider=LoggerProvider())
        with provider.get_tracer("agent").start_as_current_span("turn"):
            pass
        provider.force_flush()
        [span] = receiver.wait_for(1)
        provider.shutdown()
    assert span.name == "turn"


def test_configure_captures_all_three_sources() -> None:
    """Span events, OpenTelemetry log records and stdlib records all reach the returned log."""
    tracer_provider, logger_provider = TracerProvider(), LoggerProvider()
    log = configure(LIVE_ZERO, tracer_provider=tracer_provider, logger_provider=logger_provider)
    assert get_event_log() is log
    logger = logging.getLogger("app.pipeline")
    logger.setLevel(logging.INFO)
    with tracer_provider.get_tracer("agent").start_as_current_span("turn") as span:
        span.add_event("turn.started")
        logger_provider.get_logger("agent").emit(event_name="tool.called")
        logger.info("done", extra={"event_name": "turn.completed"})
    logger.setLevel(logging.NOTSET)
    assert sorted(e.kind for e in log.query()) == ["tool.called", "turn.completed", "turn.started"]
    assert len({e.trace_id for e in log.query()}) == 1
    tracer_provider.shutdown()


def test_configure_applies_the_capture_section() -> None:
    """Filters and lifecycle entries from the config reach the processors."""
    provider = TracerProvider()
    config = {
        "observability": {
            "event_log": {
                "max_entries": 50,
                "capture": {
                    "include": ["turn.*", "span.*"],
                    "span_lifecycle": True,
                    "live_interval_seconds": 0,
                    "logging": False,
                },
            }
        }
    }
    log = configure(config, tracer_provider=provider, logger_provider=LoggerProvider())
    with provider.get_tracer("agent").start_as_current_span("turn") as span:
        span.add_event("turn.started")
        span.add_event("heartbeat")
    assert [e.kind for e in log.query()] == ["span.started", "turn.started", "span.ended"]
    assert isinstance(log, InMemoryEventLog)
    assert log.max_entries == 50
    assert not any(type(h).__name__ == "EventLogHandler" for h in logging.getLogger().handlers)
    provider.shutdown()


def test_configure_starts_the_activity_server_when_enabled() -> None:
    """With activity.enabled, configure() serves the log over HTTP, as configured."""
    config = {
        "observability": {
            "event_log": {"capture": {"live_interval_seconds": 0, "logging": False}},
            "activity": {"enabled": True, "port": 0, "token": "s3cret"},
        }
    }
    provider = TracerProvider()
    log = configure(config, tracer_provider=provider, logger_provider=LoggerProvider())
    server = get_activity_server()
    assert server is not None
    try:
        with provider.get_tracer("agent").start_as_current_span("turn") as span:
            span.add_event("turn.started")
        request = urllib.request.Request(server.url + "activity", headers={"Authorization": "Bearer s3cret"})
        with urllib.request.urlopen(request, timeout=10) as response:
            page = json.load(response)
        assert [e["kind"] for e in page["events"]] == ["turn.started"]
        assert page["epoch"] == log.epoch
    finally:
        provider.shutdown()


def test_configure_with_the_log_disabled_attaches_nothing() -> None:
    """backend: disabled gives a DisabledEventLog and adds no processor or handler."""
    provider = TracerProvider()
    handlers = list(logging.getLogger().handlers)
    log = configure("observability:\n  event_log:\n    backend: off\n", tracer_provider=provider)
    assert isinstance(log, DisabledEventLog)
    assert logging.getLogger().handlers == handlers
    assert provider._active_span_processor._span_processors == ()  # nothing attached


def test_configure_refuses_a_bad_config() -> None:
    """A wrong config fails before anything is attached, naming the key."""
    provider = TracerProvider()
    with pytest.raises(ConfigError, match=r"observability.event_log.capture.span_lifecycle: expected true"):
        configure(
            {"observability": {"event_log": {"capture": {"span_lifecycle": "yes"}}}}, tracer_provider=provider
        )
    assert provider._active_span_processor._span_processors == ()


def test_unconfigure_takes_back_everything_configure_attached() -> None:
    """After unconfigure() the handler is gone, the processors ignore new work, server and log are closed."""
    config = {
        "observability": {
            "event_log": {"capture": {"live_interval_seconds": 0.05}},
            "activity": {"enabled": True, "port": 0},
        }
    }
    provider, loggers = TracerProvider(), LoggerProvider()
    handlers = list(logging.getLogger().handlers)
    log = configure(config, tracer_provider=provider, logger_provider=loggers)
    server = get_activity_server()
    assert server is not None
    assert get_event_log() is log
    tracer = provider.get_tracer("agent")
    with tracer.start_as_current_span("session") as session:
        session.add_event("before")
        unconfigure()  # moves what the open span holds one last time
        session.add_event("after")
    with tracer.start_as_current_span("turn") as span:
        span.add_event("after")
    loggers.get_logger("agent").emit(event_name="after")
    logging.getLogger("agent").warning("after", extra={"event_name": "after"})
    assert [e.kind for e in log.query()] == ["before"]
    assert logging.getLogger().handlers == handlers
    assert log.closed
    assert (get_event_log(), get_activity_server()) == (None, None)
    with pytest.raises(urllib.error.URLError, match="refused"):
        urllib.request.urlopen(server.url + "activity", timeout=10)
    unconfigure()  # nothing left: does nothing
    provider.shutdown()


def test_unconfigure_with_a_log_undoes_only_that_configure_call() -> None:
    """unconfigure(log) detaches that call's handler and keeps the other's."""
    first = configure(LIVE_ZERO, tracer_provider=TracerProvider())
    second = configure(LIVE_ZERO, tracer_provider=TracerProvider())
    unconfigure(first)
    assert get_event_log() is second
    assert first.closed
    assert not second.closed
    logging.getLogger("agent").warning("go", extra={"event_name": "tool.called"})
    assert ([e.kind for e in first.query()], [e.kind for e in second.query()]) == ([], ["tool.called"])


def test_a_configure_that_fails_half_way_leaves_nothing_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    """When attaching fails after the server started, the server is stopped and nothing stays attached."""
    from opentelemetry import trace

    monkeypatch.setattr(trace, "get_tracer_provider", object)
    handlers = list(logging.getLogger().handlers)
    config = {"observability": {"activity": {"enabled": True, "port": 0}}}
    with pytest.raises(TypeError, match="not an SDK TracerProvider"):
        configure(config)
    assert (get_event_log(), get_activity_server()) == (None, None)
    assert logging.getLogger().handlers == handlers


def test_instrument_logs_a_bad_environment_and_lets_the_app_run(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """The opentelemetry-instrument hook reports a wrong variable as an error, and on stderr, not raising."""
    monkeypatch.setenv("OTEL_EVENTLOG_BACKEND", "postgres")
    with caplog.at_level(logging.ERROR, logger="otel_eventlog"):
        instrument()
    [record] = caplog.records
    assert "OTEL_EVENTLOG_BACKEND: unknown backend 'postgres'" in record.getMessage()
    assert capsys.readouterr().err.startswith(
        "otel-eventlog: not attached, the application runs without the event log: OTEL_EVENTLOG_BACKEND: "
    )


def test_under_opentelemetry_instrument_a_wrong_configuration_is_seen_on_stderr(tmp_path: Path) -> None:
    """The SDK's logging handler hides unhandled log records: the problems still reach the terminal."""
    instrument_command = Path(sys.executable).with_name("opentelemetry-instrument")
    result = run_python(
        "import otel_eventlog; print(otel_eventlog.get_event_log())",
        {
            "OTEL_EVENTLOG_CONFIG": str(tmp_path / "nope.yaml"),
            "OTEL_EVENTLOG_TTL": "5",
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
        },
        str(instrument_command),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "None\n"
    assert (
        "otel-eventlog: OTEL_EVENTLOG_TTL is not a variable otel_eventlog reads (did you mean"
        in result.stderr
    )
    assert (
        f"not attached, the application runs without the event log: {tmp_path / 'nope.yaml'}" in result.stderr
    )


def run_python(code: str, env: dict[str, str], *prefix: str) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(code)
    command = [*prefix, sys.executable, "-c", script] if prefix else [sys.executable, "-c", script]
    return subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, timeout=60, check=False
    )


def test_configure_sets_a_tracer_provider_only_when_none_is_set() -> None:
    """With no global provider configure() sets one; with one set it attaches to that one."""
    result = run_python(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        import otel_eventlog

        otel_eventlog.configure()
        created = trace.get_tracer_provider()
        assert isinstance(created, TracerProvider), created
        with trace.get_tracer("app").start_as_current_span("turn") as span:
            span.add_event("turn.started")
        created.force_flush()
        print(len(otel_eventlog.get_event_log().query()))
        """,
        {"OTEL_EVENTLOG_CONFIG": ""},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"


def test_zero_code_under_opentelemetry_instrument(tmp_path: Path) -> None:
    """An unchanged app run under opentelemetry-instrument exports over OTLP and fills the event log."""
    config = tmp_path / "observability.yaml"
    config.write_text("observability:\n  event_log:\n    max_entries: 100\n")
    instrument_command = Path(sys.executable).with_name("opentelemetry-instrument")
    with otlp_receiver() as receiver:
        result = run_python(
            """
            import json
            from opentelemetry import trace
            import otel_eventlog

            tracer = trace.get_tracer("agent")
            with tracer.start_as_current_span("session") as session:
                session.add_event("session.started", {"user": "ada"})
                with tracer.start_as_current_span("turn") as turn:
                    turn.add_event("turn.started", {"turn": 1})
            trace.get_tracer_provider().force_flush()
            print(json.dumps([e.to_dict() for e in otel_eventlog.get_event_log().query()]))
            """,
            {
                "OTEL_EVENTLOG_CONFIG": str(config),
                "OTEL_SERVICE_NAME": "zero-code-agent",
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_METRICS_EXPORTER": "none",
                "OTEL_LOGS_EXPORTER": "none",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            },
            str(instrument_command),
        )
        assert result.returncode == 0, result.stderr
        spans = receiver.wait_for(2)
    events = json.loads(result.stdout)
    assert [(e["kind"], e["payload"]) for e in events] == [
        ("session.started", {"user": "ada"}),
        ("turn.started", {"turn": 1}),
    ]
    assert {span.name for span in spans} == {"session", "turn"}
    assert {e["trace_id"] for e in events} == {spans[0].trace_id.hex()}


def test_configure_warns_once_of_a_mistyped_variable(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An OTEL_EVENTLOG_* variable nothing reads is named, with what it may have meant, once a process."""
    monkeypatch.setenv("OTEL_EVENTLOG_TTL", "5")
    with caplog.at_level(logging.WARNING, logger="otel_eventlog"):
        configure("observability:\n  event_log:\n    backend: off\n", tracer_provider=TracerProvider())
        unconfigure()
        configure("observability:\n  event_log:\n    backend: off\n", tracer_provider=TracerProvider())
    warned = [record.getMessage() for record in caplog.records if "OTEL_EVENTLOG_TTL " in record.getMessage()]
    assert warned == [
        "otel_eventlog: OTEL_EVENTLOG_TTL is not a variable otel_eventlog reads "
        "(did you mean 'OTEL_EVENTLOG_TTL_SECONDS'?); it is ignored"
    ]


def test_configure_logs_the_url_of_the_page_it_serves(caplog: pytest.LogCaptureFixture) -> None:
    """With the Activity server enabled, configure() says at INFO where the page is, token included."""
    with caplog.at_level(logging.INFO, logger="otel_eventlog"):
        configure(
            {"observability": {"activity": {"enabled": True, "port": 0, "token": "s3cret"}}},
            tracer_provider=TracerProvider(),
        )
    server = get_activity_server()
    assert server is not None
    assert f"otel_eventlog: the Activity page is at {server.url}?token=s3cret" in caplog.messages
