"""Matching event kinds against exact names and shell-style patterns such as ``"turn.*"``.

The one home of the pattern rules: readers filter with `kind_matcher` (``read(kinds=...)``, ``?kind=``)
and the capture processors with `capture_filter` (``include`` / ``exclude``).
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable, Iterable

from otel_eventlog.errors import ArgumentTypeError, ArgumentValueError

__all__ = ["KindMatcher", "capture_filter", "kind_matcher"]

KindMatcher = Callable[[str], bool]

_WILDCARDS = frozenset("*?[")


def kind_matcher(kinds: str | Iterable[str], *, argument: str = "kinds") -> KindMatcher:
    """Return a predicate that is true for the kinds that `kinds` names.

    Args:
        kinds: One name or pattern, or an iterable of them. Patterns use `fnmatch` syntax and are
            case-sensitive, like the names they match. An empty iterable matches nothing.
        argument: The name to use for `kinds` in error messages.

    Raises:
        ArgumentTypeError: If `kinds` is not a string or an iterable of strings.
        ArgumentValueError: If a name is empty.
    """
    if isinstance(kinds, str):
        patterns: tuple[str, ...] = (kinds,)
    elif isinstance(kinds, Iterable):
        patterns = tuple(kinds)
    else:
        raise ArgumentTypeError(
            f"{argument} must be a string or an iterable of strings, got {type(kinds).__name__}"
        )
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise ArgumentTypeError(f"{argument} must contain strings, got {pattern!r}")
        if not pattern:
            raise ArgumentValueError(f"{argument} must not contain an empty name")
    return _compile(frozenset(patterns))


def capture_filter(
    include: str | Iterable[str] | None, exclude: str | Iterable[str] | None
) -> KindMatcher | None:
    """Return a predicate for the event names to capture: in `include` (all if None), not in `exclude`.

    Returns ``None`` when every name is captured, so that the hot paths can skip the call.

    Raises:
        ArgumentTypeError: If a filter is not a string or an iterable of strings.
        ArgumentValueError: If a filter holds an empty name.
    """
    included = None if include is None else kind_matcher(include, argument="include")
    excluded = None if exclude is None else kind_matcher(exclude, argument="exclude")
    if excluded is None:
        return included
    if included is None:
        return lambda name: not excluded(name)
    return lambda name: included(name) and not excluded(name)


@functools.lru_cache(maxsize=128)
def _compile(patterns: frozenset[str]) -> KindMatcher:
    # Exact names, by far the common case, cost one set lookup; all the patterns share one regex.
    exact = frozenset(p for p in patterns if _WILDCARDS.isdisjoint(p))
    wild = sorted(patterns - exact)
    if not wild:
        return exact.__contains__
    match = re.compile("|".join(fnmatch.translate(p) for p in wild)).match
    if not exact:
        return lambda kind: match(kind) is not None
    return lambda kind: kind in exact or match(kind) is not None
