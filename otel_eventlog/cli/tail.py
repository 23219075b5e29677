"""`tail`: follow an Activity stream from a terminal, one line per event, across dropped connections.

What ``otel-eventlog tail URL`` runs. It reads ``/activity/stream`` with the standard library's HTTP
client, resumes after a dropped connection from the last event it printed (``Last-Event-ID``), says
when events were missed, and starts over when the server's log was restarted (a new epoch).
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO
from urllib.parse import urlencode, urlsplit

from otel_eventlog.cli._lines import event_json, event_line
from otel_eventlog.errors import TailError
from otel_eventlog.event import Event

__all__ = ["TailError", "tail"]


def tail(
    url: str,
    *,
    out: TextIO,
    kinds: Sequence[str] = (),
    since: int | None = None,
    token: str | None = None,
    count: int | None = None,
    retry_seconds: float = 1.0,
    timeout: float = 60.0,
    as_json: bool = False,
) -> int:
    """Print the events of the Activity stream at `url` as they come; return how many were printed.

    Args:
        url: The Activity server (``http://host:port/``) or its ``/activity/stream`` URL.
        out: Where the lines go.
        kinds: Only these event names or patterns.
        since: Start after this event id; by default the server sends its most recent events first.
        token: The bearer token, if the server wants one.
        count: Stop after this many events; by default follow until interrupted.
        retry_seconds: The pause before reconnecting after a dropped connection.
        timeout: Seconds of silence (heartbeats included) after which the connection counts as lost.
        as_json: Print each event as one line of JSON (its wire form) instead of a readable line;
            the notes about restarts and missed events still start with ``#``.

    Raises:
        TailError: If the first connection fails or the server refuses the request; dropped
            connections later on are retried.
    """
    stream = _Stream(url, kinds, token, timeout)
    follower = _Follower(out, since, count, event_json if as_json else event_line)
    connected, unavailable = False, False
    while True:
        try:
            with stream.open(follower.last_id) as response:
                connected, unavailable = True, False
                if follower.follow(response):
                    return follower.printed
            print("# the stream ended; reconnecting", file=out, flush=True)
        except _Unavailable as error:  # the server is up, its log is not, for now: said once
            if not connected:
                raise
            if not unavailable:
                print(f"# {error}; retrying until it can", file=out, flush=True)
            unavailable = True
        except (OSError, http.client.HTTPException) as error:
            if not connected:
                raise TailError(f"cannot follow {url}: {error}") from None
            print(f"# connection lost ({error}); reconnecting", file=out, flush=True)
        time.sleep(retry_seconds)  # a pause before retrying, not a wait for some state


class _Unavailable(TailError):
    """The server answered 503: it cannot read its event log now (its Redis is down, say)."""


class _Stream:
    """Where the stream is, and how to ask for it."""

    def __init__(self, url: str, kinds: Sequence[str], token: str | None, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TailError(f"expected an http:// or https:// URL, got {url!r}")
        path = parts.path.rstrip("/")  # the forms a user pastes: the page, /activity, or the stream
        if path.endswith("/activity"):
            path += "/stream"
        elif not path.endswith("/activity/stream"):
            path += "/activity/stream"
        query = urlencode([("kind", kind) for kind in kinds])
        self._target = f"{path}?{query}" if query else path
        self._connect = functools.partial(
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection,
            parts.hostname,
            parts.port,
            timeout=timeout,
        )
        self._headers = {"Accept": "text/event-stream"}
        if token is not None:
            self._headers["Authorization"] = f"Bearer {token}"

    @contextlib.contextmanager
    def open(self, last_id: str | None) -> Iterator[http.client.HTTPResponse]:
        """Connect and ask for the stream after `last_id`; yield the response, then close it.

        Raises:
            TailError: If the server answers with anything but a ``200``.
        """
        connection = self._connect()
        try:
            headers = dict(self._headers)
            if last_id is not None:
                headers["Last-Event-ID"] = last_id
            connection.request("GET", self._target, headers=headers)
            response = connection.getresponse()
            if response.status == 503:
                raise _Unavailable(_refusal(response))
            if response.status != 200:
                raise TailError(_refusal(response))
            yield response
        finally:
            connection.close()


class _Follower:
    """Where the terminal reader stands, across connections."""

    def __init__(
        self, out: TextIO, since: int | None, count: int | None, line: Callable[[Event], str]
    ) -> None:
        self.out = out
        self.line = line
        # Where to resume: the id of the last event printed, as the server sent it (``<epoch>-<id>``),
        # so that the server can tell when it is another log's and start this reader over.
        self.last_id = None if since is None else str(since)
        self.count = count
        self.epoch: str | None = None
        self.printed = 0

    def follow(self, response: http.client.HTTPResponse) -> bool:
        """Print the stream's events; return True once `count` are printed, False when it ends."""
        for kind, data, event_id in _messages(response):
            if kind == "hello":
                self.epoch = data["epoch"]
                if self.last_id is not None and "-" not in self.last_id:  # a bare --since: this log's
                    self.last_id = f"{self.epoch}-{self.last_id}"
            elif kind == "reset":
                print("# the server's event log was restarted: following it from its start", file=self.out)
            elif kind == "gap":
                print(f"# {data['missed']} event(s) missed: evicted before they could be read", file=self.out)
            elif event_id is not None:
                print(self.line(Event(**data)), file=self.out, flush=True)
                self.last_id, self.printed = event_id, self.printed + 1
                if self.count is not None and self.printed >= self.count:
                    return True
        return False


def _refusal(response: http.client.HTTPResponse) -> str:
    body = response.read()
    try:
        message = json.loads(body)["message"]
    except (ValueError, KeyError, TypeError):  # not an Activity server's answer: its page is no message
        message = f"{response.reason} (is this an otel-eventlog Activity server?)"
    hint = " (pass --token)" if response.status == 401 else ""
    return f"the server answered {response.status}: {message}{hint}"


def _messages(response: http.client.HTTPResponse) -> Iterator[tuple[str, Any, str | None]]:
    """Yield each Server-Sent Events message as (event name, decoded data, id as sent)."""
    kind, data, event_id = "message", "", None
    while True:
        line = response.readline()  # through the chunked framing, if the server uses it
        if not line:
            return  # the server ended the stream
        text = line.decode("utf-8").rstrip("\r\n")
        if text:
            name, _, value = text.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                kind = value
            elif name == "data":
                data += value
            elif name == "id":
                event_id = value
            continue
        if data:
            yield kind, json.loads(data), event_id if kind == "message" else None
        kind, data, event_id = "message", "", None
