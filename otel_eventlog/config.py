"""Configuration: the ``observability`` section of a YAML file, with ``OTEL_EVENTLOG_*`` overrides.

.. code-block:: yaml

    observability:
      event_log:
        backend: memory        # memory | disabled | redis
        ttl_seconds: 3600
        max_entries: 10000
        capture:
          include: ["turn.*", "tool.*"]   # event names or patterns; all when left out
          exclude: ["*.debug"]
          span_lifecycle: false           # span.started / span.ended entries
          gen_ai_operations: true         # a gen_ai.<operation> entry when a GenAI span ends
          span_attributes: ["gen_ai.*", "error.type"]  # span attributes carried into those entries
          live_interval_seconds: 0.1      # most an open span's event waits; 0: at span end only
          logging: true                   # stdlib log records that name an event
          logging_level: INFO
        redact:
          keys: [customer_email]          # redacted besides password, token, authorization, ...
          patterns: ["sk-[A-Za-z0-9]{20,}"]  # matches in string values are redacted too
        redis:                            # backend: redis; one feed for every process and host
          url: redis://127.0.0.1:6379/0   # rediss:// for TLS; a password in it is never printed
          stream: otel-eventlog
          queue_events: 10000             # waiting to be sent; beyond, the oldest are dropped
          batch_events: 500               # sent in one round trip at most
          timeout_seconds: 5              # for Redis to connect or answer
      activity:
        enabled: false         # configure() starts the HTTP server when true
        addr: 127.0.0.1
        port: 9450

Every key has an ``OTEL_EVENTLOG_*`` twin in the environment (`ENV_VARIABLES`), which wins over the file.
The config objects are frozen, keyword-only dataclasses that check themselves when built, so a bad value
fails at start-up with a `ConfigError` (a `ValueError`) naming its key path, never later on a hot path.
The rest of the YAML document belongs to the application and is ignored, and so are keys under
``observability`` that are not this library's, unless one looks like a misspelling of a section.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from otel_eventlog import _defaults
from otel_eventlog._checks import (
    check_count,
    check_seconds,
    describe,
    is_header_token,
    seconds_expected,
    shown,
)
from otel_eventlog.activity import ActivityLimits
from otel_eventlog.backends import BACKEND_NAMES, EventLog, create_event_log
from otel_eventlog.backends.redis import public_url, url_option_problem
from otel_eventlog.errors import ArgumentTypeError, ArgumentValueError, ConfigError
from otel_eventlog.redaction import Redaction

__all__ = [
    "CONFIG_ENV",
    "ENV_VARIABLES",
    "ActivityConfig",
    "CaptureConfig",
    "ConfigError",
    "EventLogConfig",
    "ObservabilityConfig",
    "RedactConfig",
    "RedisConfig",
    "load_config",
    "unknown_variables",
]

#: Names the environment variable that `load_config()` reads a YAML file from when given no source.
CONFIG_ENV = "OTEL_EVENTLOG_CONFIG"

_SECTION = "observability"
_EVENT_LOG = f"{_SECTION}.event_log"
_CAPTURE = f"{_EVENT_LOG}.capture"
_REDACT = f"{_EVENT_LOG}.redact"
_REDIS = f"{_EVENT_LOG}.redis"
_ACTIVITY = f"{_SECTION}.activity"
_INFO = logging.INFO  # the `logging` field of CaptureConfig hides the module in its body


def _seconds(*, positive: bool, finite: bool) -> Callable[[Any, str], float]:
    """Return the check of a number of seconds: `check_seconds`, failing with a `ConfigError`."""
    expected = seconds_expected(positive=positive, finite=finite)

    def check(value: object, path: str) -> float:
        try:
            return check_seconds(value, path, positive=positive, finite=finite)
        except ArgumentTypeError:
            raise ConfigError(f"expected {expected}, got {describe(value)}", path=path) from None
        except ArgumentValueError:
            raise ConfigError(f"expected {expected}, got {shown(value)}", path=path) from None

    return check


def _positive_int(value: object, path: str) -> int:
    try:
        return check_count(value, path)
    except (ArgumentTypeError, ArgumentValueError):  # a count is shown with its type, as ever
        raise ConfigError(f"expected a positive integer, got {describe(value)}", path=path) from None


_BYTE_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3}
_BYTE_UNITS.update({"kib": 1024, "mib": 1024**2, "gib": 1024**3})
_BYTE_SIZE = re.compile(r"\s*([0-9][0-9_]*)\s*([a-z]*)\s*", re.IGNORECASE | re.ASCII)


def _byte_size(value: object, path: str) -> int:
    """Read a size in bytes: a positive integer, or one with a unit (``64MiB``, ``16 KiB``, ``1GB``)."""
    if isinstance(value, str):
        match = _BYTE_SIZE.fullmatch(value) if len(value) < 40 else None
        unit = match.group(2).lower() if match else ""
        if match is None or unit not in _BYTE_UNITS:
            raise ConfigError(
                f"expected a size in bytes such as 65536 or '64MiB' (units: KiB, MiB, GiB, KB, MB, GB), "
                f"got {describe(value)}",
                path=path,
            )
        value = int(match.group(1).replace("_", "")) * _BYTE_UNITS[unit]
    try:
        return check_count(value, path)
    except (ArgumentTypeError, ArgumentValueError):
        raise ConfigError(f"expected a positive size in bytes, got {describe(value)}", path=path) from None


def _backend(value: object, path: str) -> str:
    if value is False:
        # YAML 1.1 reads an unquoted `off` (or `no`, `false`) as false: the user meant "disabled".
        return "off"
    if not isinstance(value, str):
        raise ConfigError(f"expected a backend name, got {describe(value)}", path=path)
    name = value.strip().lower()
    if name not in BACKEND_NAMES:
        known = sorted(BACKEND_NAMES - {""})
        raise ConfigError(
            f"unknown backend {shown(value)}{_did_you_mean(name, known)}; known: {', '.join(known)}",
            path=path,
        )
    return name or "memory"


def _names(value: object, path: str, noun: str = "event name") -> tuple[str, ...] | None:
    if value is None:
        return None
    names = [value] if isinstance(value, str) else value
    if isinstance(names, (list, tuple)):
        for name in names:
            if not isinstance(name, str) or not name.strip():
                raise ConfigError(f"expected {noun}s or patterns, got {describe(name)} among them", path=path)
        return tuple(name.strip() for name in names)
    raise ConfigError(f"expected an {noun} or a list of them, got {describe(value)}", path=path)


def _flag(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"expected true or false, got {describe(value)}", path=path)
    return value


def _level(value: object, path: str) -> int:
    if isinstance(value, str) and isinstance(logging.getLevelName(value.strip().upper()), int):
        level: int = logging.getLevelName(value.strip().upper())
        return level
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ConfigError(f"expected a logging level such as INFO or 20, got {describe(value)}", path=path)


def _did_you_mean(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _key_words(value: object, path: str) -> tuple[str, ...]:
    names = _names(value, path)
    return () if names is None else names


@dataclass(frozen=True, kw_only=True, slots=True)
class CaptureConfig:
    """The ``observability.event_log.capture`` section: which events reach the log, and how soon.

    Attributes:
        include: Event names or shell-style patterns to capture; ``None`` captures all.
        exclude: Event names or patterns never to capture.
        span_lifecycle: Whether each span adds ``span.started`` and ``span.ended`` entries.
        gen_ai_operations: Whether each GenAI operation span (``gen_ai.operation.name`` set) adds a
            ``gen_ai.<operation>`` entry when it ends.
        span_attributes: Span attribute names or patterns carried into the entries a span adds when
            it ends; ``[]`` carries none.
        live_interval_seconds: The most an event on an open span waits before it is in the log; ``0``
            moves span events only when spans end (and on ``force_flush``).
        logging: Whether `configure` attaches an `EventLogHandler` to the root logger.
        logging_level: The least level of the stdlib log records that handler captures.

    Raises:
        ConfigError: If a value has the wrong type or is out of range.
    """

    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None
    span_lifecycle: bool = False
    gen_ai_operations: bool = True
    span_attributes: tuple[str, ...] = _defaults.SPAN_ATTRIBUTES
    live_interval_seconds: float = _defaults.LIVE_INTERVAL_SECONDS
    logging: bool = True
    logging_level: int = _INFO

    def __post_init__(self) -> None:
        for name, check in _CAPTURE_FIELDS.items():
            object.__setattr__(self, name, check(getattr(self, name), f"{_CAPTURE}.{name}"))


_CAPTURE_FIELDS: dict[str, Callable[[Any, str], Any]] = {
    "include": _names,
    "exclude": _names,
    "span_lifecycle": _flag,
    "gen_ai_operations": _flag,
    "span_attributes": lambda value, path: _names(value, path, "attribute name") or (),
    "live_interval_seconds": _seconds(positive=False, finite=True),
    "logging": _flag,
    "logging_level": _level,
}


def _patterns(value: object, path: str) -> tuple[str, ...]:
    patterns = _key_words(value, path)
    try:
        Redaction(patterns=patterns)
    except ArgumentValueError as error:
        raise ConfigError(str(error).removeprefix("patterns: "), path=path) from None
    return patterns


@dataclass(frozen=True, kw_only=True, slots=True)
class RedactConfig:
    """The ``observability.event_log.redact`` section: which values readers never see.

    Attributes:
        enabled: Whether anything is redacted.
        keys: Key words to redact besides the defaults (one word, or two written apart).
        default_keys: Whether the default key words (``password``, ``token``, ``authorization``, ...)
            are redacted too.
        patterns: Regular expressions; what they match in string values is redacted.

    Raises:
        ConfigError: If a value has the wrong type or a pattern is not a valid regular expression.
    """

    enabled: bool = True
    keys: tuple[str, ...] = ()
    default_keys: bool = True
    patterns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name, check in _REDACT_FIELDS.items():
            object.__setattr__(self, name, check(getattr(self, name), f"{_REDACT}.{name}"))

    def redaction(self) -> Redaction:
        """Return the `Redaction` this section describes."""
        return Redaction(
            self.keys, default_keys=self.default_keys, patterns=self.patterns, enabled=self.enabled
        )


_REDACT_FIELDS: dict[str, Callable[[Any, str], Any]] = {
    "enabled": _flag,
    "keys": _key_words,
    "default_keys": _flag,
    "patterns": _patterns,
}


def _redis_url(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"expected a Redis URL, got {describe(value)}", path=path)
    if value.partition("://")[0].lower() not in ("redis", "rediss", "unix"):
        raise ConfigError(
            "expected a Redis URL (redis://host:6379/0, rediss://... for TLS, unix:///path), "
            f"got {public_url(value)!r}",
            path=path,
        )
    try:
        parts = urllib.parse.urlsplit(value)
        port = parts.port  # refuses a port that is not a number from 0 to 65535
    except ValueError:
        port = -1
    if port == -1 or (parts.scheme.lower() != "unix" and not parts.hostname):
        raise ConfigError(
            f"expected a Redis URL with a host and a port from 1 to 65535, got {public_url(value)!r} (a /, "
            "# or ? in a password must be percent-encoded)",
            path=path,
        )
    problem = url_option_problem(value)
    if problem is not None:
        raise ConfigError(f"{problem}, in the Redis URL {public_url(value)!r}", path=path)
    return value


def _stream(value: object, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"expected a stream name, got {describe(value)}", path=path)
    return value.strip()


@dataclass(frozen=True, kw_only=True, slots=True)
class RedisConfig:
    """The ``observability.event_log.redis`` section: where the ``redis`` backend keeps the shared log.

    Attributes:
        url: The Redis server (``redis://``, ``rediss://`` for TLS, ``unix://``); a password goes in
            it, better through ``OTEL_EVENTLOG_REDIS_URL`` than in a file. Never printed.
        stream: The stream's key; every process that names it shares one log.
        queue_events: How many events may wait to be sent; beyond it the oldest are dropped, counted.
        batch_events: The most events sent in one round trip.
        timeout_seconds: How long a call waits for Redis to connect or answer.

    Raises:
        ConfigError: If a value has the wrong type or is out of range.
    """

    url: str = field(default=_defaults.REDIS_URL, repr=False)
    stream: str = _defaults.REDIS_STREAM
    queue_events: int = _defaults.REDIS_QUEUE_EVENTS
    batch_events: int = _defaults.REDIS_BATCH_EVENTS
    timeout_seconds: float = _defaults.REDIS_TIMEOUT_SECONDS

    def __post_init__(self) -> None:
        for name, check in _REDIS_FIELDS.items():
            object.__setattr__(self, name, check(getattr(self, name), f"{_REDIS}.{name}"))

    def options(self) -> dict[str, Any]:
        """Return the options `create_event_log` passes to `RedisEventLog`."""
        return {
            "url": self.url,
            "stream": self.stream,
            "queue_events": self.queue_events,
            "batch_events": self.batch_events,
            "timeout_seconds": self.timeout_seconds,
        }


_REDIS_FIELDS: dict[str, Callable[[Any, str], Any]] = {
    "url": _redis_url,
    "stream": _stream,
    "queue_events": _positive_int,
    "batch_events": _positive_int,
    "timeout_seconds": _seconds(positive=True, finite=True),
}


@dataclass(frozen=True, kw_only=True, slots=True)
class EventLogConfig:
    """The ``observability.event_log`` section: which backend keeps the events, and for how long.

    Attributes:
        backend: ``memory`` (the default), ``disabled`` (also ``off`` and ``none``) or ``redis``.
            Stored trimmed and in lower case.
        ttl_seconds: How long an event stays in the log, in seconds.
        max_entries: How many events the log keeps at most.
        max_bytes: What the events kept may cost together, in bytes (an integer, or a string with a
            unit: ``64MiB``); the oldest are evicted past it.
        max_value_bytes: How many bytes of one string value are kept; longer ones are cut, marked.
        capture: The ``capture`` section: what the OpenTelemetry processors put in the log.
        redact: The ``redact`` section: which values readers never see.
        redis: The ``redis`` section: where the ``redis`` backend keeps the log.

    Raises:
        ConfigError: If a value has the wrong type or is out of range.
    """

    backend: str = "memory"
    ttl_seconds: float = _defaults.TTL_SECONDS
    max_entries: int = _defaults.MAX_ENTRIES
    max_bytes: int = _defaults.MAX_BYTES
    max_value_bytes: int = _defaults.MAX_VALUE_BYTES
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    redact: RedactConfig = field(default_factory=RedactConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)

    def __post_init__(self) -> None:
        for name, check in _EVENT_LOG_FIELDS.items():
            object.__setattr__(self, name, check(getattr(self, name), f"{_EVENT_LOG}.{name}"))
        if not isinstance(self.capture, CaptureConfig):
            raise ConfigError(f"expected a CaptureConfig, got {describe(self.capture)}", path=_CAPTURE)
        if not isinstance(self.redact, RedactConfig):
            raise ConfigError(f"expected a RedactConfig, got {describe(self.redact)}", path=_REDACT)
        if not isinstance(self.redis, RedisConfig):
            raise ConfigError(f"expected a RedisConfig, got {describe(self.redis)}", path=_REDIS)

    def create_event_log(self, **backend_options: Any) -> EventLog:
        """Build the event log this section describes, through `create_event_log`."""
        options = {
            "redaction": self.redact.redaction(),
            "max_bytes": self.max_bytes,
            "max_value_bytes": self.max_value_bytes,
            **(self.redis.options() if self.backend == "redis" else {}),
            **backend_options,
        }
        return create_event_log(self.backend, self.ttl_seconds, self.max_entries, **options)


_EVENT_LOG_FIELDS: dict[str, Callable[[Any, str], Any]] = {
    "backend": _backend,
    "ttl_seconds": _seconds(positive=True, finite=False),
    "max_entries": _positive_int,
    "max_bytes": _byte_size,
    "max_value_bytes": _byte_size,
}


def _comma_list(text: str) -> list[str]:
    return [name.strip() for name in text.split(",")]


def _pattern_list(text: str) -> object:
    """Read regular expressions from a variable: a YAML flow list (``["a,b", "c"]``) or just one."""
    if text.startswith("["):
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:  # the field's check names the variable and shows the text
            raise ValueError(text) from None
    return [text]


def _boolean(text: str) -> object:
    return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}.get(
        text.lower(), text
    )


#: Environment variables that override keys of the ``observability`` section (by their path under
#: it), and how to read them.
_ENV_OVERRIDES: dict[str, tuple[str, Callable[[str], object]]] = {
    "OTEL_EVENTLOG_BACKEND": ("event_log.backend", str),
    "OTEL_EVENTLOG_TTL_SECONDS": ("event_log.ttl_seconds", float),
    "OTEL_EVENTLOG_MAX_ENTRIES": ("event_log.max_entries", int),
    "OTEL_EVENTLOG_MAX_BYTES": ("event_log.max_bytes", str),
    "OTEL_EVENTLOG_MAX_VALUE_BYTES": ("event_log.max_value_bytes", str),
    "OTEL_EVENTLOG_CAPTURE_INCLUDE": ("event_log.capture.include", _comma_list),
    "OTEL_EVENTLOG_CAPTURE_EXCLUDE": ("event_log.capture.exclude", _comma_list),
    "OTEL_EVENTLOG_SPAN_LIFECYCLE": ("event_log.capture.span_lifecycle", _boolean),
    "OTEL_EVENTLOG_GEN_AI_OPERATIONS": ("event_log.capture.gen_ai_operations", _boolean),
    "OTEL_EVENTLOG_SPAN_ATTRIBUTES": ("event_log.capture.span_attributes", _comma_list),
    "OTEL_EVENTLOG_LIVE_INTERVAL_SECONDS": ("event_log.capture.live_interval_seconds", float),
    "OTEL_EVENTLOG_LOGGING": ("event_log.capture.logging", _boolean),
    "OTEL_EVENTLOG_LOGGING_LEVEL": ("event_log.capture.logging_level", str),
    "OTEL_EVENTLOG_REDACT": ("event_log.redact.enabled", _boolean),
    "OTEL_EVENTLOG_REDACT_KEYS": ("event_log.redact.keys", _comma_list),
    "OTEL_EVENTLOG_REDACT_DEFAULT_KEYS": ("event_log.redact.default_keys", _boolean),
    "OTEL_EVENTLOG_REDACT_PATTERNS": ("event_log.redact.patterns", _pattern_list),
    "OTEL_EVENTLOG_REDIS_URL": ("event_log.redis.url", str),
    "OTEL_EVENTLOG_REDIS_STREAM": ("event_log.redis.stream", str),
    "OTEL_EVENTLOG_REDIS_QUEUE_EVENTS": ("event_log.redis.queue_events", int),
    "OTEL_EVENTLOG_REDIS_BATCH_EVENTS": ("event_log.redis.batch_events", int),
    "OTEL_EVENTLOG_REDIS_TIMEOUT_SECONDS": ("event_log.redis.timeout_seconds", float),
    "OTEL_EVENTLOG_ACTIVITY_ENABLED": ("activity.enabled", _boolean),
    "OTEL_EVENTLOG_ACTIVITY_ADDR": ("activity.addr", str),
    "OTEL_EVENTLOG_ACTIVITY_PORT": ("activity.port", int),
    "OTEL_EVENTLOG_ACTIVITY_TOKEN": ("activity.token", str),
    "OTEL_EVENTLOG_ACTIVITY_DEFAULT_LIMIT": ("activity.default_limit", int),
    "OTEL_EVENTLOG_ACTIVITY_MAX_LIMIT": ("activity.max_limit", int),
    "OTEL_EVENTLOG_ACTIVITY_MAX_WAIT_SECONDS": ("activity.max_wait_seconds", float),
    "OTEL_EVENTLOG_ACTIVITY_HEARTBEAT_SECONDS": ("activity.heartbeat_seconds", float),
    "OTEL_EVENTLOG_ACTIVITY_MAX_STREAMS": ("activity.max_streams", int),
    "OTEL_EVENTLOG_ACTIVITY_MAX_CONNECTIONS": ("activity.max_connections", int),
    "OTEL_EVENTLOG_ACTIVITY_IO_TIMEOUT_SECONDS": ("activity.io_timeout_seconds", float),
    "OTEL_EVENTLOG_ACTIVITY_ALLOW_UNAUTHENTICATED": ("activity.allow_unauthenticated", _boolean),
}


#: Each ``OTEL_EVENTLOG_*`` variable that `load_config` reads, and the key path it overrides.
ENV_VARIABLES: dict[str, str] = {
    variable: f"{_SECTION}.{key}" for variable, (key, _) in _ENV_OVERRIDES.items()
}

_PREFIX = "OTEL_EVENTLOG_"
# The library's variables that are no config key: the config file's, and the test suite's switches.
_OTHER_VARIABLES = (
    "OTEL_EVENTLOG_CONFIG",
    "OTEL_EVENTLOG_REQUIRE_REDIS",
    "OTEL_EVENTLOG_REQUIRE_BROWSER",
    "OTEL_EVENTLOG_REQUIRE_VALGRIND",
)


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """Say what is wrong with each ``OTEL_EVENTLOG_*`` variable that this library does not read.

    A mistyped variable (``OTEL_EVENTLOG_TTL=5``) would otherwise be ignored without a word: each
    message names it and, when one is close, the variable it may have meant.

    Args:
        environ: The environment to look at; by default `os.environ`.

    Returns:
        One message per unknown variable, in name order; empty when there is none.
    """
    env = os.environ if environ is None else environ
    known = [*ENV_VARIABLES, *_OTHER_VARIABLES]
    return [
        f"{name} is not a variable otel_eventlog reads{_variable_meant(name, known)}; it is ignored"
        for name in sorted(env)
        if name.startswith(_PREFIX) and name not in known
    ]


def _variable_meant(name: str, known: list[str]) -> str:
    """Return a did-you-mean for a variable: one it begins (``_TTL``: ``_TTL_SECONDS``), else a close one."""
    longer = sorted((other for other in known if other.startswith(f"{name}_")), key=len)
    if longer:
        return f" (did you mean {longer[0]!r}?)"
    suffixes = {other.removeprefix(_PREFIX): other for other in known}
    close = difflib.get_close_matches(name.removeprefix(_PREFIX), list(suffixes), n=1)
    return f" (did you mean {suffixes[close[0]]!r}?)" if close else ""


def _address(value: object, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"expected a host name or IP address, got {describe(value)}", path=path)
    return value.strip()


def _port(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ConfigError(f"expected a TCP port from 0 to 65535, got {describe(value)}", path=path)
    return value


def _token(value: object, path: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"expected a non-empty string or null, got {describe(value)}", path=path)
    if not is_header_token(value):  # said without the token itself: it is a secret
        raise ConfigError(
            "expected visible ASCII characters only (an HTTP header carries the token)", path=path
        )
    return value


@dataclass(frozen=True, kw_only=True, slots=True)
class ActivityConfig:
    """The ``observability.activity`` section: the HTTP server that `configure` starts for readers.

    Attributes:
        enabled: Whether `configure` starts the server.
        addr: The address to bind; the loopback interface unless told otherwise.
        port: The TCP port; ``0`` picks a free one.
        token: If set, requests need ``Authorization: Bearer <token>``. Better given through
            ``OTEL_EVENTLOG_ACTIVITY_TOKEN`` than written in a file.
        default_limit: Events per ``/activity`` page when a request names no ``limit``.
        max_limit: The most events one page returns.
        max_wait_seconds: The longest long-poll.
        heartbeat_seconds: Seconds between two heartbeats on a quiet stream.
        max_streams: The most streams open at once; more get a ``503``.
        max_connections: The most connections the server serves at once; more get a ``503``.
        io_timeout_seconds: How long the server waits on a connection that sends or reads nothing,
            and for a request to arrive whole.
        allow_unauthenticated: Serve an address beyond the loopback interface without a token.

    Raises:
        ConfigError: If a value has the wrong type or is out of range.
    """

    enabled: bool = False
    addr: str = _defaults.ACTIVITY_ADDR
    port: int = _defaults.ACTIVITY_PORT
    token: str | None = field(default=None, repr=False)
    default_limit: int = _defaults.DEFAULT_LIMIT
    max_limit: int = _defaults.MAX_LIMIT
    max_wait_seconds: float = _defaults.MAX_WAIT_SECONDS
    heartbeat_seconds: float = _defaults.HEARTBEAT_SECONDS
    max_streams: int = _defaults.MAX_STREAMS
    max_connections: int = _defaults.MAX_CONNECTIONS
    io_timeout_seconds: float = _defaults.IO_TIMEOUT_SECONDS
    allow_unauthenticated: bool = False

    def __post_init__(self) -> None:
        for name, check in _ACTIVITY_FIELDS.items():
            object.__setattr__(self, name, check(getattr(self, name), f"{_ACTIVITY}.{name}"))

    def limits(self) -> ActivityLimits:
        """Return the request limits this section sets."""
        return ActivityLimits(
            default_limit=self.default_limit,
            max_limit=self.max_limit,
            max_wait=self.max_wait_seconds,
            heartbeat=self.heartbeat_seconds,
            max_streams=self.max_streams,
            max_connections=self.max_connections,
            io_timeout=self.io_timeout_seconds,
        )


_ACTIVITY_FIELDS: dict[str, Callable[[Any, str], Any]] = {
    "enabled": _flag,
    "addr": _address,
    "port": _port,
    "token": _token,
    "default_limit": _positive_int,
    "max_limit": _positive_int,
    "max_wait_seconds": _seconds(positive=True, finite=True),
    "heartbeat_seconds": _seconds(positive=True, finite=True),
    "max_streams": _positive_int,
    "max_connections": _positive_int,
    "io_timeout_seconds": _seconds(positive=True, finite=True),
    "allow_unauthenticated": _flag,
}

# Each section: its fields' checks, and its subsections.
_SECTIONS: dict[str, dict[str, Callable[[Any, str], Any]]] = {
    "event_log": _EVENT_LOG_FIELDS,
    "event_log.capture": _CAPTURE_FIELDS,
    "event_log.redact": _REDACT_FIELDS,
    "event_log.redis": _REDIS_FIELDS,
    "activity": _ACTIVITY_FIELDS,
}


@dataclass(frozen=True, kw_only=True, slots=True)
class ObservabilityConfig:
    """The ``observability`` section: everything this library reads from a configuration file.

    Attributes:
        event_log: The ``observability.event_log`` section.
        activity: The ``observability.activity`` section.

    Raises:
        ConfigError: If a section has the wrong type.
    """

    event_log: EventLogConfig = field(default_factory=EventLogConfig)
    activity: ActivityConfig = field(default_factory=ActivityConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.event_log, EventLogConfig):
            raise ConfigError(f"expected an EventLogConfig, got {describe(self.event_log)}", path=_EVENT_LOG)
        if not isinstance(self.activity, ActivityConfig):
            raise ConfigError(f"expected an ActivityConfig, got {describe(self.activity)}", path=_ACTIVITY)

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as plain data, shaped like the YAML document it reads."""
        document = dataclasses.asdict(self)
        capture = document["event_log"]["capture"]
        for key in ("include", "exclude"):
            if capture[key] is not None:
                capture[key] = list(capture[key])
        capture["span_attributes"] = list(capture["span_attributes"])
        capture["logging_level"] = logging.getLevelName(capture["logging_level"])
        redact = document["event_log"]["redact"]
        redact["keys"], redact["patterns"] = list(redact["keys"]), list(redact["patterns"])
        document["event_log"]["redis"]["url"] = public_url(self.event_log.redis.url)  # no password
        if document["activity"]["token"] is not None:
            document["activity"]["token"] = "<set>"  # printed by check-config: never echo a secret
        return {_SECTION: document}


def load_config(
    source: str | os.PathLike[str] | Mapping[str, Any] | ObservabilityConfig | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> ObservabilityConfig:
    """Load the configuration from a YAML file, YAML text or a mapping, then apply the environment.

    The document's ``observability`` section is read; a missing section or key means its default.
    These environment variables override the document's keys (an empty one counts as unset):
    ``OTEL_EVENTLOG_BACKEND``, ``OTEL_EVENTLOG_TTL_SECONDS``, ``OTEL_EVENTLOG_MAX_ENTRIES``,
    ``OTEL_EVENTLOG_MAX_BYTES``, ``OTEL_EVENTLOG_MAX_VALUE_BYTES`` (``65536`` or ``64MiB``),
    ``OTEL_EVENTLOG_CAPTURE_INCLUDE``, ``OTEL_EVENTLOG_CAPTURE_EXCLUDE`` (comma-separated),
    ``OTEL_EVENTLOG_SPAN_LIFECYCLE``, ``OTEL_EVENTLOG_GEN_AI_OPERATIONS``,
    ``OTEL_EVENTLOG_SPAN_ATTRIBUTES`` (comma-separated), ``OTEL_EVENTLOG_LIVE_INTERVAL_SECONDS``,
    ``OTEL_EVENTLOG_LOGGING``,
    ``OTEL_EVENTLOG_LOGGING_LEVEL``, ``OTEL_EVENTLOG_REDACT``, ``OTEL_EVENTLOG_REDACT_KEYS``,
    ``OTEL_EVENTLOG_REDACT_DEFAULT_KEYS``, ``OTEL_EVENTLOG_REDACT_PATTERNS`` (a YAML list, or one
    pattern), ``OTEL_EVENTLOG_REDIS_URL``, ``OTEL_EVENTLOG_REDIS_STREAM``,
    ``OTEL_EVENTLOG_REDIS_QUEUE_EVENTS``, ``OTEL_EVENTLOG_REDIS_BATCH_EVENTS``,
    ``OTEL_EVENTLOG_REDIS_TIMEOUT_SECONDS``, ``OTEL_EVENTLOG_ACTIVITY_ENABLED``,
    ``OTEL_EVENTLOG_ACTIVITY_ADDR``, ``OTEL_EVENTLOG_ACTIVITY_PORT``, ``OTEL_EVENTLOG_ACTIVITY_TOKEN``,
    ``OTEL_EVENTLOG_ACTIVITY_DEFAULT_LIMIT``, ``OTEL_EVENTLOG_ACTIVITY_MAX_LIMIT``,
    ``OTEL_EVENTLOG_ACTIVITY_MAX_WAIT_SECONDS``, ``OTEL_EVENTLOG_ACTIVITY_HEARTBEAT_SECONDS``,
    ``OTEL_EVENTLOG_ACTIVITY_MAX_STREAMS``, ``OTEL_EVENTLOG_ACTIVITY_MAX_CONNECTIONS``,
    ``OTEL_EVENTLOG_ACTIVITY_IO_TIMEOUT_SECONDS`` and ``OTEL_EVENTLOG_ACTIVITY_ALLOW_UNAUTHENTICATED``;
    `ENV_VARIABLES` maps each to its key.

    Args:
        source: A path to a YAML file; YAML text; a mapping shaped like the YAML document; an
            `ObservabilityConfig`, returned as it is (code that builds its config wins over the
            environment, as in the OpenTelemetry SDK); or ``None`` for the file named by
            ``OTEL_EVENTLOG_CONFIG``, else the defaults.
        environ: The environment to read; by default `os.environ`.

    Raises:
        ConfigError: If the file cannot be read, the YAML is malformed, or a key or value is wrong.
            The message names the file, the key path or variable, and the bad value.
    """
    if isinstance(source, ObservabilityConfig):
        return source
    try:
        return _load(source, os.environ if environ is None else environ)
    except ConfigError:
        raise
    except RecursionError:
        raise ConfigError("the configuration is nested too deeply to read") from None
    except Exception as error:  # whatever else a hostile document does: still a ConfigError, named
        raise ConfigError(f"cannot read the configuration: {type(error).__name__}: {error}") from None


def _load(
    source: str | os.PathLike[str] | Mapping[str, Any] | None, env: Mapping[str, str]
) -> ObservabilityConfig:
    if source is None and env.get(CONFIG_ENV):
        source = Path(env[CONFIG_ENV])
    document, origin = _read_document(source)
    try:
        config = _from_document(document)
    except ConfigError as error:
        raise ConfigError(error.problem, path=error.path, source=origin) from None
    overrides = _environment_overrides(env)
    if not overrides:
        return config

    def within(section: str) -> dict[str, Any]:
        return {
            name.rpartition(".")[2]: value
            for name, value in overrides.items()
            if name.rpartition(".")[0] == section
        }

    capture = dataclasses.replace(config.event_log.capture, **within("event_log.capture"))
    redact = dataclasses.replace(config.event_log.redact, **within("event_log.redact"))
    redis = dataclasses.replace(config.event_log.redis, **within("event_log.redis"))
    return dataclasses.replace(
        config,
        event_log=dataclasses.replace(
            config.event_log, capture=capture, redact=redact, redis=redis, **within("event_log")
        ),
        activity=dataclasses.replace(config.activity, **within("activity")),
    )


def _read_document(source: object) -> tuple[object, str | None]:
    """Return the parsed document and the name of the file it came from, if any."""
    if source is None:
        return {}, None
    if isinstance(source, Mapping):
        return source, None
    if isinstance(source, os.PathLike):
        return _read_file(Path(source)), os.fspath(source)
    if not isinstance(source, str):
        raise ConfigError(
            "expected a file path, YAML text, a mapping or an ObservabilityConfig, "
            f"got {type(source).__name__}"
        )
    if os.path.isfile(source) or not _looks_like_yaml(source):
        return _read_file(Path(source)), source
    return _parse_yaml(source, None), None


def _read_file(path: Path) -> object:
    try:
        with path.open("rb") as file:
            data = file.read(_MAX_FILE_BYTES + 1)  # a device or FIFO that never ends is not read for ever
        text = "" if len(data) > _MAX_FILE_BYTES else data.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found", source=_file_name(path)) from None
    except (OSError, UnicodeDecodeError, ValueError) as error:  # ValueError: a NUL byte in the path
        raise ConfigError(f"cannot read config file: {error}", source=_file_name(path)) from None
    if len(data) > _MAX_FILE_BYTES:
        raise ConfigError(
            f"config file larger than {_MAX_FILE_BYTES // 1024**2} MiB: not a configuration",
            source=_file_name(path),
        )
    return _parse_yaml(text, str(path))


# A configuration is a few kilobytes: anything past this is not one.
_MAX_FILE_BYTES = 16 * 1024 * 1024


def _file_name(path: Path) -> str:
    """Return a file's name for a message: as it is, unless it holds control characters or is very long."""
    text = str(path)
    return text if text.isprintable() and len(text) <= 200 else shown(text)


def _looks_like_yaml(text: str) -> bool:
    """Tell YAML text from a file name: text spans lines, or holds a key and its value, or a flow."""
    line = text.strip()
    return "\n" in line or ": " in line or line.endswith(":") or line.startswith("{")


def _parse_yaml(text: str, origin: str | None) -> object:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(str(getattr(error, "problem", None) or error).split())  # one line
        raise ConfigError(f"malformed YAML{where}: {problem}", source=origin) from None
    except ValueError as error:  # an int of more digits than Python converts
        raise ConfigError(f"malformed YAML: {error}", source=origin) from None
    except RecursionError:
        raise ConfigError("malformed YAML: nested too deeply", source=origin) from None


def _from_document(document: object) -> ObservabilityConfig:
    if document is None:  # an empty file
        return ObservabilityConfig()
    if not isinstance(document, Mapping):
        raise ConfigError(f"expected a mapping at the top level, got {type(document).__name__}")
    section = _section(document, _SECTION, _SECTION)
    event_log = dict(_section(section, "event_log", _EVENT_LOG))
    capture = _section(event_log, "capture", _CAPTURE) if "capture" in event_log else {}
    redact = _section(event_log, "redact", _REDACT) if "redact" in event_log else {}
    redis = _section(event_log, "redis", _REDIS) if "redis" in event_log else {}
    for subsection in ("capture", "redact", "redis"):
        event_log.pop(subsection, None)
    _reject_unknown_keys(
        event_log, {**_EVENT_LOG_FIELDS, "capture": None, "redact": None, "redis": None}, _EVENT_LOG
    )
    _reject_unknown_keys(capture, _CAPTURE_FIELDS, _CAPTURE)
    _reject_unknown_keys(redact, _REDACT_FIELDS, _REDACT)
    _reject_unknown_keys(redis, _REDIS_FIELDS, _REDIS)
    activity = _section(section, "activity", _ACTIVITY)
    _reject_unknown_keys(activity, _ACTIVITY_FIELDS, _ACTIVITY)
    return ObservabilityConfig(
        event_log=EventLogConfig(
            capture=CaptureConfig(**capture),
            redact=RedactConfig(**redact),
            redis=RedisConfig(**redis),
            **event_log,
        ),
        activity=ActivityConfig(**activity),
    )


def _section(parent: Mapping[Any, Any], key: str, path: str) -> Mapping[str, Any]:
    """Return ``parent[key]`` as a mapping; missing or null means empty."""
    if key not in parent:
        # Only a near miss of this library's section is an error: the other keys belong to the
        # application.
        for other in parent:
            hint = _did_you_mean(str(other), [key])
            if hint:
                parent_path = path.rpartition(".")[0]
                other_path = f"{parent_path}.{other}" if parent_path else str(other)
                raise ConfigError(f"unknown section{hint}", path=other_path)
        return {}
    value = parent[key]
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"expected a mapping, got {describe(value)}", path=path)
    return value


def _reject_unknown_keys(section: Mapping[Any, Any], known: Mapping[str, Any], path: str) -> None:
    for key in section:
        if key not in known:
            hint = _did_you_mean(str(key), list(known))
            raise ConfigError(f"unknown key{hint}; known keys: {', '.join(known)}", path=f"{path}.{key}")


def _environment_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for variable, (name, parse) in _ENV_OVERRIDES.items():
        text = env.get(variable, "").strip()
        if not text:
            continue
        try:
            value = parse(text)
        except ValueError:
            value = text  # the field's check below names the variable and the text
        section, _, key = name.rpartition(".")
        overrides[name] = _SECTIONS[section][key](value, variable)
    return overrides
