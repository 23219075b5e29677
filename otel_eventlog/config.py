"""Configuration: the ``observability`` section of a YAML file, with ``OTEL_EVENTLOG_*`` overrides.

.. code-block:: yaml

    observability:
      event_log:
        backend: memory        # memory | disabled
        ttl_seconds: 3600
        max_entries: 10000

The config objects are frozen, keyword-only dataclasses that check themselves when built, so a bad value
fails at start-up with a `ConfigError` (a `ValueError`) naming its key path, never later on a hot path.
The rest of the YAML document belongs to the application and is ignored, and so are keys under
``observability`` that are not this library's, unless one looks like a misspelling of a section.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from otel_eventlog.backends import BACKEND_NAMES, EventLog, InMemoryEventLog, create_event_log

__all__ = ["ConfigError", "EventLogConfig", "ObservabilityConfig", "load_config"]

#: Names the environment variable that `load_config()` reads a YAML file from when given no source.
CONFIG_ENV = "OTEL_EVENTLOG_CONFIG"

_SECTION = "observability"
_EVENT_LOG = f"{_SECTION}.event_log"


class ConfigError(ValueError):
    """A configuration value, key, file or document is wrong.

    Attributes:
        path: The key path (``observability.event_log.ttl_seconds``) or environment variable that is
            wrong, or ``None`` when the whole document is.
        source: The file the configuration came from, if any.
    """

    def __init__(self, problem: str, *, path: str | None = None, source: str | None = None):
        self.problem = problem
        self.path = path
        self.source = source
        message = problem if path is None else f"{path}: {problem}"
        super().__init__(message if source is None else f"{source}: {message}")


def _describe(value: object) -> str:
    if value is None:
        return "null"
    return f"{value!r} ({type(value).__name__})"


def _positive_number(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ConfigError(f"expected a positive number of seconds, got {_describe(value)}", path=path)
    if value <= 0:
        raise ConfigError(f"expected a positive number of seconds, got {value!r}", path=path)
    return value


def _positive_int(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"expected a positive integer, got {_describe(value)}", path=path)
    return value


def _backend(value: object, path: str) -> str:
    if value is False:
        # YAML 1.1 reads an unquoted `off` (or `no`, `false`) as false: the user meant "disabled".
        return "off"
    if not isinstance(value, str):
        raise ConfigError(f"expected a backend name, got {_describe(value)}", path=path)
    name = value.strip().lower()
    if name not in BACKEND_NAMES:
        known = sorted(BACKEND_NAMES - {""})
        raise ConfigError(
            f"unknown backend {value!r}{_did_you_mean(name, known)}; known: {', '.join(known)}",
            path=path,
        )
    return name or "memory"


def _did_you_mean(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(frozen=True, kw_only=True, slots=True)
class EventLogConfig:
    """The ``observability.event_log`` section: which backend keeps the events, and for how long.

    Attributes:
        backend: ``memory`` (the default) or ``disabled`` (also ``off`` and ``none``). Stored trimmed
            and in lower case.
        ttl_seconds: How long an event stays in the log, in seconds.
        max_entries: How many events the log keeps at most.

    Raises:
        ConfigError: If a value has the wrong type or is out of range.
    """

    backend: str = "memory"
    ttl_seconds: float = InMemoryEventLog.DEFAULT_TTL_SECONDS
    max_entries: int = InMemoryEventLog.DEFAULT_MAX_ENTRIES

    def __post_init__(self) -> None:
        for name, check in _EVENT_LOG_FIELDS.items():
            object.__setattr__(self, name, check(getattr(self, name), f"{_EVENT_LOG}.{name}"))

    def create_event_log(self, **backend_options: Any) -> EventLog:
        """Build the event log this section describes, through `create_event_log`."""
        return create_event_log(self.backend, self.ttl_seconds, self.max_entries, **backend_options)


_EVENT_LOG_FIELDS: dict[str, Callable[[Any, str], Any]] = {
    "backend": _backend,
    "ttl_seconds": _positive_number,
    "max_entries": _positive_int,
}

#: Environment variables that override keys of ``observability.event_log``, and how to read them.
_ENV_OVERRIDES: dict[str, tuple[str, Callable[[str], object]]] = {
    "OTEL_EVENTLOG_BACKEND": ("backend", str),
    "OTEL_EVENTLOG_TTL_SECONDS": ("ttl_seconds", float),
    "OTEL_EVENTLOG_MAX_ENTRIES": ("max_entries", int),
}


@dataclass(frozen=True, kw_only=True, slots=True)
class ObservabilityConfig:
    """The ``observability`` section: everything this library reads from a configuration file.

    Attributes:
        event_log: The ``observability.event_log`` section.

    Raises:
        ConfigError: If a section has the wrong type.
    """

    event_log: EventLogConfig = field(default_factory=EventLogConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.event_log, EventLogConfig):
            raise ConfigError(f"expected an EventLogConfig, got {_describe(self.event_log)}", path=_EVENT_LOG)

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as plain data, shaped like the YAML document it reads."""
        return {_SECTION: dataclasses.asdict(self)}


def load_config(
    source: str | os.PathLike[str] | Mapping[str, Any] | ObservabilityConfig | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> ObservabilityConfig:
    """Load the configuration from a YAML file, YAML text or a mapping, then apply the environment.

    The document's ``observability`` section is read; a missing section or key means its default.
    ``OTEL_EVENTLOG_BACKEND``, ``OTEL_EVENTLOG_TTL_SECONDS`` and ``OTEL_EVENTLOG_MAX_ENTRIES`` override
    the document; an empty variable counts as unset.

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
    env = os.environ if environ is None else environ
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
    event_log = dataclasses.replace(config.event_log, **overrides)
    return dataclasses.replace(config, event_log=event_log)


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
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read config file: {error}", source=str(path)) from None
    return _parse_yaml(text, str(path))


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
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"malformed YAML{where}: {problem}", source=origin) from None


def _from_document(document: object) -> ObservabilityConfig:
    if document is None:  # an empty file
        return ObservabilityConfig()
    if not isinstance(document, Mapping):
        raise ConfigError(f"expected a mapping at the top level, got {type(document).__name__}")
    section = _section(document, _SECTION, _SECTION)
    event_log = _section(section, "event_log", _EVENT_LOG)
    _reject_unknown_keys(event_log, _EVENT_LOG_FIELDS, _EVENT_LOG)
    return ObservabilityConfig(event_log=EventLogConfig(**event_log))


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
        raise ConfigError(f"expected a mapping, got {_describe(value)}", path=path)
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
        overrides[name] = _EVENT_LOG_FIELDS[name](value, variable)
    return overrides
