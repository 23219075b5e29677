"""What an event costs in memory, and the caps that bound it: the log's byte budget is kept with these.

An event is charged a fixed cost (its row, its slot, its payload dict), a cost per item of its payload
and of each container in it, and the size of each key and value as CPython stores it (``__sizeof__``:
a string's text in its own width, an int's digits). These are estimates of what the event keeps alive,
on the safe side: a value shared with the application, or between events, is charged to each. The tests
hold them to what ``tracemalloc`` measures. An object that is none of these is charged its own size,
not what it refers to.

`Limits.fit` is what a backend calls before storing a payload: each string (or bytes) value longer
than ``max_value_bytes`` is cut, and the cut marked (``"...[1032192 bytes truncated]"``); a payload
whose values add up to more than ``max_event_bytes`` has its later values cut, so that no single event
can take more than the whole budget; nesting deeper than `MAX_DEPTH`, a cycle, and containers past
`MAX_CONTAINERS` (counted as a reader writes them out, so that a value shared under many keys counts
each time) are replaced by a marker too, as they could hide any amount of memory or of output. What a
reader writes out of a stored event is so bounded, whether or not redaction is on.
"""

from __future__ import annotations

import collections
import operator
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "EVENT_BYTES",
    "ITEM_BYTES",
    "MAX_CONTAINERS",
    "MAX_DEPTH",
    "SCALARS",
    "Limits",
    "truncated",
]

#: The fixed cost of one resident event: its row tuple, its slot, its empty payload dict, its stamp.
EVENT_BYTES = 240
#: The cost of one item of a payload or container beyond its key and value: its entry.
ITEM_BYTES = 40
#: Nesting kept in a payload; deeper values are replaced by a marker (readers show no deeper anyway).
MAX_DEPTH = 32
#: Containers sized in one payload; past that, they are replaced by a marker.
MAX_CONTAINERS = 10_000

# A payload of text and numbers that costs no more than this is charged by `Limits.charge` in one look
# at each item; any other is measured value by value, and cut where it must be.
_FAST_BYTES = 4096
# What a string costs beyond its text, marker included: kept free when a value is cut to fit an event.
_OVERHEAD = 128
# A string key at most this long is charged its size and kept; a longer one is cut like a value.
_SHORT = 64
#: The types of value that hold nothing else: charged their own size.
SCALARS = frozenset({int, float, bool, type(None)})
# What the common payload holds: text and numbers, each charged its exact size in one call.
_FLAT = SCALARS | {str}
_SEQUENCES = (list, tuple, set, frozenset, collections.deque)


def truncated(cut: int) -> str:
    """Return the marker put where `cut` bytes of a value were cut off."""
    return f"...[{cut} bytes truncated]"


class Limits:
    """The caps on what one event may hold. Immutable and thread-safe.

    `fast_bytes` is the most a payload of text and numbers may come to for `charge` to take it as it
    is: its text then fits `max_value_bytes` in UTF-8 whatever the script.

    Args:
        max_value_bytes: The most bytes (UTF-8) kept of one string or bytes value.
        max_event_bytes: The most bytes one event is charged; values past it are cut.
        before_cut: Applied to a string that is about to be cut, whole, before it is: the
            redaction's patterns, so that a secret across the cut is found whole.
    """

    __slots__ = ("before_cut", "fast_bytes", "max_event_bytes", "max_value_bytes")

    def __init__(
        self, max_value_bytes: int, max_event_bytes: int, before_cut: Callable[[str], str] | None = None
    ) -> None:
        self.max_value_bytes = max_value_bytes
        self.max_event_bytes = max_event_bytes
        self.before_cut = before_cut
        # A string that costs at most a quarter of max_value_bytes has fewer characters than that, so
        # it fits max_value_bytes in UTF-8, whatever the script.
        self.fast_bytes = min(_FAST_BYTES, max_value_bytes // 4, max_event_bytes)

    def fit(self, payload: dict[str, Any]) -> tuple[dict[str, Any], int, int]:
        """Return `payload` within the caps, what it costs in bytes, and how many values were cut.

        The payload comes back as it was (the same dict) when nothing was cut, else as a copy with
        the cut values, shared containers copied once. Never raises: a payload that cannot be sized
        is replaced by a marker.
        """
        size = self.charge(payload)
        return (payload, size, 0) if size >= 0 else self.measure(payload)

    def measure(self, payload: dict[str, Any]) -> tuple[dict[str, Any], int, int]:
        """Like `fit`, for a payload `charge` did not take: measure each value and cut what is too long."""
        fitting = _Fitting(self.max_value_bytes, self.max_event_bytes, self.before_cut)
        try:
            fitted = fitting.mapping(payload, 0)
        except Exception:  # a key or value whose methods raise, say: keep the event, not the payload
            return {"payload": "<unsizable>"}, EVENT_BYTES + ITEM_BYTES, 1
        return fitted, fitting.size, fitting.cut

    def charge(self, payload: dict[str, Any]) -> int:
        """Return what `payload` costs if it is text and numbers under string keys, a little of it; else -1.

        The common case, and so the one thing every append pays: one look at each item, whose key
        and value are charged their exact size (``__sizeof__`` of a built-in type is one C call). A
        payload that returns -1 goes to `measure`. Never raises.
        """
        size = EVENT_BYTES + ITEM_BYTES * len(payload)
        for key, value in payload.items():  # a dict no one else changes: the log's copy, or handed over
            if type(value) not in _FLAT or type(key) is not str:
                return -1
            size += key.__sizeof__() + value.__sizeof__()  # exact built-in types: these cannot raise
        return size if size <= self.fast_bytes else -1

    def __repr__(self) -> str:
        return f"Limits(max_value_bytes={self.max_value_bytes}, max_event_bytes={self.max_event_bytes})"


class _Fitting:
    """One payload being sized and cut: the bytes charged so far, the values cut, the containers seen."""

    __slots__ = (
        "before_cut",
        "containers",
        "cut",
        "done",
        "max_event_bytes",
        "max_value_bytes",
        "path",
        "size",
    )

    def __init__(
        self, max_value_bytes: int, max_event_bytes: int, before_cut: Callable[[str], str] | None
    ) -> None:
        self.max_value_bytes = max_value_bytes
        self.max_event_bytes = max_event_bytes
        self.before_cut = before_cut
        self.size = EVENT_BYTES
        self.cut = 0
        self.containers = MAX_CONTAINERS
        self.path: set[int] = set()
        # Containers sized so far, by id, with what they became and how many containers writing
        # them out takes: a shared one is charged once, but counted against `containers` each time.
        self.done: dict[int, tuple[object, object, int]] = {}

    def mapping(self, payload: Mapping[Any, Any], depth: int) -> dict[Any, Any]:
        """Return `payload` as a dict within the caps: itself if it is a dict and nothing was cut."""
        items = list(payload.items())
        fitted: dict[Any, Any] = {}
        changed = type(payload) is not dict
        for index, (key, value) in enumerate(items):
            if self.full():
                fitted[_unique("...", fitted)] = self.cut_short(len(items) - index)
                changed = True
                break
            self.size += ITEM_BYTES
            new_key = self.key(key, depth)
            if new_key is not key:
                new_key = _unique(new_key, fitted)  # two keys cut to the same text both stay
            new = self.value(value, depth + 1)
            changed = changed or new is not value or new_key is not key
            fitted[new_key] = new
        return fitted if changed else payload  # type: ignore[return-value]  # a dict when unchanged

    def key(self, key: object, depth: int) -> object:
        """Return a mapping key within the caps, charging it; a key that had to change is kept hashable."""
        if type(key) is str and len(key) <= _SHORT:
            self.size += key.__sizeof__()
            return key
        new = self.value(key, depth + 1)
        if new is key:
            return key
        try:
            hash(new)
        except TypeError:  # a frozenset whose items were cut became a list
            return f"<{type(key).__name__} key>"
        return new

    def value(self, value: object, depth: int) -> object:
        """Return `value` within the caps (itself when nothing was cut), charging what it costs."""
        kind = type(value)
        if kind in SCALARS:
            size = value.__sizeof__()
            if size > self.room() + _OVERHEAD:  # an int of millions of digits
                self.cut += 1
                value = f"<int of {value.bit_length()} bits>"  # type: ignore[attr-defined]  # an int
                size = value.__sizeof__()
            self.size += size
            return value
        if kind is str or isinstance(value, str):
            return self.text(value)  # type: ignore[arg-type]  # a str
        if isinstance(value, (bytes, bytearray)):
            return self.binary(value)
        if isinstance(value, (Mapping, *_SEQUENCES)):
            return self.container(value, depth)
        try:
            self.size += sys.getsizeof(value)
        except Exception:  # an object whose __sizeof__ raises: charge what an item costs
            self.size += ITEM_BYTES
        return value

    def full(self) -> bool:
        """Tell whether one more item would take the event past its share, marker included."""
        return self.size + ITEM_BYTES + _OVERHEAD > self.max_event_bytes

    def cut_short(self, left: int) -> str:
        """Return the marker that ends a container cut short, `left` items before its end, and charge it."""
        self.cut += 1
        self.size += ITEM_BYTES + _OVERHEAD
        return f"...[{left} more items truncated]"

    def room(self) -> int:
        """Return how many bytes the next value may keep: the cap, or what is left of the event's share."""
        return max(0, min(self.max_value_bytes, self.max_event_bytes - self.size - _OVERHEAD))

    def text(self, text: str) -> str:
        room = self.room()
        if len(text) > room // 4:  # might be longer than `room` in UTF-8: measure
            encoded = text.encode("utf-8", "surrogatepass")
            if len(encoded) > room and self.before_cut is not None:
                text = self.before_cut(text)
                encoded = text.encode("utf-8", "surrogatepass")
            if len(encoded) > room:
                self.cut += 1
                kept = encoded[:room].decode("utf-8", "ignore")  # whole characters only
                kept_bytes = room if text.isascii() else len(kept.encode("utf-8", "surrogatepass"))
                text = kept + truncated(len(encoded) - kept_bytes)
        self.size += sys.getsizeof(text)
        return text

    def binary(self, data: bytes | bytearray) -> object:
        room = self.room()
        if len(data) <= room:
            self.size += sys.getsizeof(data)
            return data
        if self.before_cut is not None:  # a secret in it is found whole, as redaction reads bytes: as text
            text = bytes(data).decode("utf-8", "replace")
            redacted = self.before_cut(text)
            if redacted is not text:
                return self.text(redacted)
        self.cut += 1
        kept = room // 4  # shown as Python writes bytes, up to four characters a byte
        shown = f"{bytes(data[:kept])!r}{truncated(len(data) - kept)}"
        self.size += sys.getsizeof(shown)
        return shown

    def container(self, value: Mapping[Any, Any] | Any, depth: int) -> object:
        """Return a container within the caps, charging it once; count it each time it is written out."""
        key = id(value)
        if key in self.path:  # a cycle: readers could never write it out, so it is marked here
            self.cut += 1
            return "<cycle>"
        if key in self.done:  # shared: charged once, cut once, but written out each time it appears
            _, fitted, written = self.done[key]
            self.containers -= written
            if self.containers < 0:
                self.cut += 1
                return "...[too large]"
            return fitted
        if depth >= MAX_DEPTH or self.containers <= 0 or self.full():
            self.cut += 1
            self.size += ITEM_BYTES
            return "...[nested too deep]" if depth >= MAX_DEPTH else "...[too large]"
        before = self.containers
        self.containers -= 1
        self.size += ITEM_BYTES
        self.path.add(key)
        try:
            if isinstance(value, Mapping):
                result: object = self.mapping(value, depth)
            else:
                result = self.sequence(value, depth)
        finally:
            self.path.discard(key)
        # Kept with its value, so that the id is not reused, and with what writing it out costs.
        self.done[key] = (value, result, before - self.containers)
        return result

    def sequence(self, items: Any, depth: int) -> object:
        found = list(items)
        fitted: list[object] = []
        for item in found:
            if self.full():
                fitted.append(self.cut_short(len(found) - len(fitted)))
                break
            self.size += ITEM_BYTES
            fitted.append(self.value(item, depth + 1))
        if _same(fitted, found):
            return items
        return tuple(fitted) if type(items) is tuple else fitted


def _unique(key: object, taken: dict[Any, Any]) -> object:
    """Return `key`, or a variant of it that is not among `taken`'s keys yet."""
    if key not in taken:
        return key
    count = 2
    while f"{key} ({count})" in taken:
        count += 1
    return f"{key} ({count})"


def _same(fitted: list[Any], original: list[Any]) -> bool:
    """Tell whether fitting changed nothing: the same items, the same objects."""
    return len(fitted) == len(original) and all(map(operator.is_, fitted, original))
