"""`Redaction`: sensitive values in payloads are replaced by a marker before any reader sees them.

A key is sensitive when one of its *parts* is a sensitive word: keys are split on ``.``, ``_``, ``-``,
spaces and camelCase boundaries and compared case-insensitively, word by word and two words at a time.
So ``password``, ``db.password``, ``http.request.header.authorization``, ``X-Api-Key``, ``apiKey`` and
``session_token`` are sensitive, while ``gen_ai.usage.input_tokens``, ``max_tokens``, ``session.id``
and ``author`` are not. The value under a sensitive key is replaced whole, whatever it is; mappings and
lists (and tuples, sets, deques, dataclasses) under other keys are searched, to any depth; any other
object, whose text could show anything, is shown by its type alone (``"<Credentials>"``). Optional
regular expressions also replace matching parts of string values (an ``sk-...`` key pasted into a
prompt, a ``Bearer ...`` header value), bytes included.

Redaction is applied where a payload becomes an `Event` for a reader, and before anything leaves the
process, on every capture path and every built-in backend.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import enum
import ipaddress
import itertools
import numbers
import pathlib
import re
import threading
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from otel_eventlog import _forks
from otel_eventlog.errors import ArgumentTypeError, ArgumentValueError

__all__ = ["DEFAULT_SENSITIVE_KEYS", "REDACTED", "Redaction"]

#: What a redacted value reads as.
REDACTED = "[redacted]"

#: The key words (one word, or two written apart) whose values are redacted by default.
DEFAULT_SENSITIVE_KEYS: frozenset[str] = frozenset(
    {
        "password",
        "passwords",
        "passwd",
        "pwd",
        "secret",
        "secrets",
        "token",
        "apikey",
        "apikeys",
        "api key",
        "api keys",
        "authorization",
        "auth",
        "cookie",
        "cookies",
        "sessionid",
        "credential",
        "credentials",
        "privatekey",
        "privatekeys",
        "private key",
        "private keys",
        "accesskey",
        "accesskeys",
        "access key",
        "access keys",
        "client secret",
        "client secrets",
        "jwt",
        "bearer",
        "csrf",
        "xsrf",
    }
)

# Values whose text shows nothing a secret could hide in beyond what they plainly are.
_SHOWN_AS_THEY_ARE = (
    numbers.Number,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    datetime.tzinfo,
    uuid.UUID,
    pathlib.PurePath,
    ipaddress.IPv4Address,
    ipaddress.IPv6Address,
    ipaddress.IPv4Network,
    ipaddress.IPv6Network,
    range,
    enum.Enum,
    type,
    type(None),
)
_MAX_CONTAINERS = 10_000  # searched in one payload; past that, values are not shown


class _Walk:
    """Where one payload's search stands: the containers above, those done, and the budget left.

    The budget counts containers as a reader would see them written out: a value shared by many
    keys costs its size each time, so that a payload with a few containers but countless paths
    through them is cut short (``"<too large>"``) rather than written out path by path.
    """

    __slots__ = ("budget", "done", "path")

    def __init__(self) -> None:
        self.path: set[int] = set()
        self.done: dict[int, tuple[object, Any, int]] = {}
        self.budget = _MAX_CONTAINERS


_PARTS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_MAX_DEPTH = 32  # deeper than this, a value is redacted rather than searched
_CACHE_LIMIT = 10_000


class Redaction:
    """A policy that replaces sensitive values in payloads by `REDACTED`. Thread-safe.

    Args:
        keys: Key words to redact, besides the defaults (or instead of them); one word, or two
            written apart (``"api key"``), compared with the parts of each key, case-insensitively.
        default_keys: Whether `DEFAULT_SENSITIVE_KEYS` are redacted too.
        patterns: Regular expressions; what they match in a string value is replaced by `REDACTED`.
        enabled: ``False`` turns redaction off: payloads are shown as they are.

    Raises:
        ArgumentTypeError: If `keys` or `patterns` is not an iterable of strings.
        ArgumentValueError: If a key is empty or a pattern is not a valid regular expression.
    """

    def __init__(
        self,
        keys: Iterable[str] = (),
        *,
        default_keys: bool = True,
        patterns: Iterable[str] = (),
        enabled: bool = True,
    ) -> None:
        words = {_word(key) for key in _strings(keys, "keys")}
        self._words = frozenset(words | (DEFAULT_SENSITIVE_KEYS if default_keys else frozenset()))
        self._patterns = tuple(_compile(pattern) for pattern in _strings(patterns, "patterns"))
        self._enabled = bool(enabled)
        self._verdicts: dict[str, bool] = {}  # key -> sensitive, learnt as keys are seen
        # The value types that cannot hold a secret to find: strings too, unless patterns look in them.
        self._plain = frozenset({int, float, bool, type(None)} | (set() if self._patterns else {str}))
        self._lock = threading.Lock()
        self._redacted = 0
        _forks.track(self)

    def _locks_held_across_fork(self) -> tuple[threading.Lock, ...]:
        return (self._lock,)

    def _after_fork_in_child(self) -> None:  # nothing to resume
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """Whether anything is redacted at all."""
        return self._enabled

    @property
    def rewrites_text(self) -> bool:
        """Whether redaction can replace part of a string (with `patterns`), making a new string."""
        return self._enabled and bool(self._patterns)

    @property
    def redacted(self) -> int:
        """How many values were redacted so far."""
        return self._redacted

    def redact_text(self, text: str) -> str:
        """Return `text` with what the patterns match replaced by `REDACTED`; `text` itself if nothing is.

        For a value about to be cut: a secret across the cut would otherwise keep its first part,
        which no pattern finds once the rest is gone.
        """
        if not (self._enabled and self._patterns):
            return text
        changed = self._text(text)
        return text if changed is None else changed

    def apply(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Return `payload` as a dict with its sensitive values replaced; the dict itself if none is.

        Never raises: a value that cannot be searched is redacted.
        """
        if not self._enabled:
            return _as_dict(payload)
        verdicts, plain = self._verdicts, self._plain
        try:
            for key, value in payload.items():  # the common case: known, harmless keys and plain values
                if verdicts.get(key) is not False or type(value) not in plain:
                    break
            else:
                return _as_dict(payload)
            redacted = self._container(payload, 0, _Walk())
            return _as_dict(payload) if redacted is None else redacted
        except Exception:  # a payload that cannot be searched is not shown
            self._count()
            return {"payload": REDACTED}

    def is_sensitive(self, key: object) -> bool:
        """Tell whether values under `key` are redacted."""
        if not isinstance(key, str):
            key = str(key)
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._judge(key)
            if len(self._verdicts) >= _CACHE_LIMIT:
                self._verdicts.clear()
            self._verdicts[key] = verdict
        return verdict

    def _judge(self, key: str) -> bool:
        parts = [part.lower() for part in _PARTS.findall(key)]
        words = self._words
        if any(part in words for part in parts):
            return True
        return any(f"{first} {second}" in words for first, second in itertools.pairwise(parts))

    def _mapping(self, payload: Mapping[Any, Any], depth: int, walk: _Walk) -> dict[Any, Any] | None:
        """Return a redacted copy of `payload`, or None when nothing in it is redacted."""
        copy: dict[Any, Any] | None = None
        verdicts, plain = self._verdicts, self._plain
        for key, value in payload.items():
            # The common case costs a lookup and a type test: a key judged before, a value that is
            # a number, or a string when no pattern looks into strings.
            sensitive = verdicts.get(key) if type(key) is str else None
            if sensitive is None:
                sensitive = self.is_sensitive(key)
            if sensitive:
                new: Any = REDACTED
                self._count()
            elif type(value) in plain:
                continue
            else:
                new = self._value(value, depth + 1, walk)
                if new is None:
                    continue
            if copy is None:
                copy = dict(payload)
            copy[key] = new
        return copy

    def _value(self, value: object, depth: int, walk: _Walk) -> Any:
        """Return a redacted copy of `value`, or None when nothing in it is redacted.

        Containers are searched; an object whose text is all a reader could see of it, and which
        could hold anything, is shown by its type alone.
        """
        if isinstance(value, str):
            return self._text(value)
        if isinstance(value, _SHOWN_AS_THEY_ARE):
            return None
        if isinstance(value, (bytes, bytearray)):
            return self._text(bytes(value).decode("utf-8", "replace")) if self._patterns else None
        return self._container(value, depth, walk)

    def _container(self, value: object, depth: int, walk: _Walk) -> Any:
        """Return a redacted copy of a value that may hold others, or None when nothing is redacted.

        Each container is searched once per payload (a value shared by many keys is not searched
        again), within a budget: what lies past it, or too deep, is not shown.
        """
        key = id(value)
        if key in walk.path:
            return "<cycle>"  # the readers' encoder would show what the loop holds: mark it here
        if key in walk.done:  # shared: its copy (or itself) is written again, and costs it again
            _, result, size = walk.done[key]
            walk.budget -= size
            if walk.budget < 0:
                self._count()
                return "<too large>"
            return result
        if depth >= _MAX_DEPTH or walk.budget <= 0:
            self._count()
            return REDACTED if depth >= _MAX_DEPTH else "<too large>"
        before = walk.budget
        walk.budget -= 1
        walk.path.add(key)
        try:
            result = self._search(value, depth, walk)
        finally:
            walk.path.discard(key)
        # Kept with its value, so that the id is not reused, and with what writing it out costs.
        walk.done[key] = (value, result, before - walk.budget)
        return result

    def _search(self, value: object, depth: int, walk: _Walk) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {field.name: getattr(value, field.name, None) for field in dataclasses.fields(value)}
            return self._mapping(fields, depth, walk) or fields  # shown by its fields, not its text
        if isinstance(value, Mapping):
            return self._mapping(value, depth, walk)
        if isinstance(value, tuple) and isinstance(names := getattr(type(value), "_fields", None), tuple):
            # A named tuple: searched by its names, as a dataclass is.
            return self._mapping(dict(zip(names, value, strict=False)), depth, walk)
        if isinstance(value, (list, tuple, set, frozenset, collections.deque)):
            items = list(value)
            found = [self._value(item, depth + 1, walk) for item in items]
            if all(item is None for item in found):
                return None
            return [original if item is None else item for original, item in zip(items, found, strict=True)]
        self._count()
        return f"<{type(value).__name__}>"

    def _text(self, text: str) -> str | None:
        changed = text
        for pattern in self._patterns:
            changed = pattern.sub(REDACTED, changed)
        if changed is text:
            return None
        self._count()
        return changed

    def _count(self) -> None:
        with self._lock:
            self._redacted += 1

    def __repr__(self) -> str:
        if not self._enabled:
            return "Redaction(enabled=False)"
        return f"Redaction({len(self._words)} key words, {len(self._patterns)} patterns)"


def _as_dict(payload: Mapping[str, Any]) -> dict[str, Any]:
    return payload if type(payload) is dict else dict(payload)


def _strings(values: Iterable[str], name: str) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise ArgumentTypeError(f"{name} must be an iterable of strings, got {type(values).__name__}")
    found = list(values)
    for value in found:
        if not isinstance(value, str):
            raise ArgumentTypeError(f"{name} must hold strings, got {type(value).__name__}")
        if not value.strip():
            raise ArgumentValueError(f"{name} must not hold an empty string")
    return found


def _word(key: str) -> str:
    """Return a configured key word as it is compared: its parts, lower case, one space apart."""
    return " ".join(part.lower() for part in _PARTS.findall(key))


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except (re.error, OverflowError, RecursionError, ValueError) as error:
        raise ArgumentValueError(
            f"patterns: {pattern!r} is not a valid regular expression: {error}"
        ) from None


#: Redaction with the defaults: what a log built without one uses.
DEFAULT = Redaction()
