"""Tests for redaction: secrets never reach a reader, on any capture path; useful keys stay visible."""

from __future__ import annotations

import json
import logging
import urllib.request

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider

from otel_eventlog import (
    ConfigError,
    EventLogHandler,
    EventLogRecordProcessor,
    EventLogSpanProcessor,
    InMemoryEventLog,
    load_config,
    start_activity_server,
)
from otel_eventlog.backends import batch_writer
from otel_eventlog.redaction import REDACTED, Redaction
from tests.helpers import ListEventLog

SECRET = "hunter2-s3cr3t"

SENSITIVE = [
    "password",
    "Password",
    "passwd",
    "db.password",
    "api_key",
    "apiKey",
    "X-Api-Key",
    "http.request.header.authorization",
    "HTTP_AUTHORIZATION",
    "auth",
    "token",
    "session_token",
    "accessToken",
    "cookie",
    "set-cookie",
    "sessionid",
    "credentials",
    "private_key",
    "client_secret",
    "aws.secret_access_key",
    "jwt",
    "csrf_token",
    "passwords",
    "secrets",
    "api_keys",
    "client_secrets",
]
VISIBLE = [
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "max_tokens",
    "session.id",
    "session_id",
    "author",
    "authority",
    "keyboard",
    "turn",
    "tool",
    "user.id",
    "http.request.method",
]


@pytest.mark.parametrize("key", SENSITIVE)
def test_sensitive_keys_are_redacted_by_default(key: str) -> None:
    """Values under the default sensitive words are replaced, whatever the key's case and separators."""
    assert Redaction().apply({key: SECRET, "turn": 1}) == {key: REDACTED, "turn": 1}


@pytest.mark.parametrize("key", VISIBLE)
def test_what_an_activity_reader_needs_stays_visible(key: str) -> None:
    """Token counts, session ids, authors and the like are not mistaken for secrets."""
    payload = {key: "value"}
    assert Redaction().apply(payload) is payload


def test_redaction_searches_nested_mappings_and_lists() -> None:
    """A sensitive key deep in a mapping or a list is found; the original is left unchanged."""
    payload = {
        "request": {"headers": [{"authorization": SECRET}, {"accept": "*/*"}]},
        "db": {"password": SECRET},
    }
    redacted = Redaction().apply(payload)
    assert redacted == {
        "request": {"headers": [{"authorization": REDACTED}, {"accept": "*/*"}]},
        "db": {"password": REDACTED},
    }
    assert payload["db"] == {"password": SECRET}


def test_patterns_redact_secrets_inside_values() -> None:
    """Configured patterns replace what they match in string values, such as keys pasted into prompts."""
    redaction = Redaction(patterns=[r"sk-[A-Za-z0-9]{20,}", r"(?i)bearer\s+\S+"])
    payload = {"prompt": "use sk-abcdefghijklmnopqrstuvwx please", "header": "Bearer abc.def", "n": 3}
    assert redaction.apply(payload) == {"prompt": f"use {REDACTED} please", "header": REDACTED, "n": 3}
    assert redaction.redacted == 2


def test_keys_can_be_added_replaced_or_redaction_turned_off() -> None:
    """Extra words add to the defaults, default_keys=False replaces them, enabled=False shows all."""
    payload = {"customer_email": "a@b.c", "password": SECRET}
    assert Redaction(["customer email"]).apply(payload) == {"customer_email": REDACTED, "password": REDACTED}
    assert Redaction(["customer_email"], default_keys=False).apply(payload) == {
        "customer_email": REDACTED,
        "password": SECRET,
    }
    assert Redaction(enabled=False).apply(payload) == payload


def test_bad_settings_are_refused() -> None:
    """An invalid pattern or an empty key word is refused when the policy is made, naming it."""
    with pytest.raises(ValueError, match="not a valid regular expression"):
        Redaction(patterns=["("])
    with pytest.raises(ValueError, match="keys must not hold an empty string"):
        Redaction([" "])
    with pytest.raises(TypeError, match="keys must be an iterable of strings"):
        Redaction("password")


def test_no_capture_path_lets_a_secret_reach_a_reader() -> None:
    """Span events, OpenTelemetry log records and stdlib records: none serves the secret over HTTP."""
    log = InMemoryEventLog()
    provider = TracerProvider()
    provider.add_span_processor(EventLogSpanProcessor(log, live_interval=0))
    with provider.get_tracer("t").start_as_current_span("request") as span:
        span.add_event("http.request", {"http.request.header.authorization": f"Bearer {SECRET}", "turn": 1})
    loggers = LoggerProvider()
    loggers.add_log_record_processor(EventLogRecordProcessor(log))
    loggers.get_logger("agent").emit(event_name="llm.called", attributes={"api_key": SECRET, "model": "m"})
    logger = logging.getLogger("tests.redaction")
    logger.propagate = False
    handler = EventLogHandler(log)
    logger.addHandler(handler)
    try:
        logger.warning("login", extra={"event_name": "user.login", "password": SECRET, "user": "ada"})
    finally:
        logger.removeHandler(handler)
    provider.shutdown()
    with (
        start_activity_server(log, port=0) as server,
        urllib.request.urlopen(server.url + "activity?since=0", timeout=10) as response,
    ):
        body = response.read().decode()
    assert SECRET not in body
    kinds = [event["kind"] for event in json.loads(body)["events"]]
    assert kinds == ["http.request", "llm.called", "user.login"]
    assert body.count(REDACTED) == 3


def test_a_log_of_the_application_own_gets_redacted_payloads() -> None:
    """Through the adapter, a backend that redacts nothing itself never receives a secret."""
    log = ListEventLog()
    writer = batch_writer(log)
    writer.write_batch([("user.login", {"password": SECRET}, None, None, None)])
    assert writer.flush(10)  # type: ignore[attr-defined]
    assert log.query()[0].payload == {"password": REDACTED}


def test_the_redact_section_and_its_variables() -> None:
    """observability.event_log.redact builds the policy; OTEL_EVENTLOG_REDACT_* override it."""
    config = load_config(
        {"observability": {"event_log": {"redact": {"keys": ["customer_email"], "patterns": ["sk-\\w+"]}}}},
        environ={"OTEL_EVENTLOG_REDACT_DEFAULT_KEYS": "false"},
    )
    log = config.event_log.create_event_log()
    log.append("signup", {"customer_email": "a@b.c", "password": "p", "note": "sk-abc"})
    assert log.query()[0].payload == {"customer_email": REDACTED, "password": "p", "note": REDACTED}
    off = load_config(None, environ={"OTEL_EVENTLOG_REDACT": "false"}).event_log.create_event_log()
    off.append("login", {"password": "p"})
    assert off.query()[0].payload == {"password": "p"}
    patterns = load_config(None, environ={"OTEL_EVENTLOG_REDACT_PATTERNS": '["a,b", "c{2,}"]'})
    assert patterns.event_log.redact.patterns == ("a,b", "c{2,}")
    with pytest.raises(ConfigError, match=r"observability.event_log.redact.patterns: '\(' is not a valid"):
        load_config({"observability": {"event_log": {"redact": {"patterns": ["("]}}}}, environ={})


class Unprintable:
    """A key whose str() raises, or a mapping whose items() does."""

    def __str__(self) -> str:
        raise RuntimeError("no")


def test_what_cannot_be_searched_is_not_shown() -> None:
    """A payload whose keys cannot be read as text is redacted whole; redaction itself never raises."""
    redaction = Redaction()
    assert redaction.apply({Unprintable(): SECRET}) == {"payload": REDACTED}  # type: ignore[dict-item]
    assert redaction.apply({3: "three"}) == {3: "three"}  # type: ignore[dict-item]
    assert redaction.redacted == 1


def test_verdicts_are_remembered_within_a_bound() -> None:
    """Key verdicts are cached, and the cache is emptied rather than growing without end."""
    redaction = Redaction()
    for n in range(10_001):
        redaction.is_sensitive(f"key_{n}")
    assert redaction.is_sensitive("password")
    assert redaction.is_sensitive("password")  # now from the cache
    assert redaction.enabled
    assert repr(redaction).startswith("Redaction(")
    assert repr(Redaction(enabled=False)) == "Redaction(enabled=False)"


def test_lists_of_settings_must_hold_strings() -> None:
    """Keys or patterns that are not strings are refused, naming the setting."""
    with pytest.raises(TypeError, match="patterns must be an iterable of strings"):
        Redaction(patterns=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="keys must hold strings, got int"):
        Redaction([3])  # type: ignore[list-item]


def test_a_log_takes_only_a_redaction() -> None:
    """The in-memory log refuses a redaction policy that is not one."""
    with pytest.raises(TypeError, match="redaction must be a Redaction or None, got str"):
        InMemoryEventLog(redaction="on")  # type: ignore[arg-type]


def test_a_key_that_raises_when_compared_is_not_shown_and_breaks_no_read() -> None:
    """A key that hashes like a known one and raises when compared hides its payload; reads go on."""

    class Poison:
        def __hash__(self) -> int:
            return hash("tool")

        def __eq__(self, other: object) -> bool:
            raise RuntimeError("cannot compare")

    redaction = Redaction()
    assert redaction.apply({"tool": "search"}) == {"tool": "search"}  # "tool" is a known verdict now
    assert redaction.apply({Poison(): 1}) == {"payload": REDACTED}
    log = InMemoryEventLog(redaction=redaction)
    log.append("tool.called", {"tool": "search"})
    log.append("poisoned", {Poison(): 1})
    log.append("tool.called", {"tool": "fetch"})
    assert [(e.kind, e.payload) for e in log.query()] == [
        ("tool.called", {"tool": "search"}),
        ("poisoned", {"payload": REDACTED}),
        ("tool.called", {"tool": "fetch"}),
    ]


def test_a_named_tuple_is_searched_by_its_field_names() -> None:
    """A NamedTuple in a payload is as a dataclass: its secret field is redacted, the rest shown."""
    from typing import NamedTuple

    class Creds(NamedTuple):
        user: str
        password: str

    shown = Redaction().apply({"creds": Creds("bob", SECRET)})
    assert shown == {"creds": {"user": "bob", "password": REDACTED}}


def test_redact_text_applies_the_patterns_only_when_there_are_some_and_redaction_is_on() -> None:
    """The patterns' pass over a value about to be cut: nothing without patterns, or with redaction off."""
    text = f"key {'sk-' + 'a' * 40} end"
    assert Redaction(patterns=[r"sk-[a-z]{40}"]).redact_text(text) == f"key {REDACTED} end"
    assert Redaction().redact_text(text) is text
    assert Redaction(patterns=[r"sk-[a-z]{40}"], enabled=False).redact_text(text) is text


PATTERN_SECRET = "sk-" + "A1b2C3d4E5" * 4


def test_a_secret_across_the_cut_of_a_long_bytes_value_is_redacted_whole() -> None:
    """Bytes are read as text by the patterns: one across the cut is found before the cut, whole."""
    log = InMemoryEventLog(max_value_bytes=1024, redaction=Redaction(patterns=[r"sk-[A-Za-z0-9]{40}"]))
    log.append("upload", {"body": b"x" * 240 + PATTERN_SECRET.encode() + b"y" * 2000})
    log.append("plain", {"body": b"x" * 2000})  # nothing found: cut as bytes are
    secret, plain = (event.payload["body"] for event in log.read(since=0).events)
    assert PATTERN_SECRET[:8] not in secret
    assert secret.startswith("x" * 240 + REDACTED)
    assert plain.startswith("b'xxx")
    assert plain.endswith("bytes truncated]")


@pytest.mark.parametrize("path", ["append", "span event", "logging"])
def test_a_secret_a_pattern_finds_is_redacted_whole_even_across_the_cut_of_a_long_value(path: str) -> None:
    """A value longer than max_value_bytes, a secret across where it is cut: no part of it is shown."""
    log = InMemoryEventLog(max_value_bytes=1024, redaction=Redaction(patterns=[r"sk-[A-Za-z0-9]{40}"]))
    text = "x" * 1000 + PATTERN_SECRET + "y" * 100
    if path == "append":
        log.append("prompt", {"text": text})
    elif path == "span event":
        provider = TracerProvider()
        provider.add_span_processor(EventLogSpanProcessor(log, live_interval=0))
        with provider.get_tracer("t").start_as_current_span("request") as span:
            span.add_event("prompt", {"text": text})
        provider.shutdown()
    else:
        logger = logging.getLogger("tests.redaction.cut")
        logger.propagate = False
        handler = EventLogHandler(log)
        logger.addHandler(handler)
        try:
            logger.warning("prompt", extra={"event_name": "prompt", "text": text})
        finally:
            logger.removeHandler(handler)
    (event,) = log.read(since=0).events
    shown = event.payload["text"]
    assert PATTERN_SECRET[:8] not in shown, shown[990:]
    assert shown.startswith("x" * 1000 + REDACTED[:8])
