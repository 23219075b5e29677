"""The exceptions this library raises on purpose, all under one base.

.. code-block:: text

    EventLogError
    ├── ArgumentTypeError   (also a TypeError)  an argument has the wrong type
    ├── ArgumentValueError  (also a ValueError) an argument has the right type but a wrong value
    ├── ConfigError         (also a ValueError) a configuration key, value, file or document is wrong
    ├── BackendError                            a backend's store cannot be reached or refuses a call
    ├── BadRequest                              an HTTP request to the Activity endpoints is wrong
    └── TailError                               ``otel-eventlog tail`` cannot follow a stream

``except otel_eventlog.EventLogError`` catches every one of them. The argument errors are also the
`TypeError` and `ValueError` that Python code expects from a wrong argument, and `ConfigError` a
`ValueError`, so code written against the builtin exceptions keeps working.

The hot paths that run on the application's threads (the processors' ``on_start``, ``on_end``,
``on_emit`` and the logging handler's ``emit``) raise nothing: they count and log what fails instead.
"""

from __future__ import annotations

__all__ = [
    "ArgumentTypeError",
    "ArgumentValueError",
    "BackendError",
    "BadRequest",
    "ConfigError",
    "EventLogError",
    "TailError",
]


class EventLogError(Exception):
    """The base of every exception this library raises on purpose."""


class ArgumentTypeError(EventLogError, TypeError):
    """An argument has the wrong type; the message names it and what was given."""


class ArgumentValueError(EventLogError, ValueError):
    """An argument has the right type but a wrong value; the message names it and the value."""


class ConfigError(EventLogError, ValueError):
    """A configuration value, key, file or document is wrong.

    Attributes:
        problem: What is wrong, without the key path or the file.
        path: The key path (``observability.event_log.ttl_seconds``) or environment variable that is
            wrong, or ``None`` when the whole document is.
        source: The file the configuration came from, if any.
    """

    def __init__(self, problem: str, *, path: str | None = None, source: str | None = None) -> None:
        self.problem = problem
        self.path = path
        self.source = source
        message = problem if path is None else f"{path}: {problem}"
        super().__init__(message if source is None else f"{source}: {message}")


class BackendError(EventLogError):
    """A backend's store cannot be reached or refuses a call: Redis is down, say. Names the server."""


class BadRequest(EventLogError):
    """A request to the Activity endpoints is wrong; answered with a ``400`` that names the parameter.

    Attributes:
        parameter: The query parameter or header that is wrong.
        problem: What is wrong with it.
    """

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(f"{parameter}: {problem}")
        self.parameter = parameter
        self.problem = problem


class TailError(EventLogError):
    """A stream cannot be followed: a bad URL, a refused connection, a refused request."""
