"""Checks shared by every layer: numbers of seconds, counts, and trace and span ids.

Each rule lives here once, with the words that describe it, so that a backend, a processor, the HTTP
core and the configuration reject the same bad value the same way. The checks raise the argument
errors of `otel_eventlog.errors`; the configuration turns them into `ConfigError` with a key path.
"""

from __future__ import annotations

import math
import re
import reprlib
from collections.abc import Callable
from typing import TypeGuard

from otel_eventlog.errors import ArgumentTypeError, ArgumentValueError

__all__ = [
    "SPAN_ID_LIMIT",
    "TRACE_ID_LIMIT",
    "check_count",
    "check_seconds",
    "check_span_id",
    "check_trace_id",
    "describe",
    "is_header_token",
    "is_number",
    "seconds_expected",
    "shown",
    "span_hex",
    "trace_hex",
]


_HEADER_TOKEN = re.compile(r"[!-~]+")


def is_header_token(text: str) -> bool:
    """Tell whether `text` can be a bearer token in an HTTP header: visible ASCII characters only."""
    return _HEADER_TOKEN.fullmatch(text) is not None


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80


def shown(value: object) -> str:
    """Return `value`'s repr for an error message: cut when long, and never raising.

    A value from a configuration file or a caller can be anything: an int too long to print, a
    structure nested too deep for `repr`, an object whose ``__repr__`` raises.
    """
    if isinstance(value, int) and value.bit_length() > 1000:
        return f"<an int of {value.bit_length()} bits>"
    return _REPR.repr(value)  # reprlib shows an object whose __repr__ raises by its type and address


def describe(value: object) -> str:
    """Return `value` for an error message: its repr and its type (``null`` for ``None``)."""
    if value is None:
        return "null"
    return f"{shown(value)} ({type(value).__name__})"


def is_number(value: object) -> TypeGuard[int | float]:
    """Tell whether `value` is an int or a float, and not a bool (which Python counts as an int)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def seconds_expected(*, positive: bool, finite: bool) -> str:
    """Return the words for what `check_seconds` accepts with these options."""
    if positive:
        return "a positive, finite number of seconds" if finite else "a positive number of seconds"
    return "a finite number of seconds >= 0" if finite else "a number of seconds >= 0"


def check_seconds(value: object, name: str, *, positive: bool = False, finite: bool = True) -> float:
    """Return `value` as a float number of seconds, or raise naming `name` and the value.

    Args:
        value: The value to check.
        name: The argument's name, for the message.
        positive: Refuse 0 as well as negative numbers.
        finite: Refuse infinity.

    Raises:
        ArgumentTypeError: If `value` is not a number (a bool is not).
        ArgumentValueError: If it is NaN, out of range, or infinite when `finite`.
    """
    if not is_number(value):
        expected = seconds_expected(positive=positive, finite=finite)
        raise ArgumentTypeError(f"{name} must be {expected}, got {describe(value)}")
    if not (value > 0 if positive else value >= 0) or (finite and math.isinf(value)):  # NaN fails both
        expected = seconds_expected(positive=positive, finite=finite)
        raise ArgumentValueError(f"{name} must be {expected}, got {shown(value)}")
    try:
        return float(value)
    except OverflowError:  # an int too large for a float: no number of seconds is that long
        raise ArgumentValueError(
            f"{name} must be {seconds_expected(positive=positive, finite=True)}, got {shown(value)}"
        ) from None


def check_count(value: object, name: str) -> int:
    """Return `value` if it is a positive int (not a bool), else raise naming `name` and the value.

    Raises:
        ArgumentTypeError: If `value` is not an int.
        ArgumentValueError: If it is 0 or negative.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{name} must be a positive integer, got {describe(value)}")
    if value <= 0:
        raise ArgumentValueError(f"{name} must be a positive integer, got {shown(value)}")
    return value


def trace_hex(trace_id: int) -> str:
    """Return the W3C form (32 lower-case hex digits) of a trace id given as OpenTelemetry's int."""
    return trace_id.to_bytes(16, "big").hex()


def span_hex(span_id: int) -> str:
    """Return the W3C form (16 lower-case hex digits) of a span id given as OpenTelemetry's int."""
    return span_id.to_bytes(8, "big").hex()


class _IdForm:
    """One kind of OpenTelemetry id: its name, its length in hex digits, and the forms seen valid lately.

    A span's events all carry the same two ids, so most checks of a hex id are one set lookup.
    """

    _KEPT = 4096

    def __init__(self, name: str, digits: int, to_hex: Callable[[int], str]) -> None:
        self.name = name
        self.digits = digits
        self.limit = 1 << (4 * digits)  # ids are below it
        self.to_hex = to_hex
        self.match = re.compile(f"[0-9a-f]{{{digits}}}").fullmatch
        self.known: set[str] = set()

    def check(self, value: object) -> str:
        """Return the W3C form of `value`, given in hex or as an int, or raise naming the id."""
        if type(value) is str and value in self.known:
            return value
        if isinstance(value, str):
            if not self.match(value):
                raise ArgumentValueError(
                    f"{self.name} must be {self.digits} lower-case hex digits, got {shown(value)}"
                )
            text = str(value)  # a plain str, also when given a subclass
            if len(self.known) >= self._KEPT:
                self.known.clear()
            self.known.add(text)
            return text
        if type(value) is int:
            if 0 <= value < self.limit:
                return self.to_hex(value)
            raise ArgumentValueError(
                f"{self.name} must be an int of at most {4 * self.digits} bits, got {shown(value)}"
            )
        raise ArgumentTypeError(
            f"{self.name} must be a string of {self.digits} lower-case hex digits or an int, "
            f"got {type(value).__name__} {shown(value)}"
        )


_TRACE = _IdForm("trace_id", 32, trace_hex)
_SPAN = _IdForm("span_id", 16, span_hex)
#: Trace and span ids given as ints are below these.
TRACE_ID_LIMIT = _TRACE.limit
SPAN_ID_LIMIT = _SPAN.limit


def check_trace_id(trace_id: object) -> str:
    """Return the W3C form of a trace id given as 32 lower-case hex digits or as OpenTelemetry's int.

    Raises:
        ArgumentTypeError: If `trace_id` is neither a string nor an int.
        ArgumentValueError: If it is a malformed string or an int out of range.
    """
    return _TRACE.check(trace_id)


def check_span_id(span_id: object) -> str:
    """Return the W3C form of a span id given as 16 lower-case hex digits or as OpenTelemetry's int.

    Raises:
        ArgumentTypeError: If `span_id` is neither a string nor an int.
        ArgumentValueError: If it is a malformed string or an int out of range.
    """
    return _SPAN.check(span_id)
