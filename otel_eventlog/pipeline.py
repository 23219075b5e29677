"""`configure`: one call that builds the event log and plugs it into the OpenTelemetry pipeline.

It attaches, beside whatever processors the providers already have (the OTLP export above all):

- an `EventLogSpanProcessor` to the tracer provider (the given one, else the global one, which is
  created only if the application has not set one);
- an `EventLogRecordProcessor` to the logger provider (the given one, else the global one if it is
  an SDK ``LoggerProvider``);
- an `EventLogHandler` to the root `logging` logger, unless the config says ``logging: false``;

and it starts the Activity HTTP server when ``observability.activity.enabled`` is true.

`instrument` is the same call for ``opentelemetry-instrument``: the package registers it as an
``opentelemetry_post_instrument`` entry point, so an application run under it gets the event log from
``OTEL_EVENTLOG_CONFIG`` and the ``OTEL_EVENTLOG_*`` variables without a code change.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from opentelemetry import _logs, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider

from otel_eventlog.activity import ActivityServer, start_activity_server
from otel_eventlog.backends import DisabledEventLog, EventLog
from otel_eventlog.config import ConfigError, ObservabilityConfig, load_config
from otel_eventlog.logs import EventLogHandler, EventLogRecordProcessor
from otel_eventlog.span_processor import EventLogSpanProcessor

__all__ = ["configure", "get_activity_server", "get_event_log", "instrument"]

_logger = logging.getLogger(__name__)

_configured: list[EventLog] = []  # what configure() built, in order
_servers: list[ActivityServer] = []  # the Activity servers it started


def configure(
    config: str | os.PathLike[str] | Mapping[str, Any] | ObservabilityConfig | None = None,
    *,
    tracer_provider: TracerProvider | None = None,
    logger_provider: LoggerProvider | None = None,
) -> EventLog:
    """Build the event log from `config` and attach its processors; return the log.

    Call it once, at start-up, after the application set up its own providers (if it does): the
    processors already on them stay in place and keep working.

    Args:
        config: What `load_config` takes: a YAML path or text, a mapping, an `ObservabilityConfig`,
            or ``None`` for ``OTEL_EVENTLOG_CONFIG`` and the defaults. ``OTEL_EVENTLOG_*`` variables
            apply on top (except to an `ObservabilityConfig`).
        tracer_provider: The SDK tracer provider to attach the span processor to. By default the
            global one; if none is set, a new ``TracerProvider`` is made and set as the global one.
        logger_provider: The SDK logger provider to attach the log record processor to. By default
            the global one, when it is an SDK ``LoggerProvider``; otherwise log records are not
            captured (the stdlib handler still is).

    Returns:
        The event log, for readers. With ``backend: disabled`` it is a `DisabledEventLog` and no
        processor is attached.

    Raises:
        ConfigError: If the configuration is wrong.
        TypeError: If the global tracer provider is not an SDK ``TracerProvider`` and none was given.
        OSError: If the Activity server is enabled and its address cannot be bound.
    """
    settings = load_config(config)
    if _configured:
        _logger.warning("otel_eventlog: configure() was called before; attaching a second event log")
    event_log = settings.event_log.create_event_log()
    _configured.append(event_log)
    activity = settings.activity
    if activity.enabled:  # first, so that a port in use fails before anything is attached
        _servers.append(
            start_activity_server(
                event_log, activity.port, activity.addr, token=activity.token, limits=activity.limits()
            )
        )
    if isinstance(event_log, DisabledEventLog):
        return event_log
    capture = settings.event_log.capture
    filters = {"include": capture.include, "exclude": capture.exclude}
    tracers = tracer_provider if tracer_provider is not None else _global_tracer_provider()
    tracers.add_span_processor(
        EventLogSpanProcessor(
            event_log,
            span_lifecycle=capture.span_lifecycle,
            live_interval=capture.live_interval_seconds,
            **filters,
        )
    )
    loggers = logger_provider if logger_provider is not None else _logs.get_logger_provider()
    if isinstance(loggers, LoggerProvider):
        loggers.add_log_record_processor(EventLogRecordProcessor(event_log, **filters))
    if capture.logging:
        logging.getLogger().addHandler(EventLogHandler(event_log, capture.logging_level, **filters))
    return event_log


def get_event_log() -> EventLog | None:
    """Return the event log the last `configure` call built, or ``None`` before any.

    This is how readers reach the log that ``opentelemetry-instrument`` attached.
    """
    return _configured[-1] if _configured else None


def get_activity_server() -> ActivityServer | None:
    """Return the Activity server the last `configure` call started, or ``None`` if none runs."""
    return _servers[-1] if _servers else None


def _global_tracer_provider() -> TracerProvider:
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        return provider
    if isinstance(provider, trace.ProxyTracerProvider):  # nothing set yet: the SDK's, then
        created = TracerProvider()
        trace.set_tracer_provider(created)
        return created
    raise TypeError(
        f"the global tracer provider is a {type(provider).__name__}, not an SDK TracerProvider: "
        "pass tracer_provider= to configure()"
    )


def instrument() -> None:
    """Configure the event log from the environment; the ``opentelemetry-instrument`` hook.

    A wrong configuration is logged as an error naming the problem, and the application runs on
    without the event log rather than failing to start.
    """
    try:
        configure()
    except (ConfigError, TypeError, OSError) as error:
        _logger.error("otel_eventlog: not attached: %s", error)
