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
    try:
        stream = _Stream(url, kinds, token, timeout)
    except (ValueError, UnicodeError) as error:  # a host, path or token no request can carry
        raise TailError(f"cannot follow {_shown(url)}: {_shown(str(error))}") from None
    follower = _Follower(out, since, count, event_json if as_json else event_line)
    connected = False
    trouble = _Trouble(out, retry_seconds)
    while True:
        try:
            with stream.open(follower.last_id) as response:
                connected = True
                trouble.over()
                if follower.follow(response):
                    return follower.printed
            trouble.note("the stream ended; reconnecting")
        except _Unavailable as error:  # the server is up, its log is not, for now
            if not connected:
                raise
            trouble.note(f"{error}; retrying until it can")
        except (OSError, http.client.HTTPException, ValueError, UnicodeError) as error:
            if not connected:
                raise TailError(f"cannot follow {url}: {_described(error, stream.first_answer)}") from None
            problem = _described(error, stream.first_answer)
            trouble.note(f"connection lost ({problem}); reconnecting until the server is back")
        time.sleep(trouble.pause())  # a pause before retrying, not a wait for some state


class _Trouble:
    """What went wrong with the stream: said once, and retried after pauses that double up to a limit."""

    def __init__(self, out: TextIO, first_pause: float) -> None:
        self._out = out
        self._first = first_pause
        self._said: str | None = None
        self._pause = 0.0

    def note(self, problem: str) -> None:
        """Say `problem`, unless it is the one said last."""
        if problem != self._said:
            print(f"# {problem}", file=self._out, flush=True)
            self._said = problem

    def pause(self) -> float:
        """How long to wait before the next attempt: doubling, from the first pause to 30 s at most."""
        self._pause = min(max(_MAX_PAUSE, self._first), max(self._first, self._pause * 2))
        return self._pause

    def over(self) -> None:
        """The stream is back: say so if trouble was said, and start the pauses over."""
        if self._said is not None and self._pause:
            print("# reconnected", file=self._out, flush=True)
        self._said, self._pause = None, 0.0


def _described(error: BaseException, seconds: float) -> str:
    if isinstance(error, TimeoutError):
        return f"no answer within {seconds:g} s"
    return str(error) or type(error).__name__


#: The longest pause between two attempts to reconnect, in seconds.
_MAX_PAUSE = 30.0
#: How long a server may take to answer a request for the stream; once it streams, heartbeats come.
_FIRST_ANSWER = 10.0


class _Unavailable(TailError):
    """The server answered 503: it cannot read its event log now (its Redis is down, say)."""


class _Stream:
    """Where the stream is, and how to ask for it."""

    def __init__(self, url: str, kinds: Sequence[str], token: str | None, timeout: float) -> None:
        try:
            parts = urlsplit(url)
            port = parts.port  # a port that is no number from 0 to 65535 fails here
        except ValueError as error:  # "Invalid IPv6 URL", "Port out of range 0-65535"
            raise TailError(f"expected an http:// or https:// URL, got {url!r} ({error})") from None
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
            port,
            timeout=min(timeout, _FIRST_ANSWER),
        )
        self._timeout = timeout
        #: How long the server may take to answer a request for the stream.
        self.first_answer = min(timeout, _FIRST_ANSWER)
        self._headers = {"Accept": "text/event-stream"}
        self._token_given = token is not None
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
            if connection.sock is not None:  # it answered: from now on, silence means a lost stream
                connection.sock.settimeout(self._timeout)
            if response.status == 503:
                raise _Unavailable(_refusal(response, self._token_given))
            if response.status != 200:
                raise TailError(_refusal(response, self._token_given))
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
        """Print the stream's events; return True once `count` are printed, False when it ends.

        Raises:
            TailError: If the server sends what is not an Activity stream.
        """
        try:
            return self._follow(response)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, RecursionError) as error:
            raise TailError(
                f"the server sent what is not an Activity stream ({type(error).__name__})"
            ) from None

    def _follow(self, response: http.client.HTTPResponse) -> bool:
        for kind, data, event_id in _messages(response):
            if kind == "hello":
                self.epoch = data["epoch"]
                if self.last_id is not None and "-" not in self.last_id:  # a bare --since: this log's
                    self.last_id = f"{self.epoch}-{self.last_id}"
            elif kind == "reset" and data.get("reason") == "epoch":
                print("# the server's event log was restarted: following it from its start", file=self.out)
            elif kind == "reset":
                print(
                    "# the cursor is past the server's newest event: following its log from its start",
                    file=self.out,
                )
            elif kind == "gap":
                print(f"# {data['missed']} event(s) missed: evicted before they could be read", file=self.out)
            elif event_id is not None:
                print(self.line(Event(**data)), file=self.out, flush=True)
                self.last_id, self.printed = event_id, self.printed + 1
                if self.count is not None and self.printed >= self.count:
                    return True
        return False


def _shown(text: str) -> str:
    """Return `text` for a one-line message: control characters escaped, at most 200 characters."""
    shown = text if text.isprintable() else repr(text)[1:-1]
    return shown if len(shown) <= 200 else f"{shown[:200]}..."


def _refusal(response: http.client.HTTPResponse, token_given: bool) -> str:
    body = response.read()
    try:
        message = json.loads(body)["message"]
    except (ValueError, KeyError, TypeError):  # not an Activity server's answer: its page is no message
        message = f"{response.reason} (is this an otel-eventlog Activity server?)"
    message = _shown(str(message))
    hint = ""
    if response.status == 401:
        hint = " (the token given was refused)" if token_given else " (pass --token)"
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
