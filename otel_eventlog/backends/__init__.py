"""The store: the event log backends, their contracts, and `create_event_log`, which picks one by name.

- ``memory`` (also the empty name): `InMemoryEventLog`, the embedded default.
- ``disabled``, ``off``, ``none``: `DisabledEventLog`, which keeps nothing.
- ``redis``: `RedisEventLog`, one log on a Redis stream for every process and host that shares it
  (redis-py is imported when it is built: ``pip install 'otel-eventlog[redis]'``).

`EventLog` is what every backend keeps and every reader relies on; `BatchWriter` is how the capture
side hands events over, and `batch_writer` adapts any `EventLog` to it.
"""

from __future__ import annotations

import logging
from typing import Any

from otel_eventlog.backends._adapter import batch_writer
from otel_eventlog.backends.base import BatchWriter, EventLog, Flushable, Observable, check_event_log
from otel_eventlog.backends.disabled import DisabledEventLog
from otel_eventlog.backends.memory import InMemoryEventLog
from otel_eventlog.backends.redis import RedisEventLog
from otel_eventlog.errors import ArgumentTypeError

__all__ = [
    "BACKEND_NAMES",
    "BatchWriter",
    "DisabledEventLog",
    "EventLog",
    "Flushable",
    "InMemoryEventLog",
    "Observable",
    "RedisEventLog",
    "batch_writer",
    "check_event_log",
    "create_event_log",
]

_logger = logging.getLogger(__name__)

_MEMORY = frozenset({"memory", ""})
_DISABLED = frozenset({"disabled", "off", "none"})
_REDIS = "redis"

#: The backend names `create_event_log` knows, normalised (trimmed, lower case).
BACKEND_NAMES: frozenset[str] = _MEMORY | _DISABLED | {_REDIS}
# The options that bound what a log stores.
_LIMITS = frozenset({"max_bytes", "max_value_bytes"})
# What every backend takes, and what only the Redis backend takes.
_COMMON = frozenset({"now", "redaction"})
_REDIS_OPTIONS = frozenset({"url", "stream", "queue_events", "batch_events", "timeout_seconds"})


def create_event_log(
    backend: str = "memory",
    ttl_seconds: float | None = None,
    max_entries: int | None = None,
    **backend_options: Any,
) -> EventLog:
    """Build the event log that `backend` names.

    Names are trimmed and case-insensitive. An unknown name gives the in-memory log and a logged warning
    that names it: a typo must never silently switch the activity feed off.

    Args:
        backend: ``"memory"`` (or ``""``) for `InMemoryEventLog`; ``"disabled"``, ``"off"`` or
            ``"none"`` for `DisabledEventLog`; ``"redis"`` for `RedisEventLog`.
        ttl_seconds: Passed to the backend; ``None`` means the backend's default.
        max_entries: Passed to the backend; ``None`` means the backend's default.
        **backend_options: Passed to the backend's constructor: ``now`` (a clock), ``redaction``
            (an `otel_eventlog.redaction.Redaction`), ``max_bytes`` and ``max_value_bytes`` (which
            the disabled log, storing nothing, ignores); for ``redis``, also ``url``, ``stream``,
            ``queue_events``, ``batch_events`` and ``timeout_seconds``.

    Raises:
        ArgumentTypeError: If `backend` is not a string, or an argument does not suit the backend.
        ImportError: For ``redis``, if redis-py is not installed.
    """
    if not isinstance(backend, str):
        raise ArgumentTypeError(f"backend must be a string, got {type(backend).__name__} {backend!r}")
    name = backend.strip().lower()
    if name == _REDIS:
        options = _options(name, backend_options, _COMMON | _LIMITS | _REDIS_OPTIONS)
        return RedisEventLog(ttl_seconds=ttl_seconds, max_entries=max_entries, **options)
    if name in _DISABLED:  # it stores nothing: the limits on what is stored do not apply
        options = _options(name, backend_options, _COMMON | _LIMITS)
        return DisabledEventLog(**{key: options[key] for key in options.keys() - _LIMITS})
    if name not in _MEMORY:
        _logger.warning(
            "unknown event log backend %r; using the in-memory backend (known: %s)",
            backend,
            ", ".join(sorted(BACKEND_NAMES - {""})),
        )
    return InMemoryEventLog(ttl_seconds, max_entries, **_options(name, backend_options, _COMMON | _LIMITS))


def _options(name: str, options: dict[str, Any], known: frozenset[str]) -> dict[str, Any]:
    unknown = sorted(set(options) - known)
    if unknown:
        raise ArgumentTypeError(
            f"backend {name!r} does not take the option(s) {', '.join(unknown)}; "
            f"it takes {', '.join(sorted(known))}"
        )
    return options
