"""Tests for the Activity readers' JSON: no stored value can break a response or a stream."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from otel_eventlog._json import MAX_DEPTH, dumps


class Unprintable:
    """An object whose __str__ raises, as a careless application's might."""

    def __str__(self) -> str:
        raise RuntimeError("no")


class BrokenMapping(dict[str, Any]):
    """A dict whose items() raises."""

    def items(self) -> Any:
        """Fail."""
        raise RuntimeError("no")


def test_common_values_encode_as_json_does() -> None:
    """Plain data is encoded compactly, exactly as json.dumps would."""
    data = {"kind": "turn.started", "payload": {"turn": 1, "tags": ["a", "b"], "ok": True, "none": None}}
    assert dumps(data) == json.dumps(data, separators=(",", ":")).encode()


def test_values_json_cannot_hold_become_marked_strings() -> None:
    """A cycle, deep nesting, unprintable objects, huge ints, NaN and odd keys each become a placeholder."""
    cyclic: dict[str, Any] = {"name": "loop"}
    cyclic["self"] = cyclic
    deep: list[Any] = []
    for _ in range(5_000):
        deep = [deep]
    data = {
        "cycle": cyclic,
        "deep": deep,
        "object": Unprintable(),
        "huge": 10**5000,
        "nan": math.nan,
        "set": {1},
        "broken": BrokenMapping(a=1),
        (1, 2): "tuple key",
        3: "int key",
    }
    decoded = json.loads(dumps(data))
    assert decoded["cycle"] == {"name": "loop", "self": "<cycle>"}
    assert json.dumps(decoded["deep"]).count("[") == MAX_DEPTH - 1  # counted from the top-level mapping
    assert decoded["object"] == "<unprintable Unprintable>"
    assert decoded["huge"].startswith("<int of ")
    assert decoded["nan"] == "nan"
    assert decoded["set"] == [1]
    assert decoded["broken"] == "{'a': 1}"  # its items() raised: shown as text
    assert decoded["(1, 2)"] == "tuple key"
    assert decoded["3"] == "int key"


def test_a_value_that_appears_twice_is_not_a_cycle() -> None:
    """The same list under two keys is written twice, not marked."""
    shared = [1, 2]
    assert json.loads(dumps({"a": shared, "b": shared, "c": Unprintable()}))["b"] == [1, 2]


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.builds(Unprintable),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=5) | st.integers(), children, max_size=4)
        | st.tuples(children, children)
    ),
    max_leaves=30,
)


@settings(max_examples=300)
@given(json_like)
def test_anything_encodes_to_valid_json(value: Any) -> None:
    """Whatever a payload holds, dumps returns bytes that parse as JSON."""
    json.loads(dumps({"payload": value}))
