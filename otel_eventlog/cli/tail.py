"""`tail`: follow an Activity stream from a terminal, one line per event, across dropped connections.

What ``otel-eventlog tail URL`` runs. It reads ``/activity/stream`` with the standard library's HTTP
client, resumes after a dropped connection from the last event it printed (``Last-Event-ID``), says
when events were missed, and starts over when the server's log was restarted (a new epoch). With
``--running`` it shows, instead, what is running now: it reads the log's history through ``/activity``,
then follows the stream, and prints the running spans, grouped by trace, as they change.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

from otel_eventlog.cli._lines import event_json, event_line
from otel_eventlog.cli._running import Running
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
    running: bool = False,
    refresh: float = 1.0,
) -> int:
    """Print the events of the Activity stream at `url` as they come; return how many were printed.

    Args:
        url: The Activity server (``http://host:port/``) or its ``/activity/stream`` URL.
        out: Where the lines go.
        kinds: Only these event names or patterns.
        since: Start after this event id; by default the server sends its most recent events first.
        token: The bearer token, if the server wants one; by default the URL's ``?token=``, if any.
        count: Stop after this many events; by default follow until interrupted.
        retry_seconds: The pause before reconnecting after a dropped connection.
        timeout: Seconds of silence (heartbeats included) after which the connection counts as lost.
        as_json: Print each event as one line of JSON (its wire form) instead of a readable line;
            the notes about restarts and missed events still start with ``#``.
        running: Print what is running now instead of the events: the spans started and not ended,
            grouped by trace, with their age and latest event, once the log's history is read and
            then as they change (every `refresh` seconds at most; on a terminal, every `refresh`
            seconds, in place). `count` counts these snapshots; `kinds`, `since` and `as_json` do
            not apply. Returns how many snapshots were printed.
        refresh: Seconds between two snapshots of `running`.

    Raises:
        TailError: If the first connection fails or the server refuses the request; dropped
            connections later on are retried.
    """
    url, token = _where(url, token)
    try:
        stream = _Stream(url, () if running else kinds, token, timeout)
    except (ValueError, UnicodeError) as error:  # a host, path or token no request can carry
        raise TailError(f"cannot follow {_shown(_masked(url))}: {_shown(str(error))}") from None
    view, resume = _view(
        stream,
        out,
        count=count,
        since=since,
        as_json=as_json,
        running=running,
        refresh=refresh,
        retry_seconds=retry_seconds,
    )
    if view.done.is_set():  # --running --count 1: the first snapshot was all
        return view.shown
    follower = _Follower(out, resume, view)
    connected = running  # the history was read: the server is there
    trouble = _Trouble(out, retry_seconds, view.trouble)
    try:
        while True:
            try:
                with stream.open(follower.last_id) as response:
                    connected, opened = True, time.monotonic()
                    if follower.follow(response, trouble.over) or view.done.is_set():
                        return view.shown
                # A stream that lasted is over as a good one ends; one that ended at once is trouble
                # still (a server that ends every stream), and waits longer each time, said once.
                if time.monotonic() - opened >= _LASTED:
                    trouble.over()
                trouble.note("the stream ended; reconnecting")
            except _Unavailable as error:  # the server (or its proxy) is up, the log is not, for now
                trouble.note(f"{str(error).rstrip('.')}; retrying until it can")
            except (OSError, http.client.HTTPException, ValueError, UnicodeError) as error:
                if view.done.is_set():
                    return view.shown
                if not connected:
                    raise TailError(
                        f"cannot follow {stream.url}: {_described(error, stream.first_answer)}"
                    ) from None
                problem = _described(error, stream.waited)
                trouble.note(f"connection lost ({problem}); reconnecting until the server is back")
            if view.done.wait(trouble.pause()):  # a pause before retrying; --count may be reached meanwhile
                return view.shown
    finally:
        view.close()
        view.check()  # the ticker could not write: `| head` has its lines, or the disk is full


def _where(url: str, token: str | None) -> tuple[str, str | None]:
    """Return the URL to follow and the token to send: `token`, else the URL's ``?token=``.

    A URL without a scheme (``127.0.0.1:9450``) is taken as a browser takes it, as ``http://``; the URL
    ``serve`` prints for the page carries the token.

    Raises:
        TailError: If the token holds what no header can carry.
    """
    if "://" not in url and url[:1].isalnum():
        url = f"http://{url}"
    if token is None:
        with contextlib.suppress(ValueError):
            given = parse_qs(urlsplit(url).query).get("token")
            token = given[-1] if given else None
    if token is not None and not token.isprintable():
        raise TailError(
            "the token holds a line break or another control character (read from a file with its "
            "newline?): not sent"
        )
    return url, token


def _view(
    stream: _Stream,
    out: TextIO,
    *,
    count: int | None,
    since: int | None,
    as_json: bool,
    running: bool,
    refresh: float,
    retry_seconds: float,
) -> tuple[_Lines | _Board, int | str | None]:
    """Return what shows the stream, and where the stream resumes; for `running`, read the history first.

    A server (or a proxy) that cannot answer yet (``502``, ``503``, ``504``) is waited out, said once.
    """
    if not running:
        return _Lines(out, count, event_json if as_json else event_line), since
    board = _Board(out, count, refresh, stream)
    waiting = _Trouble(out, retry_seconds, lambda problem: None)
    while True:
        try:
            return board, board.catch_up(stream)
        except _Unavailable as error:
            waiting.note(f"{str(error).rstrip('.')}; retrying until it can")
            time.sleep(waiting.pause())


class _Trouble:
    """What went wrong with the stream: said once, and retried after pauses that double up to a limit."""

    def __init__(self, out: TextIO, first_pause: float, tell: Callable[[str | None], None]) -> None:
        self._out = out
        self._tell = tell
        self._first = first_pause
        self._said: str | None = None
        self._pause = 0.0

    def note(self, problem: str) -> None:
        """Say `problem`, unless it is the one said last."""
        if problem != self._said:
            print(f"# {problem}", file=self._out, flush=True)
            self._said = problem
            self._tell(problem)

    def pause(self) -> float:
        """How long to wait before the next attempt: doubling, from the first pause to 30 s at most."""
        self._pause = min(max(_MAX_PAUSE, self._first), max(self._first, self._pause * 2))
        return self._pause

    def over(self) -> None:
        """The stream is back: say so if trouble was said, and start the pauses over."""
        if self._said is not None and self._pause:
            print("# reconnected", file=self._out, flush=True)
        if self._said is not None:
            self._tell(None)
        self._said, self._pause = None, 0.0


def _described(error: BaseException, seconds: float) -> str:
    if isinstance(error, TimeoutError):
        return f"no answer within {seconds:g} s"
    return str(error) or type(error).__name__


#: The longest pause between two attempts to reconnect, in seconds.
_MAX_PAUSE = 30.0
#: How long a server may take to answer a request for the stream; once it streams, heartbeats come.
_FIRST_ANSWER = 10.0
#: How long a stream must have lasted, without an event, for its end to count as an ordinary one.
_LASTED = 10.0


class _Unavailable(TailError):
    """The server cannot answer now: worth waiting out.

    A ``503`` from the server (it cannot read its event log: its Redis is down, say), or a ``502`` or
    ``504`` from a proxy in front of it (the application is restarting, say).
    """


# The answers of a server, or of a proxy in front of it, that is there but cannot answer now.
_PASSING = frozenset({502, 503, 504})
#: The longest line of a stream, and the largest page, tail takes from a server: one event, written
#: out, is far less; an endless line is a server that is not an Activity server.
_MAX_READ = 256 * 1024 * 1024
#: What tail reads of an error's body, for its message.
_MAX_ERROR_BODY = 64 * 1024
#: What a trace or span id must look like to be shown: hex, as OpenTelemetry writes them.
_HEX_ID = re.compile(r"[0-9a-f]{1,32}")
#: What an event's id on a stream must look like: the log's epoch (visible ASCII), a dash, a number.
_STREAM_ID = re.compile(r"([!-~]{1,128})-([0-9]{1,30})")


class _Stream:
    """Where the stream is, and how to ask for it."""

    def __init__(self, url: str, kinds: Sequence[str], token: str | None, timeout: float) -> None:
        try:
            parts = urlsplit(url)
            port = parts.port  # a port that is no number from 0 to 65535 fails here
        except ValueError as error:  # "Invalid IPv6 URL", "Port out of range 0-65535"
            raise TailError(f"expected an http:// or https:// URL, got {_masked(url)!r} ({error})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TailError(f"expected an http:// or https:// URL, got {_masked(url)!r}")
        path = parts.path.rstrip("/")  # the forms a user pastes: the page, /activity, its stream or stats
        for endpoint in ("/stream", "/stats"):
            path = path.removesuffix(endpoint) if path.endswith("/activity" + endpoint) else path
        if not path.endswith("/activity"):
            path += "/activity"
        self._pages = path
        #: The URL as given, for messages: its token, if any, masked.
        self.url = _masked(url)
        query = urlencode([("kind", kind) for kind in kinds])
        self._target = f"{path}/stream?{query}" if query else f"{path}/stream"
        self._connect = functools.partial(
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection,
            parts.hostname,
            port,
            timeout=min(timeout, _FIRST_ANSWER),
        )
        self._timeout = timeout
        #: How long the server may take to answer a request for the stream.
        self.first_answer = min(timeout, _FIRST_ANSWER)
        #: How long a silence the connection under way waits out: the first answer's, then `timeout`.
        self.waited = self.first_answer
        self._headers = {"Accept": "text/event-stream"}
        self._token_given = token is not None
        if token is not None:
            self._headers["Authorization"] = f"Bearer {token}"
        self._socket: socket.socket | None = None
        self._hung_up = False

    def page(self, since: int) -> dict[str, Any]:
        """Return the page of the log after `since`, as ``/activity`` answers it (1,000 events at most).

        Raises:
            TailError: If the server answers with anything but a ``200``, or not with a page.
        """
        connection = self._connect()
        try:
            headers = {key: value for key, value in self._headers.items() if key != "Accept"}
            connection.request(
                "GET", f"{self._pages}?{urlencode({'since': since, 'limit': 1000})}", headers=headers
            )
            response = connection.getresponse()
            if response.status in _PASSING:
                raise _Unavailable(_refusal(response, self._token_given))
            if response.status != 200:
                raise TailError(_refusal(response, self._token_given))
            body = response.read(_MAX_READ + 1)
            if len(body) > _MAX_READ:
                raise TailError(f"the server sent a page of more than {_MAX_READ} bytes")
            page = json.loads(body)
            if not isinstance(page, dict) or not isinstance(page.get("events"), list):
                raise TailError("the server sent what is not an Activity page")
            return page
        finally:
            connection.close()

    def hang_up(self) -> None:
        """End the stream being read, and any opened later, from another thread: its reader sees it end."""
        self._hung_up = True
        sock = self._socket
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    @contextlib.contextmanager
    def open(self, last_id: str | None) -> Iterator[http.client.HTTPResponse]:
        """Connect and ask for the stream after `last_id`; yield the response, then close it.

        Raises:
            TailError: If the server answers with anything but a ``200``.
        """
        connection = self._connect()
        self.waited = self.first_answer
        try:
            headers = dict(self._headers)
            if last_id is not None:
                headers["Last-Event-ID"] = last_id
            connection.request("GET", self._target, headers=headers)
            # The response reads this socket even once the connection lets go of it (the stream is
            # sent with "Connection: close", and the connection then forgets its socket).
            sock = connection.sock
            response = connection.getresponse()
            if sock is not None:  # it answered: from now on, only silence past `timeout` is a lost stream
                sock.settimeout(self._timeout)
                self.waited = self._timeout
                self._socket = sock
                if self._hung_up:  # hung up before this socket was there to be shut
                    self.hang_up()
            if response.status in _PASSING:
                raise _Unavailable(_refusal(response, self._token_given))
            if response.status != 200:
                raise TailError(_refusal(response, self._token_given))
            yield response
        finally:
            self._socket = None
            connection.close()


class _Lines:
    """Prints each event as a line, until `count` are printed."""

    def __init__(self, out: TextIO, count: int | None, line: Callable[[Event], str]) -> None:
        self._out = out
        self._count = count
        self._line = line
        self.shown = 0
        self.done = threading.Event()

    def show(self, event: Event) -> bool:
        """Print `event`; return True once `count` are printed."""
        print(self._line(event), file=self._out, flush=True)
        self.shown += 1
        return self._count is not None and self.shown >= self._count

    def restart(self) -> None:
        """The log began again: nothing to forget."""

    def missed(self) -> None:
        """Events were missed: the follower says so; nothing to forget."""

    def trouble(self, problem: str | None) -> None:
        """The lines say it themselves."""

    def check(self) -> None:
        """Nothing runs in the background that could fail."""

    def close(self) -> None:
        """Nothing runs in the background."""


class _Board:
    """Prints what is running now, once the history is read, then as it changes."""

    def __init__(self, out: TextIO, count: int | None, refresh: float, stream: _Stream) -> None:
        self._out = out
        self._count = count
        self._refresh = refresh
        self._stream = stream
        self._terminal = out.isatty()
        self._running = Running()
        self._lock = threading.Lock()
        self._ticker: threading.Thread | None = None
        self._trouble: str | None = None
        self._failure: OSError | None = None
        self.shown = 0
        self.done = threading.Event()

    def catch_up(self, stream: _Stream) -> str:
        """Read the log's history through ``/activity``, print the first snapshot, start the ticker.

        Returns:
            Where the stream should resume: ``<epoch>-<cursor>``.

        Raises:
            TailError: If the server answers with what is not an Activity page.
        """
        try:
            resume = self._read_history(stream)
        except (OSError, http.client.HTTPException, ValueError, UnicodeError) as error:
            raise TailError(f"cannot follow {stream.url}: {_described(error, stream.first_answer)}") from None
        self._print()  # an error writing it (a closed pipe) is the caller's to see
        if not self.done.is_set():
            self._ticker = threading.Thread(target=self._tick, name="otel-eventlog-tail-running", daemon=True)
            self._ticker.start()
        return resume

    def _read_history(self, stream: _Stream) -> str:
        cursor, epoch = 0, None
        with self._lock:
            self._running.clear()
        try:
            while True:
                page = stream.page(cursor)
                if epoch is not None and page["epoch"] != epoch:  # the log began again meanwhile
                    with self._lock:
                        self._running.clear()
                    cursor, epoch = 0, None
                    continue
                epoch = page["epoch"]
                events = [event_of(data) for data in page["events"]]
                with self._lock:
                    for event in events:
                        self._running.track(event)
                cursor = int(page["cursor"])
                if not events or cursor >= int(page["latest_id"]):
                    return f"{epoch}-{cursor}"
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise TailError(
                f"the server sent what is not an Activity page ({type(error).__name__})"
            ) from None

    def show(self, event: Event) -> bool:
        """Take `event` into account; the ticker prints."""
        with self._lock:
            self._running.track(event)
        return self.done.is_set()

    def restart(self) -> None:
        """The log began again: forget what ran in the old one."""
        with self._lock:
            self._running.clear()

    def missed(self) -> None:
        """Events were missed: which spans ended among them is unknown, so read what runs again."""
        # If the history cannot be read now, the stream goes on; the next gap, or restart, tries again.
        with contextlib.suppress(OSError, http.client.HTTPException, TailError):
            self._read_history(self._stream)

    def trouble(self, problem: str | None) -> None:
        """Say, in each snapshot, that what it shows is as of when the stream was lost; None: it is back."""
        with self._lock:
            if problem is None:
                self._trouble = None
            elif self._trouble is None:
                self._trouble = f"stale since {time.strftime('%H:%M:%S')}: {problem}"
            self._running.changed = True

    def check(self) -> None:
        """Raise what stopped the ticker from writing, if anything did."""
        if self._failure is not None:
            raise self._failure

    def close(self) -> None:
        """Stop the ticker."""
        self.done.set()

    def _tick(self) -> None:
        try:
            while not self.done.wait(self._refresh):
                if self._terminal or self._running.changed:
                    self._print()
        except OSError as error:  # the output is gone (`| head` has its lines) or full: stop there
            self._failure = error
            self.done.set()
        self._stream.hang_up()  # the reader, blocked on the stream, sees it end

    def _print(self) -> None:
        with self._lock:
            lines = self._running.lines(self._height)
            if self._trouble is not None:  # said where it cannot be missed: on the title line
                lines[0] = f"{lines[0]} ({self._trouble})"
            self._running.changed = False
        text = "\n".join(lines)
        if self._terminal:
            text = "\x1b[H\x1b[J" + text  # in place, as top does
        elif self.shown:
            text = "\n" + text
        print(text, file=self._out, flush=True)
        self.shown += 1
        if self._count is not None and self.shown >= self._count:
            self.done.set()

    @property
    def _height(self) -> int | None:
        """How many lines a snapshot may take: a terminal's height, else no limit."""
        return shutil.get_terminal_size().lines - 1 if self._terminal else None


#: The fields of an event on the wire; others a newer server may add are left aside.
_EVENT_FIELDS = frozenset(("id", "timestamp", "kind", "payload", "trace_id", "span_id"))


def event_of(data: dict[str, Any]) -> Event:
    """Return the `Event` an Activity server sent, leaving aside fields this version does not know.

    Raises:
        ValueError: If its trace or span id is not hex, as a server writes them (it would be shown).
    """
    event = Event(**{name: value for name, value in data.items() if name in _EVENT_FIELDS})
    for value in (event.trace_id, event.span_id):
        if value is not None and not (isinstance(value, str) and _HEX_ID.fullmatch(value)):
            raise ValueError("an id that is not hex")
    return event


class _Follower:
    """Where the terminal reader stands, across connections."""

    def __init__(self, out: TextIO, since: int | str | None, view: _Lines | _Board) -> None:
        self.out = out
        self.view = view
        # Where to resume: the id of the last event shown, as the server sent it (``<epoch>-<id>``),
        # so that the server can tell when it is another log's and start this reader over.
        self.last_id = None if since is None else str(since)
        self.epoch: str | None = None
        self._newest: tuple[str, int] | None = None  # the epoch and id of the newest event shown

    def follow(self, response: http.client.HTTPResponse, news: Callable[[], None]) -> bool:
        """Show the stream's events; return True once the view has shown enough, False when it ends.

        `news` is called before each event: the stream works.

        Raises:
            TailError: If the server sends what is not an Activity stream.
        """
        try:
            return self._follow(response, news)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, RecursionError) as error:
            raise TailError(
                f"the server sent what is not an Activity stream ({type(error).__name__})"
            ) from None

    def _follow(self, response: http.client.HTTPResponse, news: Callable[[], None]) -> bool:
        for kind, data, event_id in _messages(response):
            if kind == "hello":
                self.epoch = data["epoch"]
                if self.last_id is not None and "-" not in self.last_id:  # a bare --since: this log's
                    self.last_id = f"{self.epoch}-{self.last_id}"
            elif kind == "heartbeat":
                news()  # a quiet stream that lasts: the server is back
            elif kind in ("reset", "gap"):
                news()  # the stream works: it says so
                self._notice(kind, data)
            elif event_id is not None:
                news()
                if self._shown_before(event_id):  # a server that ignored Last-Event-ID sends it again
                    continue
                done = self.view.show(event_of(data))
                self.last_id = event_id
                if done:
                    return True
        return False

    def _shown_before(self, event_id: str) -> bool:
        """Tell whether the event with this id (``<epoch>-<id>``) was shown already, in the same log.

        Raises:
            ValueError: If the id is not one an Activity server writes (it is sent back on reconnecting).
        """
        this = _STREAM_ID.fullmatch(event_id)
        if this is None:
            raise ValueError("an event id that is not <epoch>-<number>")
        epoch, number = this[1], int(this[2])
        if self._newest is not None and self._newest[0] == epoch and number <= self._newest[1]:
            return True
        self._newest = (epoch, number)
        return False

    def _notice(self, kind: str, data: Any) -> None:
        """Say what a ``reset`` or ``gap`` message means, and tell the view."""
        if kind == "gap":
            missed = int(data["missed"])  # a number: nothing else of the server's is printed here
            print(f"# {missed} event(s) missed: evicted before they could be read", file=self.out)
            self.view.missed()
            return
        self._newest = None  # the log is followed from its start again: its ids are shown anew
        if data.get("reason") == "epoch":
            print("# the server's event log was restarted: following it from its start", file=self.out)
        else:
            print(
                "# the cursor is past the server's newest event: following its log from its start",
                file=self.out,
            )
        self.view.restart()


def _masked(url: str) -> str:
    """Return `url` with the value of a ``token`` query parameter replaced by ``***``: fit for messages."""
    location, mark, query = url.partition("?")
    if not mark or "token" not in query:
        return url
    fields = [
        (key, "***" if key == "token" else value) for key, value in parse_qsl(query, keep_blank_values=True)
    ]
    return f"{location}?{urlencode(fields, safe='*')}"


def _shown(text: str) -> str:
    """Return `text` for a one-line message: control characters escaped, at most 200 characters."""
    shown = text if text.isprintable() else repr(text)[1:-1]
    return shown if len(shown) <= 200 else f"{shown[:200]}..."


def _refusal(response: http.client.HTTPResponse, token_given: bool) -> str:
    body = response.read(_MAX_ERROR_BODY)
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
    """Yield each Server-Sent Events message as (event name, decoded data, id as sent).

    A comment alone (the server's heartbeat on a quiet stream) is yielded as ``("heartbeat", None,
    None)``.
    """
    kind, data, event_id, comment = "message", "", None, False
    while True:
        line = response.readline(_MAX_READ)  # through the chunked framing, if the server uses it
        if not line:
            return  # the server ended the stream
        if len(line) >= _MAX_READ or len(data) >= _MAX_READ:
            raise ValueError(f"a message of more than {_MAX_READ} bytes")
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
            elif not name and value.startswith("heartbeat"):
                comment = True
            continue
        if data:
            yield kind, json.loads(data), event_id if kind == "message" else None
        elif comment:
            yield "heartbeat", None, None
        kind, data, event_id, comment = "message", "", None, False
