"""Tests for `Event` and `Page`, the records readers receive."""

from __future__ import annotations

import dataclasses
import json

import pytest

from otel_eventlog import Event, Page

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"


def test_event_is_immutable() -> None:
    """Assigning to an event's field raises."""
    event = Event(1, 2.0, "turn.started", {})
    with pytest.raises(AttributeError):
        event.kind = "other"  # type: ignore[misc]


def test_to_dict_has_exactly_the_wire_keys_without_ids() -> None:
    """An event without trace ids serialises to id, timestamp, kind and payload only."""
    event = Event(7, 1.5, "turn.started", {"turn": 41})
    assert event.to_dict() == {"id": 7, "timestamp": 1.5, "kind": "turn.started", "payload": {"turn": 41}}


def test_to_dict_adds_trace_and_span_ids_when_set() -> None:
    """An event with trace ids serialises them as well."""
    event = Event(7, 1.5, "turn.started", {}, TRACE_ID, SPAN_ID)
    assert event.to_dict() == {
        "id": 7,
        "timestamp": 1.5,
        "kind": "turn.started",
        "payload": {},
        "trace_id": TRACE_ID,
        "span_id": SPAN_ID,
    }


def test_to_dict_adds_only_the_id_that_is_set() -> None:
    """An event with a trace id but no span id serialises only the trace id."""
    assert set(Event(1, 0.0, "k", {}, TRACE_ID).to_dict()) == {
        "id",
        "timestamp",
        "kind",
        "payload",
        "trace_id",
    }


def test_to_dict_payload_is_a_copy() -> None:
    """Changing the payload of a serialised event leaves the event unchanged."""
    event = Event(1, 0.0, "k", {"a": 1})
    event.to_dict()["payload"]["a"] = 2
    assert event.payload == {"a": 1}


def test_page_is_immutable_and_serialises_as_json() -> None:
    """A page is frozen and its wire form is JSON with the cursor fields."""
    page = Page(
        events=(Event(3, 1.0, "k", {"x": "y"}),), cursor=3, missed=2, oldest_id=3, latest_id=3, epoch="e"
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        page.cursor = 4  # type: ignore[misc]
    assert json.loads(json.dumps(page.to_dict())) == {
        "events": [{"id": 3, "timestamp": 1.0, "kind": "k", "payload": {"x": "y"}}],
        "cursor": 3,
        "missed": 2,
        "oldest_id": 3,
        "latest_id": 3,
        "epoch": "e",
    }
