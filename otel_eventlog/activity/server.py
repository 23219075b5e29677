"""`start_activity_server`: the Activity endpoints on a background thread, with the standard library only.

In the style of ``prometheus_client.start_http_server``: one call starts a threaded HTTP server and
returns a handle with the server's `url` and a `close` method. Each request runs on its own thread; a
stream or a long-poll waits on the event log without holding any lock a writer needs.
"""

from __future__ import annotations

import contextlib
import io
import logging
import select
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar
from urllib.parse import urlencode

from otel_eventlog import _defaults, _forks
from otel_eventlog.activity._http import (
    SSE_HEADERS,
    WAIT_SLICE,
    ActivityApp,
    ActivityLimits,
    PollQuery,
    Request,
    Response,
    StreamQuery,
    error_response,
    is_loopback,
    poll,
    stream,
    unavailable,
)
from otel_eventlog.backends import EventLog
from otel_eventlog.errors import ArgumentValueError, BackendError

__all__ = ["DEFAULT_PORT", "ActivityServer", "start_activity_server"]

_logger = logging.getLogger(__name__)

#: The port `start_activity_server` listens on when given none.
DEFAULT_PORT = _defaults.ACTIVITY_PORT


class ActivityServer:
    """A running Activity server. Use `close` (or a ``with`` block) to stop it.

    Its threads never keep the interpreter alive, and `close` returns within about a second whatever
    the clients do: connections that outlast it are cut.

    Attributes:
        app: The `ActivityApp` answering the requests.
        addr: The address the server is bound to.
        port: The port it listens on (the real one when it was started with port 0).
        url: ``http://addr:port/``.
        page_url: The URL that opens the live page: `url`, with ``?token=`` when the server has a
            token (the page passes it on to its requests). It holds the token: share it as you would
            the token.
    """

    def __init__(
        self,
        app: ActivityApp,
        addr: str,
        port: int,
        *,
        token: str | None = None,
        family: socket.AddressFamily = socket.AF_INET,
        bind: str | None = None,
    ) -> None:
        self.app = app
        self._closing = threading.Event()
        handler = type(
            "Handler", (_Handler,), {"app": app, "closing": self._closing, "timeout": app.limits.io_timeout}
        )
        # `bind`: the address `addr` was resolved to and checked as, so that no second lookup differs.
        self._httpd = _Server(
            (addr if bind is None else bind, port),
            handler,
            family,
            max_connections=app.limits.max_connections,
        )
        self.addr = addr
        self.port: int = self._httpd.server_address[1]
        host = f"[{addr}]" if ":" in addr else addr
        self.url = f"http://{host}:{self.port}/"
        self.page_url = self.url if token is None else f"{self.url}?{urlencode({'token': token})}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            args=(WAIT_SLICE,),  # how often it checks for `close`
            name=f"otel-eventlog-activity-{self.port}",
            daemon=True,
        )
        self._thread.start()
        self._forked = False
        _forks.track(self)

    def _locks_held_across_fork(self) -> tuple[threading.Lock, ...]:
        return ()

    def _after_fork_in_child(self) -> None:  # nothing to resume
        """Let the parent keep its server: close the child's copy of the port, and say so."""
        self._forked = True
        self._httpd.socket.close()
        _logger.warning(
            "otel_eventlog: this process was forked from the one running the Activity server at %s; "
            "that server stays with the parent and serves the parent's event log, not this process's. "
            "Start the server after the fork (gunicorn's post_fork hook), or share the feed through a "
            "backend all processes write to.",
            self.url,
        )

    def close(self) -> None:
        """Stop accepting requests, end the streams and long-polls under way, and release the port."""
        if self._forked:  # the server runs in the parent; this process only had a copy of its port
            return
        self._closing.set()  # streams and long-polls notice it within WAIT_SLICE
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
        self._httpd.cut_connections(grace=_CLOSE_GRACE)

    def __enter__(self) -> ActivityServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ActivityServer(url={self.url!r})"


def start_activity_server(
    event_log: EventLog,
    port: int = DEFAULT_PORT,
    addr: str = _defaults.ACTIVITY_ADDR,
    *,
    token: str | None = None,
    limits: ActivityLimits | None = None,
    allow_unauthenticated: bool = False,
) -> ActivityServer:
    """Serve `event_log` over HTTP on a background thread and return the running server.

    Endpoints: ``GET /activity`` (a JSON page; ``since``, ``limit``, ``kind``, ``trace_id``, ``wait``),
    ``GET /activity/stream`` (Server-Sent Events, resumable with ``Last-Event-ID``) and ``GET /`` (the
    live Activity page).

    Args:
        event_log: The log to serve.
        port: The TCP port; ``0`` picks a free one (read it back from `ActivityServer.port`).
        addr: The address to bind; the loopback interface by default, so that nothing is exposed
            unless asked for.
        token: If set, requests must carry ``Authorization: Bearer <token>`` (or ``?token=``). Without
            one, the server answers only requests to a loopback host name (no DNS rebinding).
        limits: What one request may ask for (page size, long-poll time, heartbeat), and the
            server's bounds (connections, streams, I/O timeout).
        allow_unauthenticated: Serve an address beyond the loopback interface without a token, to
            anyone who can reach it. Refused unless set.

    Raises:
        ArgumentValueError: If `addr` is beyond the loopback interface, with no token and
            `allow_unauthenticated` not set.
        OSError: If the address cannot be bound (the port is taken, say).
    """
    addr = addr.strip()
    if addr.startswith("[") and addr.endswith("]"):  # an IPv6 address as URLs write it: [::1]
        addr = addr[1:-1]
    family, address = _resolved(addr, port)  # an address that names nothing fails here, naming it
    loopback = is_loopback(addr.lower()) or is_loopback(address)
    if token is None and not loopback and not allow_unauthenticated:
        raise ArgumentValueError(
            f"refusing to serve the activity feed on {addr or 'every interface'} without a token: anyone "
            "who can reach it "
            "could read it. Set a token (token=, observability.activity.token or "
            "OTEL_EVENTLOG_ACTIVITY_TOKEN), bind 127.0.0.1, or allow it with allow_unauthenticated=True "
            "(observability.activity.allow_unauthenticated, OTEL_EVENTLOG_ACTIVITY_ALLOW_UNAUTHENTICATED)"
        )
    app = ActivityApp(
        event_log,
        token=token,
        limits=limits,
        loopback_hosts_only=token is None and loopback,
        bound_name=None if is_loopback(addr.lower()) else addr,  # a name of this host's loopback
    )
    return ActivityServer(app, addr, port, token=token, family=family, bind=address)


def _resolved(addr: str, port: int) -> tuple[socket.AddressFamily, str]:
    """Return the address family to listen with and the address `addr` names, as a server binds it.

    Raises:
        OSError: If `addr` names no address (``socket.gaierror``, with the resolver's reason).
    """
    if not addr:  # every interface, as the standard library's servers take it: IPv4
        return socket.AF_INET, "0.0.0.0"
    found = socket.getaddrinfo(addr, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, sockaddr = found[0]
    return family, str(sockaddr[0])


# How long `close` waits for the requests under way to end on their own before it cuts them.
_CLOSE_GRACE = 1.0
# What one send may take: a client on a link of 64 KiB in `io_timeout` seconds still gets everything.
_WRITE_PIECE = 64 * 1024


def _readable(connection: socket.socket) -> bool:
    """Tell, without waiting, whether `connection` has something to read (or its peer closed it)."""
    if hasattr(select, "poll"):  # any descriptor, however high its number
        poller = select.poll()
        poller.register(connection, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([connection], [], [], 0)[0])


class _Server(ThreadingHTTPServer):
    """A threaded HTTP server that caps its connections and can cut the ones that outlast it."""

    daemon_threads = True  # a request thread never keeps the interpreter alive

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[_Handler],
        family: socket.AddressFamily,
        *,
        max_connections: int,
    ) -> None:
        self.address_family = family  # IPv6 addresses need an IPv6 socket
        self.max_connections = max_connections
        self._connections: set[socket.socket] = set()
        self._changed = threading.Condition()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection on a thread of its own, or answer ``503`` at once when at the cap."""
        with self._changed:
            full = len(self._connections) >= self.max_connections
            if not full:
                self._connections.add(request)
        if full:
            self._refuse(request)
            return
        super().process_request(request, client_address)

    def _refuse(self, request: socket.socket) -> None:
        busy = error_response(503, "unavailable", f"{self.max_connections} connections are open")
        headers = [*busy.headers, ("Connection", "close"), ("Content-Length", str(len(busy.body)))]
        head = "".join(f"{name}: {value}\r\n" for name, value in headers)
        try:
            request.settimeout(1.0)
            request.sendall(f"HTTP/1.1 503 Service Unavailable\r\n{head}\r\n".encode("latin-1") + busy.body)
        except OSError:
            pass
        finally:
            self.shutdown_request(request)

    def close_request(self, request: Any) -> None:
        """Close a connection whose request is done, and stop counting it."""
        with self._changed:
            self._connections.discard(request)
            self._changed.notify_all()
        super().close_request(request)

    def cut_connections(self, *, grace: float) -> None:
        """Wait up to `grace` seconds for the connections to end, then cut those still open."""
        with self._changed:
            self._changed.wait_for(lambda: not self._connections, grace)
            left = list(self._connections)
        for connection in left:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _HeadReader(io.RawIOBase):
    """A connection's incoming bytes, every one of them due by a deadline: what a request's head is read from.

    A socket's timeout bounds each wait alone: a client sending a byte just within it, again and again,
    would hold its connection, and one of the server's `max_connections`, for ever.
    """

    def __init__(self, connection: socket.socket, timeout: float) -> None:
        super().__init__()
        self._connection = connection
        self._timeout = timeout
        self._deadline = time.monotonic() + timeout

    def readable(self) -> bool:
        """Say that this is a stream to read."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Read what has come into `buffer`, waiting at most until the deadline."""
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request did not arrive whole within the I/O timeout")
        self._connection.settimeout(min(left, self._timeout))
        try:
            return self._connection.recv_into(buffer)
        finally:
            self._connection.settimeout(self._timeout)


class _Handler(BaseHTTPRequestHandler):
    app: ClassVar[ActivityApp]
    closing: ClassVar[threading.Event]
    server_version = "otel-eventlog"

    def setup(self) -> None:
        """Set the connection up; its request's head must arrive whole within the I/O timeout."""
        super().setup()
        self.rfile = io.BufferedReader(_HeadReader(self.connection, self.app.limits.io_timeout))

    def _handle(self) -> None:
        path, _, query = self.path.partition("?")
        headers = {name.lower(): value for name, value in self.headers.items()}
        action = self.app.route(Request(self.command, path, query, headers))
        try:
            if isinstance(action, Response):
                self._send(action)
            elif isinstance(action, PollQuery):
                try:
                    response = self.app.page_response(
                        poll(self.app, action, self.closing.is_set, WAIT_SLICE), action
                    )
                except BackendError as error:
                    response = unavailable(error)
                self._send(response)
            else:
                self._stream(action)
        except OSError:  # the client went away, or stopped reading: nothing to clean up, nothing to print
            self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer what the standard library refuses before a request reaches the app, in JSON.

        A method no ``do_*`` handles (``TRACE``, ``PROPFIND``, ``get``) is answered as the others: a
        ``405``. A request line or headers it cannot read (a ``400``, ``414``, ``431`` or ``505``)
        get the JSON error every other response has, with a status line even when the request line
        was unreadable (the standard library would then answer as to HTTP/0.9, with none).
        """
        if code == HTTPStatus.NOT_IMPLEMENTED and self.command:
            self._handle()
            return
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # never spoken here: every client gets a status line
            self.request_version = "HTTP/1.0"
        status = HTTPStatus(code)
        error = status.phrase.lower().replace(" ", "_").replace("-", "_")
        with contextlib.suppress(OSError):
            self._send(error_response(code, error, message or status.phrase))

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self._write(response.body)

    def _stream(self, query: StreamQuery) -> None:
        """Send the stream, each message as it comes; to an HTTP/1.1 client, in chunked framing.

        A body that simply runs until the connection closes (HTTP/1.0) is delivered late to clients
        that read it in blocks (requests-based ones wait for a block to fill); each chunk of a chunked
        body is handed over as it arrives. The connection closes when the stream ends.
        """
        chunked = self.request_version == "HTTP/1.1"
        if chunked:
            self.protocol_version = "HTTP/1.1"  # for this response's status line
        self.send_response(200)
        for name, value in SSE_HEADERS:
            self.send_header(name, value)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD":
            return
        for chunk in stream(self.app, query, self._over, WAIT_SLICE):
            self._write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
        if chunked:
            self._write(b"0\r\n\r\n")

    def _over(self) -> bool:
        """Tell whether the stream under way should end: the server closes, or the client left.

        Looked at every `WAIT_SLICE`: a client that hung up is noticed then, not only when a write to
        it fails (on a quiet log, at the next heartbeat), so that it does not hold its stream's place.
        A client that shut only its sending side looks the same, and its stream ends too: no SSE
        client does that. (A long-poll, which a plain HTTP client might send so, is not looked at.)
        """
        if self.closing.is_set():
            return True
        try:
            if not _readable(self.connection):  # nothing sent, nothing closed: the client is there
                return False
            # Readable with nothing to read: the client closed its side. Bytes: its next request.
            return not self.connection.recv(1, socket.MSG_PEEK)
        except (OSError, ValueError):  # a connection already shut, or closed
            return True

    def _write(self, data: bytes) -> None:
        """Send `data` in pieces, each given the connection's whole timeout.

        A socket's timeout bounds each ``sendall`` call whole: a large event sent at once to a client on
        a slow link would be cut off however steadily it reads, and again each time it came back for it.
        Sent in pieces, only a client that reads nothing for the timeout is dropped.
        """
        view = memoryview(data)
        for start in range(0, len(view), _WRITE_PIECE):
            self.wfile.write(view[start : start + _WRITE_PIECE])

    def log_message(self, format: str, *args: object) -> None:
        """Keep requests off stderr; applications log their own access if they want it."""
