"""Memory bounded by bytes: the value cap, the byte budget, and what an event is charged."""

from __future__ import annotations

import ast
import collections
import dataclasses
import gc
import json
import logging
import re
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider

from otel_eventlog import Entry, InMemoryEventLog, load_config
from otel_eventlog._sizing import MAX_CONTAINERS, MAX_DEPTH, Limits, truncated
from otel_eventlog.capture import EventLogHandler, EventLogSpanProcessor
from otel_eventlog.config import ConfigError
from otel_eventlog.event import SpanEventRef
from tests.helpers import ManualClock

KIB = 1024
MIB = 1024 * KIB


def limits(value: int = 100, event: int = 10 * MIB) -> Limits:
    return Limits(value, event)


# the value cap


def test_a_long_string_is_cut_and_says_how_much_went() -> None:
    """A string over max_value_bytes keeps its first max_value_bytes bytes and a marker of the rest."""
    payload, _, cut = limits(10).fit({"prompt": "x" * 25, "turn": 3})
    assert payload == {"prompt": "x" * 10 + "...[15 bytes truncated]", "turn": 3}
    assert cut == 1


def test_what_fits_comes_back_untouched() -> None:
    """A payload within the caps is the same dict, uncut."""
    original = {"prompt": "x" * 10, "nested": {"list": ["y" * 10, 1, 2.5, None, True]}}
    payload, _, cut = limits(10).fit(original)
    assert payload is original
    assert cut == 0


def test_text_is_cut_in_utf8_bytes_on_a_character_boundary() -> None:
    """The cap counts UTF-8 bytes, and a cut never splits a character."""
    payload, _, cut = limits(10).fit({"text": "é" * 8})  # 16 bytes
    assert payload["text"] == "é" * 5 + "...[6 bytes truncated]"
    payload, _, _ = limits(10).fit({"text": "€" * 4})  # 12 bytes: the fourth does not fit whole
    assert payload["text"] == "€" * 3 + "...[3 bytes truncated]"
    assert cut == 1


def test_values_are_cut_wherever_they_are_nested() -> None:
    """Strings in lists, tuples and mappings at any depth are cut; the containers keep their shape."""
    messages = [{"role": "user", "content": "hello there"}]
    payload, _, cut = limits(4).fit({"messages": messages, "pair": ("abcdef", 1)})
    assert payload == {
        "messages": [{"role": "user", "content": "hell...[7 bytes truncated]"}],
        "pair": ("abcd...[2 bytes truncated]", 1),
    }
    assert cut == 2


def test_long_bytes_and_long_keys_are_cut_too() -> None:
    """Bytes past the cap are shown as Python writes them, cut and marked; so is a long key."""
    payload, _, cut = limits(8).fit({"blob": b"\x00" * 100, "k" * 200: 1})
    assert payload["blob"] == "b'\\x00\\x00'...[98 bytes truncated]"
    assert ("k" * 8 + "...[192 bytes truncated]") in payload
    assert cut == 2


def test_a_shared_value_is_cut_once_and_stays_shared() -> None:
    """A container that appears under two keys is cut once and both keys show the same copy."""
    shared = ["z" * 50]
    payload, _, cut = limits(10).fit({"a": shared, "b": shared})
    assert payload["a"] is payload["b"]
    assert payload["a"] == ["z" * 10 + "...[40 bytes truncated]"]
    assert cut == 1


def test_cycles_deep_nesting_and_huge_containers_are_bounded() -> None:
    """A cycle is kept as it is; nesting past MAX_DEPTH and containers past MAX_CONTAINERS become markers."""
    cyclic: dict[str, Any] = {"name": "loop"}
    cyclic["self"] = cyclic
    payload, _, cut = limits(3).fit({"cyclic": cyclic})
    assert payload["cyclic"] == {"name": "loo...[1 bytes truncated]", "self": "<cycle>"}
    assert cut == 2  # the cycle is not kept: it would keep the uncut value alive

    deep: list[Any] = []
    node = deep
    for _ in range(5_000):
        node.append([])
        node = node[0]
    payload, _, cut = limits().fit({"deep": deep})
    depth, node = 0, payload["deep"]
    while isinstance(node, list):
        node, depth = node[0], depth + 1
    assert node == "...[nested too deep]"
    assert depth == MAX_DEPTH - 1
    assert cut == 1

    many = {"lists": [[n] for n in range(MAX_CONTAINERS + 10)]}
    payload, _, cut = limits().fit(many)
    assert payload["lists"][-1] == "...[too large]"
    assert cut == 11


def test_shared_values_count_each_time_a_reader_would_write_them_out() -> None:
    """A payload whose few containers have countless paths through them is cut short, not kept to explode."""
    node: list[Any] = ["leaf"]
    for _ in range(40):  # 2**40 leaves once written out, from 41 lists
        node = [node, node]
    payload, size, cut = limits().fit({"dag": node})
    assert cut >= 1
    assert size < 10 * MIB
    assert len(json.dumps(payload)) < 1_000_000
    small = [1, 2]
    payload, _, cut = limits().fit({"a": small, "b": small, "c": {"d": small}})
    assert cut == 0
    assert payload["a"] is small


def test_an_event_larger_than_the_budget_is_cut_to_fit_it() -> None:
    """Values past max_event_bytes are cut, and a long list is cut short with a count of what went."""
    payload, size, cut = Limits(10 * KIB, 4 * KIB).fit({"items": list(range(10_000)), "after": "x" * 5000})
    assert payload["items"][-1].startswith("...[")
    assert payload["items"][-1].endswith(" more items truncated]")
    assert "after" not in payload
    assert payload["..."] == "...[1 more items truncated]"
    assert size <= 4 * KIB + 512  # the share, and a marker for each container cut short
    assert cut == 2


class Unsized:
    """An object whose size cannot be taken."""

    def __sizeof__(self) -> int:
        raise RuntimeError("no size")


class BadMapping(collections.abc.Mapping[str, Any]):
    """A mapping that cannot be read."""

    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __iter__(self) -> Any:
        raise RuntimeError("cannot iterate")

    def __len__(self) -> int:
        return 1


def test_what_cannot_be_sized_is_charged_or_marked_never_raised() -> None:
    """An object whose size raises is kept and charged as an item; a payload that cannot be read is marked."""
    value = Unsized()
    payload, size, _ = limits().fit({"odd": value})
    assert payload["odd"] is value
    assert size > 0
    payload, _, cut = limits().fit({"bad": BadMapping()})
    assert payload == {"payload": "<unsizable>"}
    assert cut == 1


@dataclasses.dataclass
class Turn:
    """An application's own record."""

    prompt: str


def test_other_objects_are_charged_their_own_size_and_kept() -> None:
    """A dataclass is kept as it is (readers show its fields); it is charged its own size."""
    turn = Turn("p" * 1000)
    payload, size, cut = limits(10).fit({"turn": turn})
    assert payload["turn"] is turn
    assert cut == 0
    assert size > 0


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=30), children, max_size=5)
        | st.tuples(children, children)
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=80), json_like, max_size=8), st.integers(1, 200))
def test_fit_never_raises_and_every_string_fits_the_cap(payload: dict[str, Any], cap: int) -> None:
    """For any payload, every value fit returns fits the cap (marker aside), and so does a key past 64."""
    fitted, size, cut = Limits(cap, 10 * MIB).fit(payload)
    assert size > 0
    assert cut >= 0
    if cut == 0:
        assert fitted is payload

    def check(value: Any) -> None:
        if isinstance(value, str):
            text = value.rsplit("...[", 1)[0] if value.endswith(" truncated]") else value
            if text != value and text[:2] in ("b'", 'b"'):  # cut bytes, shown as Python writes them
                assert len(ast.literal_eval(text)) <= cap
            else:
                assert len(text.encode("utf-8", "surrogatepass")) <= cap
        elif isinstance(value, (bytes, bytearray)):
            assert len(value) <= cap
        elif isinstance(value, dict):
            for key, item in value.items():
                if len(key) > 64:
                    check(key)
                check(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                check(item)

    check(fitted)


# the estimate against what CPython keeps


def measured_bytes_per_event(make_payload: Any, count: int = 2000) -> tuple[float, float]:
    """Return what `count` resident events cost as tracemalloc measures, and as the log charges, per event."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    log = InMemoryEventLog(max_entries=count, max_bytes=1 << 40)
    for n in range(count):
        log.append("turn.completed", make_payload(n))
    measured = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return measured / count, log.stats()["resident_bytes"] / count


@pytest.mark.parametrize(
    "make_payload",
    [
        lambda n: {"turn": n, "tool": "search", "ok": True},
        lambda n: {"prompt": f"{n} " + "a" * 2000, "model": "gpt-4o-mini", "tokens": n * 3},
        lambda n: {"completion": f"{n} " + "é" * 10_000},
        lambda n: {"messages": [{"role": "user", "content": f"question {n} " * 20}] * 3, "n": n},
        lambda n: {"values": [float(v) for v in range(n % 50)]},
        lambda n: {"emoji": f"{n}" + "\N{GRINNING FACE}" * 900},
        lambda n: {f"{n}-{k}-" + "\N{GRINNING FACE}" * 20: k for k in range(20)},
        lambda n: {"n": n << 2000},
    ],
    ids=["small", "prompt", "non-ascii", "messages", "floats", "emoji", "unique-keys", "big-int"],
)
def test_the_charge_covers_what_the_event_really_costs(make_payload: Any) -> None:
    """For the payloads applications log, the charge is at least what tracemalloc measures, not far above."""
    measured, charged = measured_bytes_per_event(make_payload)
    assert measured * 0.95 <= charged <= measured * 2.5, (measured, charged)


# the byte budget on the log


def test_the_oldest_events_are_evicted_to_fit_max_bytes_and_readers_are_told() -> None:
    """Past max_bytes the oldest events go first; a reader's missed counts them like any eviction."""
    log = InMemoryEventLog(max_bytes=64 * KIB, max_value_bytes=16 * KIB)
    for n in range(20):
        log.append("chunk", {"n": n, "text": "x" * 8000})
    stats = log.stats()
    assert stats["resident_bytes"] <= 64 * KIB
    assert 5 <= stats["resident"] < 20
    assert stats["evicted_by_bytes"] == 20 - stats["resident"]
    page = log.read(since=0)
    assert page.missed == 20 - stats["resident"]
    assert [event.payload["n"] for event in page.events] == list(range(20 - stats["resident"], 20))


def test_the_newest_event_always_stays_cut_to_fit() -> None:
    """An event bigger than the whole budget evicts all others, and stays, its values cut to fit."""
    log = InMemoryEventLog(max_bytes=4 * KIB, max_value_bytes=16 * KIB)
    log.append("small")
    event = log.append("huge", {"text": "x" * 100_000})
    assert len(log) == 1
    assert event.payload["text"].endswith("bytes truncated]")
    assert log.stats()["resident_bytes"] <= 4 * KIB + 512


def test_batches_and_span_events_are_charged_and_cut_like_appends(clock: ManualClock) -> None:
    """Extend and write_batch cut long values, span events by reference included, and respect the budget."""
    log = InMemoryEventLog(max_bytes=40 * KIB, max_value_bytes=1 * KIB, now=clock)
    log.extend([Entry("a", {"text": "x" * 5000}), Entry("b", {"n": 1})])
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("s") as span:
        span.add_event("gen_ai.choice", {"gen_ai.completion": "y" * 5000, "short": "ok"})
        span.add_event("plain", {"short": "ok"})
    context = span.get_span_context()
    refs = [SpanEventRef(e.timestamp, e, context.trace_id, context.span_id) for e in span.events]
    log.write_batch(list(refs))
    events = log.query()
    assert [event.kind for event in events] == ["a", "b", "gen_ai.choice", "plain"]
    assert events[0].payload["text"] == "x" * 1024 + "...[3976 bytes truncated]"
    assert events[2].payload == {"gen_ai.completion": "y" * 1024 + "...[3976 bytes truncated]", "short": "ok"}
    assert events[2].trace_id == f"{context.trace_id:032x}"
    assert events[3].payload == {"short": "ok"}
    assert log.stats()["truncated"] == 2
    for n in range(100):
        log.extend([Entry("c", {"n": n, "text": "z" * 1000})] * 3)
    assert log.stats()["resident_bytes"] <= 40 * KIB
    assert log.stats()["evicted_by_bytes"] > 0


def test_ttl_count_and_bytes_eviction_keep_the_charge_exact(clock: ManualClock) -> None:
    """Whatever evicts an event, the resident charge is the sum of what the resident events were charged."""
    log = InMemoryEventLog(ttl_seconds=10, max_entries=50, max_bytes=30 * KIB, now=clock)
    charge = Limits(log.max_value_bytes, log.max_bytes).fit
    charges: dict[int, int] = {}
    for n in range(400):
        payload = {"text": "x" * (n * 37 % 3000)}
        charges[log.append("e", payload).id] = charge(payload)[1]
        if n % 7 == 0:
            clock.advance(3)
        if n % 50 == 49:
            batch = [{"text": "y" * 900, "n": m} for m in range(30)]
            for event_id, payload in zip(log.extend(Entry("batch", p) for p in batch), batch, strict=True):
                charges[event_id] = charge(payload)[1]
        if n == 222:
            log.clear()
        resident = log.read().events
        assert log.stats()["resident_bytes"] == sum(charges[event.id] for event in resident)
        assert log.stats()["resident_bytes"] <= 30 * KIB
    stats = log.stats()
    assert min(stats["evicted_by_ttl"], stats["evicted_by_count"], stats["evicted_by_bytes"]) > 0


def test_memory_does_not_grow_with_max_entries_before_events_arrive() -> None:
    """A log built for a hundred million events costs next to nothing until events arrive."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    log = InMemoryEventLog(max_entries=10**8, max_bytes=2**62)
    log.append("one")
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 64 * KIB
    assert log.max_entries == 10**8


def test_the_limits_are_reported_and_checked() -> None:
    """max_bytes and max_value_bytes report what is in force; wrong types raise; non-positive fall back."""
    log = InMemoryEventLog(max_bytes=1000, max_value_bytes=10)
    assert (log.max_bytes, log.max_value_bytes) == (1000, 10)
    default = InMemoryEventLog()
    assert (default.max_bytes, default.max_value_bytes) == (64 * MIB, 16 * KIB)
    with pytest.raises(TypeError, match=r"max_bytes must be an integer or None, got float 1\.5"):
        InMemoryEventLog(max_bytes=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="max_value_bytes must be an integer or None, got str"):
        InMemoryEventLog(max_value_bytes="16KiB")  # type: ignore[arg-type]


def test_non_positive_limits_fall_back_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """max_bytes=0 means the default, and a warning says so."""
    with caplog.at_level(logging.WARNING, logger="otel_eventlog"):
        log = InMemoryEventLog(max_bytes=0, max_value_bytes=-1)
    assert (log.max_bytes, log.max_value_bytes) == (64 * MIB, 16 * KIB)
    warned = [record.getMessage().split("=")[0] for record in caplog.records]
    assert warned == ["max_bytes", "max_value_bytes"]


def test_a_stdlib_record_with_a_huge_message_is_cut_on_its_way_in() -> None:
    """The logging handler path goes through the same cap: a megabyte in extra is cut."""
    log = InMemoryEventLog(max_value_bytes=1 * KIB)
    logger = logging.getLogger("test_sizing.huge")
    handler = EventLogHandler(log)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("upload", extra={"event_name": "file.uploaded", "body": "b" * MIB})
    finally:
        logger.removeHandler(handler)
    (event,) = log.query()
    assert event.payload["body"] == "b" * KIB + f"...[{MIB - KIB} bytes truncated]"


def test_the_span_processor_path_is_cut_too() -> None:
    """A GenAI-sized span event attribute reaches the log cut to max_value_bytes."""
    log = InMemoryEventLog(max_value_bytes=2 * KIB)
    provider = TracerProvider()
    processor = EventLogSpanProcessor(log)
    provider.add_span_processor(processor)
    with provider.get_tracer("t").start_as_current_span("chat") as span:
        span.add_event("gen_ai.choice", {"message": "m" * 100_000})
    processor.force_flush()
    (event,) = [event for event in log.query() if event.kind == "gen_ai.choice"]
    assert event.payload["message"] == "m" * 2048 + "...[97952 bytes truncated]"
    provider.shutdown()


# configuration


def test_the_limits_come_from_the_config_file_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """max_bytes and max_value_bytes take integers or sizes with units, from YAML or OTEL_EVENTLOG_*."""
    config = load_config({"observability": {"event_log": {"max_bytes": "8MiB", "max_value_bytes": 4096}}})
    log = config.event_log.create_event_log()
    assert (log.max_bytes, log.max_value_bytes) == (8 * MIB, 4096)  # type: ignore[attr-defined]
    monkeypatch.setenv("OTEL_EVENTLOG_MAX_BYTES", "1 GB")
    monkeypatch.setenv("OTEL_EVENTLOG_MAX_VALUE_BYTES", "2_048")
    config = load_config({})
    assert (config.event_log.max_bytes, config.event_log.max_value_bytes) == (10**9, 2 * KIB)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("lots", "expected a size in bytes such as 65536 or '64MiB'"),
        ("12 parsecs", "expected a size in bytes such as 65536 or '64MiB'"),
        (0, "expected a positive size in bytes, got 0 (int)"),
        (1.5, "expected a positive size in bytes, got 1.5 (float)"),
        ("9" * 5000, "expected a size in bytes such as 65536 or '64MiB'"),
        ("4 \N{KELVIN SIGN}iB", "expected a size in bytes such as 65536 or '64MiB'"),
    ],
)
def test_a_bad_size_names_the_key_path(value: object, message: str) -> None:
    """A size that is not one fails at load time with the key path and the value."""
    with pytest.raises(ConfigError, match=re.escape(f"observability.event_log.max_bytes: {message}")):
        load_config({"observability": {"event_log": {"max_bytes": value}}})


def test_the_disabled_log_takes_the_limits_and_ignores_them() -> None:
    """A config that disables the log still builds with limits set."""
    config = load_config({"observability": {"event_log": {"backend": "off", "max_bytes": "1MiB"}}})
    assert len(config.event_log.create_event_log()) == 0


def test_the_marker_says_how_much_was_cut() -> None:
    """The marker names the number of bytes cut."""
    assert truncated(1032192) == "...[1032192 bytes truncated]"


def test_keys_that_are_not_strings_are_sized_and_kept() -> None:
    """A payload keyed by numbers or tuples is sized the slow way and kept as it is."""
    payload = {1: "one", (2, 3): "pair"}
    fitted, size, cut = limits().fit(payload)  # type: ignore[arg-type]
    assert fitted is payload
    assert cut == 0
    assert size > 0
    assert repr(limits(10, 20)) == "Limits(max_value_bytes=10, max_event_bytes=20)"


def test_span_event_attributes_are_read_from_the_sdks_own_dict() -> None:
    """A recorded span event's attributes are read without going through BoundedAttributes' locks."""
    from otel_eventlog.backends._common import span_event_attributes

    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("s") as span:
        span.add_event("e", {"turn": 1})
    attributes = span.events[0].attributes
    assert span_event_attributes(attributes) == {"turn": 1}
    assert type(span_event_attributes(attributes)) is dict  # the SDK's own dict, not a copy of it
    plain = {"turn": 2}
    assert span_event_attributes(plain) is plain


def test_a_huge_int_is_charged_its_size_and_cut_to_a_marker() -> None:
    """An int of millions of digits cannot slip past the budget: a marker naming its size replaces it."""
    log = InMemoryEventLog(max_bytes=1 * MIB)
    for n in range(20):
        log.append("k", {"n": (1 << 8_000_000) + n})
    (event, *_) = log.query()
    assert event.payload["n"] == "<int of 8000001 bits>"
    assert log.stats()["resident_bytes"] < 64 * KIB


def test_keys_are_charged_and_cut_whatever_their_type() -> None:
    """A long string in a tuple key is cut; a frozenset key that had to change keeps the other keys."""
    payload, _, cut = limits(10).fit({("x" * 1000,): 1, "other": 2})
    assert (("x" * 10 + "...[990 bytes truncated]",), 1) in payload.items()
    assert payload["other"] == 2
    assert cut == 1
    payload, _, cut = limits(10).fit({frozenset({"y" * 1000}): 1, "other": 2})
    assert payload == {"<frozenset key>": 1, "other": 2}
    assert cut == 1


def test_two_keys_cut_to_the_same_text_both_stay() -> None:
    """Keys that differ only past the cap are kept apart, not merged."""
    payload, _, _ = limits(70).fit({"k" * 100 + "a": 1, "k" * 100 + "b": 2, "k" * 100 + "c": 3})
    assert sorted(payload.values()) == [1, 2, 3]
    assert sorted(payload)[1:] == [f"{'k' * 70}...[31 bytes truncated] ({n})" for n in (2, 3)]


def test_odd_keys_never_make_an_append_raise() -> None:
    """A key whose length cannot be taken (a range too large) is sized the slow way, not raised."""
    log = InMemoryEventLog()
    log.append("k", {range(2**64): "x"})  # type: ignore[dict-item]
    log.extend([Entry("k", {range(2**64): "y"})])  # type: ignore[dict-item]
    log.write_batch([("k", {range(2**64): "z"}, None, None, None)])  # type: ignore[list-item]
    assert len(log) == 3


def test_a_batch_item_that_is_neither_an_entry_nor_a_reference_is_refused_alone() -> None:
    """An Event handed to write_batch is named in the error, and the rest of the batch is stored."""
    source = InMemoryEventLog()
    foreign = source.append("foreign")
    log = InMemoryEventLog()
    with pytest.raises(TypeError, match=r"batch\[0\]"):
        log.write_batch([foreign, ("mine", {}, None, None, None)])  # type: ignore[list-item]
    assert [(event.id, event.kind) for event in log.query()] == [(1, "mine")]


def test_pattern_redaction_does_not_keep_longer_text_than_was_charged() -> None:
    """With patterns that lengthen text, a read leaves resident memory as the budget counted it."""
    from otel_eventlog.redaction import Redaction

    log = InMemoryEventLog(max_bytes=4 * MIB, redaction=Redaction(patterns=[r"\d"]))
    for n in range(200):
        log.append("digits", {"text": str(n) * 4000})
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    assert log.query()[0].payload["text"].startswith("[redacted]")
    gc.collect()
    assert tracemalloc.get_traced_memory()[0] - before < 256 * KIB
    tracemalloc.stop()
