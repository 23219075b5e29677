"""JSON that never fails: one bad value must never end a response, a stream or a write to a backend.

A payload can hold whatever the application logged: a cycle, nesting thousands deep, an object whose
``__str__`` raises, an int too long to print, a NaN. `dumps` encodes the common case with one
`json.dumps` call and, only when that fails, encodes a copy in which each value JSON cannot hold is
replaced by a placeholder string that says what it was (``"<cycle>"``, ``"<nested too deep>"``,
``"<unprintable Widget>"``). Readers see the event, marked, and every event after it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["dumps"]

_COMPACT = (",", ":")
#: Nesting kept in a response; deeper values are replaced. Far below the interpreter's recursion limit.
MAX_DEPTH = 32
# CPython refuses to print an int of more than 4,300 digits; 13,000 bits is about 3,900 digits.
_MAX_INT_BITS = 13_000


def dumps(data: Any) -> bytes:
    """Encode `data` as compact JSON; what JSON cannot hold becomes a string. Never raises.

    The result is ASCII: no byte of it is a raw newline, so encodings can be joined with newlines.
    """
    try:
        return _ENCODER.encode(data).encode()
    except Exception:  # any failure, RecursionError included: encode the safe copy instead
        return json.dumps(_safe(data, 0, set()), separators=_COMPACT).encode()


def _as_text(value: object) -> str:
    """Return `value` as text, or a placeholder naming its type when it cannot be printed."""
    try:
        text = str(value)
    except Exception:  # the object's __str__ failed: name the object instead
        return f"<unprintable {type(value).__name__}>"
    return text if isinstance(text, str) else f"<unprintable {type(value).__name__}>"


_CONTAINERS = (Mapping, list, tuple, set, frozenset)


def _safe(value: object, depth: int, path: set[int]) -> object:
    """Return a copy of `value` that `json.dumps` encodes with its defaults, placeholders for the rest.

    `path` holds the ids of the containers being copied above this one, to tell a cycle from a value
    that merely appears twice.
    """
    if not isinstance(value, _CONTAINERS):
        return _safe_scalar(value)
    if depth >= MAX_DEPTH:
        return "<nested too deep>"
    if id(value) in path:
        return "<cycle>"
    path.add(id(value))
    try:
        if isinstance(value, Mapping):
            return {_key(key): _safe(item, depth + 1, path) for key, item in value.items()}
        return [_safe(item, depth + 1, path) for item in value]
    except Exception:  # a mapping whose items() raises, say
        return _as_text(value)
    finally:
        path.discard(id(value))


def _safe_scalar(value: object) -> object:
    """Return a value that is not a container as JSON encodes it, or as a string."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        return int(value) if value.bit_length() < _MAX_INT_BITS else f"<int of {value.bit_length()} bits>"
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else str(value)
    return _as_text(value)


def _key(key: object) -> str:
    """Return a mapping key as JSON's text key."""
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, (bool, int, float)):
        return json.dumps(_safe(key, 0, set()))  # what json.dumps itself would write for it
    return _as_text(key)


# Made once: `json.dumps` with any option builds an encoder on every call.
_ENCODER = json.JSONEncoder(default=_as_text, allow_nan=False, separators=_COMPACT)
