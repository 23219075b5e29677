"""Hostile input gets clear errors: any config or environment a ConfigError, any request a response."""

from __future__ import annotations

import contextlib
import http.client
import socket
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_eventlog import ConfigError, InMemoryEventLog, load_config, start_activity_server
from otel_eventlog.activity import ActivityApp
from otel_eventlog.activity._http import PollQuery, Request, Response, StreamQuery
from otel_eventlog.config import ENV_VARIABLES

WAIT = 10.0  # seconds: only ever reached when a test fails

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
documents = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=12) | st.integers(), children, max_size=4)
    ),
    max_leaves=20,
)
sections = st.fixed_dictionaries(
    {},
    optional={
        "event_log": st.fixed_dictionaries(
            {},
            optional={
                "backend": scalars,
                "ttl_seconds": scalars,
                "max_entries": scalars | st.integers(min_value=2**62),
                "capture": documents,
                "spare": documents,
            },
        )
        | documents,
        "activity": documents,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(documents, st.fixed_dictionaries({"observability": sections | documents})))
def test_any_document_loads_or_fails_with_a_config_error(document: Any) -> None:
    """Whatever mapping or value is given as the document, load_config returns or raises ConfigError."""
    with contextlib.suppress(ConfigError):  # a clear error; anything else fails the test
        load_config(document if isinstance(document, dict) else {"observability": document}, environ={})


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(ENV_VARIABLES)), st.text(max_size=30)))
def test_any_environment_loads_or_fails_with_a_config_error(environ: dict[str, str]) -> None:
    """Whatever text the OTEL_EVENTLOG_* variables hold, load_config returns or raises ConfigError."""
    with contextlib.suppress(ConfigError):  # a clear error; anything else fails the test
        load_config(None, environ=environ)


@pytest.mark.parametrize(
    "text",
    [
        "observability:\n  event_log:\n    max_entries: " + "9" * 5000,
        "observability:\n  event_log:\n    ttl_seconds: " + "9" * 400,
        "a:\n  " + "[" * 10_000 + "]" * 10_000,
        "observability: {event_log: " * 2000 + "}" * 2000 + "\n",
        "a\0b.yaml",
        "x" * 10_000 + ".yaml",
    ],
)
def test_documents_that_break_parsers_are_config_errors(text: str) -> None:
    """Huge numbers, deep nesting and impossible paths are ConfigErrors, not parser crashes."""
    with pytest.raises(ConfigError):
        load_config(text, environ={})


APP = ActivityApp(InMemoryEventLog(), token=None)
PATHS = st.sampled_from(["/", "/activity", "/activity/stream", "/activity/stats", "/x", ""])
QUERY_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=60) | st.lists(
    st.tuples(
        st.sampled_from(["since", "limit", "kind", "trace_id", "wait", "token", "_", "x"]),
        st.text(max_size=40),
    ),
    max_size=4,
).map(lambda pairs: "&".join(f"{name}={value}" for name, value in pairs))


@settings(max_examples=500, deadline=None)
@given(
    method=st.sampled_from(["GET", "HEAD", "POST", "BREW"]),
    path=PATHS,
    query=QUERY_TEXT,
    last_event_id=st.none() | st.text(max_size=40) | st.integers(min_value=0).map(str),
)
def test_any_request_gets_an_answer(method: str, path: str, query: str, last_event_id: str | None) -> None:
    """Any request routes to a response with a known status, or a checked read or stream: never an error."""
    headers = {} if last_event_id is None else {"last-event-id": last_event_id}
    action = APP.route(Request(method, path, query, headers))
    assert isinstance(action, (Response, PollQuery, StreamQuery))
    if isinstance(action, Response):
        assert action.status in (200, 400, 401, 404, 405)


def test_numbers_too_long_to_be_ids_are_400s_over_a_real_socket() -> None:
    """A since, limit or Last-Event-ID of 5,000 digits gets a 400 naming it, not a closed connection."""
    with start_activity_server(InMemoryEventLog(), port=0) as server:
        for target, headers, parameter in [
            ("/activity?since=" + "9" * 5000, {}, "since"),
            ("/activity?limit=" + "9" * 5000, {}, "limit"),
            ("/activity/stream", {"Last-Event-ID": "9" * 5000}, "Last-Event-ID"),
        ]:
            connection = http.client.HTTPConnection(server.addr, server.port, timeout=WAIT)
            try:
                connection.request("GET", target, headers=headers)
                response = connection.getresponse()
                assert response.status == 400
                assert parameter.encode() in response.read()
            finally:
                connection.close()


def test_other_methods_are_told_get_and_head() -> None:
    """A 405 lists both methods the endpoints answer."""
    response = APP.route(Request("POST", "/activity"))
    assert isinstance(response, Response)
    assert (response.status, dict(response.headers)["Allow"]) == (405, "GET, HEAD")


def test_a_client_hanging_up_mid_long_poll_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    """When a long-polling client goes away, the server ends the request without a traceback."""
    log = InMemoryEventLog()
    with start_activity_server(log, port=0) as server:
        client = socket.create_connection((server.addr, server.port), timeout=WAIT)
        client.sendall(b"GET /activity?since=0&wait=0.3 HTTP/1.1\r\nHost: x\r\n\r\n")
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        client.close()  # a reset, while the server waits
        log.append("late")  # the server now writes to a closed connection
        check = http.client.HTTPConnection(server.addr, server.port, timeout=WAIT)
        check.request("GET", "/activity?since=0")
        assert check.getresponse().status == 200
        check.close()
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err
