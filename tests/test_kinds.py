"""Tests for matching event kinds by name and by shell-style pattern."""

from __future__ import annotations

import pytest

from otel_eventlog._kinds import kind_matcher


def test_exact_names_match_only_themselves() -> None:
    """An exact name matches that kind and no other, case-sensitively."""
    match = kind_matcher(["turn.started", "tool.called"])
    assert [match(k) for k in ("turn.started", "tool.called", "turn.completed", "Turn.started")] == [
        True,
        True,
        False,
        False,
    ]


def test_patterns_match_like_fnmatch() -> None:
    """A pattern with wildcards matches every kind it describes, and only those."""
    match = kind_matcher("turn.*")
    assert match("turn.started")
    assert match("turn.")
    assert not match("tool.called")
    assert not match("returns.turn.x")


def test_names_and_patterns_combine() -> None:
    """Exact names and patterns in one filter match the union of what each matches."""
    match = kind_matcher(["tool.called", "turn.?tarted", "span.[se]*"])
    assert match("tool.called")
    assert match("turn.started")
    assert match("span.ended")
    assert not match("turn.completed")


def test_a_single_string_is_one_name_not_characters() -> None:
    """A bare string is one name, not an iterable of one-letter names."""
    match = kind_matcher("abc")
    assert match("abc")
    assert not match("a")


def test_an_empty_collection_matches_nothing() -> None:
    """An empty filter lets no kind through."""
    assert not kind_matcher([])("turn.started")


@pytest.mark.parametrize(
    ("kinds", "error", "message"),
    [
        (42, TypeError, "kinds must be a string or an iterable of strings, got int"),
        (["ok", 3], TypeError, "kinds must contain strings, got 3"),
        (["ok", ""], ValueError, "kinds must not contain an empty name"),
    ],
)
def test_bad_filters_are_rejected_with_the_argument_named(kinds: object, error: type, message: str) -> None:
    """A filter that is not strings, or holds an empty name, raises naming the argument."""
    with pytest.raises(error, match=message):
        kind_matcher(kinds)  # type: ignore[arg-type]
