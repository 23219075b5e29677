"""`configure`: one call that builds the event log and plugs it into the OpenTelemetry pipeline.

It attaches, beside whatever processors the providers already have (the OTLP export above all):

- an `EventLogSpanProcessor` to the tracer provider (the given one, else the global one, which is
  created only if the application has not set one);
- an `EventLogRecordProcessor` to the logger provider (the given one, else the global one if it is
  an SDK ``LoggerProvider``);
- an `EventLogHandler` to the root `logging` logger, unless the config says ``logging: false``;

and it starts the Activity HTTP server when ``observability.activity.enabled`` is true.

`unconfigure` undoes every `configure` call: it removes the handler, shuts the processors down (an
OpenTelemetry provider cannot drop a processor, but a shut-down one ignores every span and record),
stops the server and closes the log, so that applications and tests need not reach into this module.

`instrument` is the same call for ``opentelemetry-instrument``: the package registers it as an
``opentelemetry_post_instrument`` entry point, so an application run under it gets the event log from
``OTEL_EVENTLOG_CONFIG`` and the ``OTEL_EVENTLOG_*`` variables without a code change.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import _logs, metrics, trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider

from otel_eventlog import _forks
from otel_eventlog._metrics import observe
from otel_eventlog.activity import ActivityServer, start_activity_server
from otel_eventlog.backends import DisabledEventLog, EventLog, Observable
from otel_eventlog.capture import (
    BeforeAppend,
    EventLogHandler,
    EventLogRecordProcessor,
    EventLogSpanProcessor,
)
from otel_eventlog.config import ObservabilityConfig, load_config, unknown_variables
from otel_eventlog.errors import ArgumentTypeError, EventLogError

__all__ = ["configure", "get_activity_server", "get_event_log", "instrument", "unconfigure"]

_logger = logging.getLogger(__name__)


_warned_variables: set[str] = set()


def _warn_of_unknown_variables() -> None:
    """Warn, once per process for each, of the ``OTEL_EVENTLOG_*`` variables set that nothing reads."""
    for problem in unknown_variables():
        if problem not in _warned_variables:
            _warned_variables.add(problem)
            _logger.warning("otel_eventlog: %s", problem)


@dataclass(eq=False)
class _Attached:
    """What one `configure` call built and attached, so that `unconfigure` can take it all back."""

    event_log: EventLog
    server: ActivityServer | None = None
    span_processor: EventLogSpanProcessor | None = None
    record_processor: EventLogRecordProcessor | None = None
    handler: EventLogHandler | None = None

    def detach(self) -> None:
        """Remove the handler, shut the processors down, stop the server and close the log."""
        if self.handler is not None:
            logging.getLogger().removeHandler(self.handler)
            self.handler.close()
        if self.span_processor is not None:
            self.span_processor.shutdown()
        if self.record_processor is not None:
            self.record_processor.shutdown()
        if self.server is not None:
            self.server.close()
        self.event_log.close()


class _Registry:
    """What each `configure` call attached, in order, behind a lock that survives a fork."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.attached: list[_Attached] = []
        _forks.track(self)

    def _locks_held_across_fork(self) -> tuple[threading.Lock, ...]:
        return (self.lock,)

    def _after_fork_in_child(self) -> None:  # nothing to resume
        self.lock = threading.Lock()


_registry = _Registry()


def configure(
    config: str | os.PathLike[str] | Mapping[str, Any] | ObservabilityConfig | None = None,
    *,
    tracer_provider: TracerProvider | None = None,
    logger_provider: LoggerProvider | None = None,
    before_append: BeforeAppend | None = None,
    meter_provider: MeterProvider | None = None,
) -> EventLog:
    """Build the event log from `config` and attach its processors; return the log.

    Call it once, at start-up, after the application set up its own providers (if it does): the
    processors already on them stay in place and keep working. `unconfigure` takes it all back.

    Args:
        config: What `load_config` takes: a YAML path or text, a mapping, an `ObservabilityConfig`,
            or ``None`` for ``OTEL_EVENTLOG_CONFIG`` and the defaults. ``OTEL_EVENTLOG_*`` variables
            apply on top (except to an `ObservabilityConfig`).
        tracer_provider: The SDK tracer provider to attach the span processor to. By default the
            global one; if none is set, a new ``TracerProvider`` is made and set as the global one.
        logger_provider: The SDK logger provider to attach the log record processor to. By default
            the global one, when it is an SDK ``LoggerProvider``; otherwise log records are not
            captured (the stdlib handler still is).
        before_append: Called with each `Entry` the three capture paths are about to write; returns
            it, a changed `Entry`, or ``None`` to drop it (see `EventLogSpanProcessor`).
        meter_provider: Where the library's own counters are reported as OpenTelemetry metrics
            (``otel_eventlog.events.appended``, ``.resident``, ``.evicted``, ...); by default the
            global one, which reports nothing until the application sets an SDK ``MeterProvider``.

    Returns:
        The event log, for readers. With ``backend: disabled`` it is a `DisabledEventLog` and no
        processor is attached.

    Raises:
        ConfigError: If the configuration is wrong.
        TypeError: If the global tracer provider is not an SDK ``TracerProvider`` and none was given.
        OSError: If the Activity server is enabled and its address cannot be bound.
        ValueError: If the Activity server is enabled beyond the loopback interface without a token
            and without ``allow_unauthenticated``.
    """
    settings = load_config(config)
    _warn_of_unknown_variables()
    if _registry.attached:
        _logger.warning("otel_eventlog: configure() was called before; attaching a second event log")
    attached = _Attached(settings.event_log.create_event_log())
    activity = settings.activity
    if activity.enabled:  # first, so that a port in use fails before anything is attached
        attached.server = start_activity_server(
            attached.event_log,
            activity.port,
            activity.addr,
            token=activity.token,
            limits=activity.limits(),
            allow_unauthenticated=activity.allow_unauthenticated,
        )
        _logger.info("otel_eventlog: the Activity page is at %s", attached.server.page_url)
    try:
        if not isinstance(attached.event_log, DisabledEventLog):
            _attach_capture(attached, settings, tracer_provider, logger_provider, before_append)
    except BaseException:
        attached.detach()  # nothing half-attached stays behind
        raise
    with _registry.lock:
        _registry.attached.append(attached)
    _observe(attached, meter_provider if meter_provider is not None else metrics.get_meter_provider())
    return attached.event_log


def _observe(attached: _Attached, meter_provider: MeterProvider) -> None:
    """Report the log's and the capture paths' counters as metrics while they stay attached."""
    log = attached.event_log
    if not isinstance(log, Observable):
        return
    capture = {
        path: part.stats
        for path, part in (
            ("span", attached.span_processor),
            ("log_record", attached.record_processor),
            ("logging", attached.handler),
        )
        if part is not None
    }
    observe(meter_provider, log.stats, capture, lambda: attached in _registry.attached)


def _attach_capture(
    attached: _Attached,
    settings: ObservabilityConfig,
    tracer_provider: TracerProvider | None,
    logger_provider: LoggerProvider | None,
    before_append: BeforeAppend | None,
) -> None:
    """Attach the three capture paths that the ``capture`` section asks for."""
    log, capture = attached.event_log, settings.event_log.capture
    filters: dict[str, Any] = {
        "include": capture.include,
        "exclude": capture.exclude,
        "before_append": before_append,
    }
    tracers = tracer_provider if tracer_provider is not None else _global_tracer_provider()
    attached.span_processor = EventLogSpanProcessor(
        log,
        span_lifecycle=capture.span_lifecycle,
        gen_ai_operations=capture.gen_ai_operations,
        span_attributes=capture.span_attributes,
        live_interval=capture.live_interval_seconds,
        **filters,
    )
    tracers.add_span_processor(attached.span_processor)
    loggers = logger_provider if logger_provider is not None else _logs.get_logger_provider()
    if isinstance(loggers, LoggerProvider):
        attached.record_processor = EventLogRecordProcessor(log, **filters)
        loggers.add_log_record_processor(attached.record_processor)
    if capture.logging:
        attached.handler = EventLogHandler(log, capture.logging_level, **filters)
        logging.getLogger().addHandler(attached.handler)


def unconfigure(event_log: EventLog | None = None) -> None:
    """Undo the `configure` call that built `event_log`, or every one (newest first) when ``None``.

    Removes the logging handler from the root logger, shuts the span and log record processors down
    (they stay on their providers, which cannot drop them, but ignore everything from then on, after
    moving what open spans still hold), stops the Activity server and closes the event log, waking
    its waiting readers. A tracer provider that `configure` set as the global one stays set:
    OpenTelemetry allows that only once per process. Safe to call when nothing is configured, and
    with a log that `configure` did not build (then it does nothing).
    """
    with _registry.lock:
        every = _registry.attached
        undone = [attached for attached in every if event_log is None or attached.event_log is event_log]
        _registry.attached = [attached for attached in every if attached not in undone]
    for attached in reversed(undone):
        attached.detach()


def get_event_log() -> EventLog | None:
    """Return the event log the last `configure` call built, or ``None`` before any (or after `unconfigure`).

    This is how readers reach the log that ``opentelemetry-instrument`` attached.
    """
    with _registry.lock:
        return _registry.attached[-1].event_log if _registry.attached else None


def get_activity_server() -> ActivityServer | None:
    """Return the Activity server the last `configure` call started, or ``None`` if it started none."""
    with _registry.lock:
        return _registry.attached[-1].server if _registry.attached else None


def _global_tracer_provider() -> TracerProvider:
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        return provider
    if isinstance(provider, trace.ProxyTracerProvider):  # nothing set yet: the SDK's, then
        created = TracerProvider()
        trace.set_tracer_provider(created)
        return created
    raise ArgumentTypeError(
        f"the global tracer provider is a {type(provider).__name__}, not an SDK TracerProvider: "
        "pass tracer_provider= to configure()"
    )


def instrument() -> None:
    """Configure the event log from the environment; the ``opentelemetry-instrument`` hook.

    A wrong configuration is logged as an error naming the problem, and the application runs on
    without the event log rather than failing to start. Since the OpenTelemetry SDK's own logging
    handler on the root logger keeps Python from printing log records nobody else handles, the
    problem, and any ``OTEL_EVENTLOG_*`` variable nothing reads, is also written to standard error:
    the one place a user who started the application sees.
    """
    for problem in unknown_variables():
        _say(f"otel-eventlog: {problem}")
    try:
        configure()
    except (EventLogError, OSError) as error:
        _logger.error("otel_eventlog: not attached: %s", error)
        _say(f"otel-eventlog: not attached, the application runs without the event log: {error}")


def _say(line: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # no stderr, or a closed one: the log has it
        print(line, file=sys.stderr, flush=True)
