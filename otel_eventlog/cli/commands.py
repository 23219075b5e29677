"""The ``otel-eventlog`` command line.

- ``otel-eventlog --version``
- ``otel-eventlog demo``: run a simulated agent, serve its Activity page and print its feed live.
- ``otel-eventlog serve``: serve an event log chosen by the configuration over HTTP.
- ``otel-eventlog tail URL``: follow an Activity server's stream in the terminal.
- ``otel-eventlog check-config FILE``: print the effective configuration (the file with the
  ``OTEL_EVENTLOG_*`` environment applied) or what is wrong with it; exit status 0 or 1.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

import yaml

from otel_eventlog._version import __version__
from otel_eventlog.activity import DEFAULT_PORT, start_activity_server
from otel_eventlog.backends import EventLog
from otel_eventlog.cli.tail import tail
from otel_eventlog.config import load_config, unknown_variables
from otel_eventlog.errors import ConfigError, EventLogError, TailError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with `argv` (by default ``sys.argv[1:]``) and return the exit status.

    Errors are one line on stderr with status 1, usage errors status 2, Ctrl-C status 130.
    """
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C interrupts every command, even one started with SIGINT ignored (a background job).
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        parser = _parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        status: int = args.run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `otel-eventlog demo | head`: the reader has what it wanted
        _quiet_stdout()
        return 0
    except OSError as error:  # writing to standard output: a full disk, say
        _quiet_stdout()
        print(f"otel-eventlog: error: cannot write the output: {error.strerror or error}", file=sys.stderr)
        return 1
    return status


def _quiet_stdout() -> None:
    """Send what is left for standard output nowhere, so that the flush at exit cannot fail again."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, pointing at ``--help``."""

    def error(self, message: str) -> NoReturn:
        """Print one line and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="otel-eventlog",
        description="A live, bounded activity feed of OpenTelemetry events.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    check = commands.add_parser(
        "check-config",
        help="validate a YAML config file and print the effective configuration",
        description=(
            "Validate the observability section of a YAML file and print the effective "
            "configuration, with the OTEL_EVENTLOG_* environment variables applied. "
            "Exits 0 when the configuration is valid, 1 when it is not, or when an OTEL_EVENTLOG_* "
            "variable is set that the library does not read."
        ),
    )
    check.add_argument(
        "file",
        metavar="FILE",
        nargs="?",
        help="the YAML file to check (default: the file OTEL_EVENTLOG_CONFIG names, else the defaults)",
    )
    check.set_defaults(run=_check_config, parser=check)
    demo = commands.add_parser(
        "demo",
        help="run a simulated agent and print its Activity feed live",
        description=(
            "Run a simulated AI agent instrumented with OpenTelemetry (concurrent sessions in "
            "long-lived spans, turns, model calls, tool calls), serve its live Activity page and "
            "print its feed, read from the event log by cursor, as it arrives, until interrupted. "
            "Set OTEL_EXPORTER_OTLP_ENDPOINT to export the spans over OTLP/HTTP too."
        ),
    )
    demo.add_argument("--config", metavar="FILE", help="a YAML config file (default: a small in-memory log)")
    demo.add_argument(
        "--duration",
        type=_positive,
        metavar="S",
        help="stop after S seconds (default: run until interrupted)",
    )
    demo.add_argument(
        "--sessions",
        type=_count(1, 32),
        default=3,
        metavar="N",
        help="agent sessions at once, 1 to 32 (default 3)",
    )
    demo.add_argument(
        "--port",
        type=_port,
        metavar="PORT",
        help=f"serve the Activity page on this port of 127.0.0.1 (default {DEFAULT_PORT}, or a free "
        "one if it is taken; a port given here is used or the demo fails)",
    )
    demo.set_defaults(run=_demo)
    serve = commands.add_parser(
        "serve",
        help="serve an event log over HTTP: JSON, Server-Sent Events and the live page",
        description=(
            "Serve the event log that the configuration describes (observability.event_log) with "
            "the Activity endpoints, on the address and port of observability.activity unless "
            "given here. Runs until interrupted."
        ),
    )
    serve.add_argument("--config", metavar="FILE", help="a YAML config file (default: OTEL_EVENTLOG_CONFIG)")
    serve.add_argument("--addr", help="the address to bind (default: the config's, 127.0.0.1)")
    serve.add_argument("--port", type=_port, help="the port (default: the config's, 9450; 0: any free one)")
    serve.set_defaults(run=_serve)
    tail = commands.add_parser(
        "tail",
        help="follow an Activity server's stream, one line per event",
        description=(
            "Follow the Server-Sent Events stream of an Activity server and print one line per "
            "event. Resumes after a dropped connection without repeating or losing events, and "
            "says when events were missed. Runs until interrupted, or until --count events."
        ),
    )
    tail.add_argument("url", metavar="URL", help="the server, such as http://127.0.0.1:9450/")
    tail.add_argument(
        "--kind",
        action="append",
        default=[],
        metavar="NAME",
        help="only events of this name or pattern (repeatable)",
    )
    tail.add_argument("--since", type=_count(0), metavar="ID", help="start after this event id")
    tail.add_argument("--token", help="the bearer token (default: OTEL_EVENTLOG_ACTIVITY_TOKEN)")
    tail.add_argument("--count", type=_count(1), metavar="N", help="stop after N events")
    tail.add_argument(
        "--json", action="store_true", help="print each event as one line of JSON, as /activity sends it"
    )
    tail.add_argument(
        "--running",
        action="store_true",
        help="print what is running now instead (spans started and not ended, by trace, with their age "
        "and latest event), as it changes; --count counts these snapshots",
    )
    tail.set_defaults(run=_tail, parser=tail)
    return parser


def _count(least: int, most: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if (
            not (text.isascii() and text.isdigit())
            or int(text) < least
            or (most is not None and int(text) > most)
        ):
            expected = f">= {least}" if most is None else f"from {least} to {most}"
            raise argparse.ArgumentTypeError(f"expected an integer {expected}, got {text!r}")
        return int(text)

    return parse


def _port(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port from 0 to 65535, got {text!r}")
    return int(text)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _demo(args: argparse.Namespace) -> int:
    from otel_eventlog.cli.demo import run_demo  # noqa: PLC0415  # the demo's imports only when it runs

    try:
        run_demo(
            None if args.config is None else Path(args.config),
            duration=math.inf if args.duration is None else args.duration,
            sessions=args.sessions,
            out=sys.stdout,
            port=DEFAULT_PORT if args.port is None else args.port,
            any_port_if_taken=args.port is None,
        )
    except OSError as error:
        if error.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise  # writing the feed failed (a closed pipe, a full disk): `main` says so
        # The port asked for is taken, or not this process's to use.
        print(
            f"otel-eventlog: error: cannot listen on 127.0.0.1:{args.port}: {error.strerror}", file=sys.stderr
        )
        return 1
    except (EventLogError, ImportError) as error:  # a bad config; Redis unreachable; a missing extra
        print(f"otel-eventlog: error: {error}", file=sys.stderr)
        return 1
    return 0


def _serve(args: argparse.Namespace) -> int:
    try:
        config = load_config(None if args.config is None else Path(args.config))
        activity = config.activity
        log = _reachable(config.event_log.create_event_log)
    except (EventLogError, ImportError) as error:  # ImportError: the backend's extra is missing
        print(f"otel-eventlog: error: {error}", file=sys.stderr)
        return 1
    port = activity.port if args.port is None else args.port
    addr = activity.addr if args.addr is None else args.addr
    try:
        server = start_activity_server(
            log,
            port,
            addr,
            token=activity.token,
            limits=activity.limits(),
            allow_unauthenticated=activity.allow_unauthenticated,
        )
    except OSError as error:  # the address: in use, not this host's, not resolvable
        bare = addr.strip().removeprefix("[").removesuffix("]")
        host = f"[{bare}]" if ":" in bare else bare
        print(
            f"otel-eventlog: error: cannot listen on {host}:{port}: {error.strerror or error}",
            file=sys.stderr,
        )
        return 1
    except EventLogError as error:  # beyond the loopback interface without a token, say
        print(f"otel-eventlog: error: {error}", file=sys.stderr)
        return 1
    stop, interrupted = threading.Event(), threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def on_interrupt(*_: object) -> None:  # Ctrl-C, whatever disposition the process was started with
        interrupted.set()
        stop.set()

    signal.signal(signal.SIGINT, on_interrupt)
    print(f"serving the {config.event_log.backend} event log at {server.page_url}", flush=True)
    try:
        stop.wait()
    finally:
        server.close()
    return 130 if interrupted.is_set() else 0


def _reachable(build: Callable[[], EventLog]) -> EventLog:
    """Build the log and read it once: a log that cannot be read (Redis is down) is an error now.

    The library's own warning that says the same is held back meanwhile, so that the error is one line.
    """
    library = logging.getLogger("otel_eventlog")
    level = library.level
    library.setLevel(logging.ERROR)
    log = build()
    log.read(None, 0)  # raises BackendError, and the level stays: the command ends with the error
    library.setLevel(level)
    return log


def _tail(args: argparse.Namespace) -> int:
    token = args.token if args.token is not None else os.environ.get("OTEL_EVENTLOG_ACTIVITY_TOKEN") or None
    if args.running:
        for given, flag in (
            (args.kind, "--kind"),
            (args.since is not None, "--since"),
            (args.json, "--json"),
        ):
            if given:
                print(
                    f"otel-eventlog tail: error: {flag} does not apply to --running, which reads the whole "
                    "log (see otel-eventlog tail --help)",
                    file=sys.stderr,
                )
                return 2
    try:
        tail(
            args.url,
            out=sys.stdout,
            kinds=args.kind,
            since=args.since,
            token=token,
            count=args.count,
            as_json=args.json,
            running=args.running,
        )
    except TailError as error:
        print(f"otel-eventlog: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _check_config(args: argparse.Namespace) -> int:
    if args.file == "":
        args.parser.error("FILE is empty: name a YAML file, or leave it out to check the environment alone")
    named = os.environ.get("OTEL_EVENTLOG_CONFIG") or None
    source = args.file if args.file is not None else named
    try:
        config = load_config(None if source is None else Path(source))  # a file name, never YAML text
    except ConfigError as error:
        print(f"otel-eventlog: error: {error}", file=sys.stderr)
        return 1
    unknown = unknown_variables()
    for problem in unknown:  # a mistyped variable is a mistake too, though load_config ignores it
        print(f"otel-eventlog: error: {problem}", file=sys.stderr)
    if unknown:
        return 1
    print(f"# {source if source is not None else 'the defaults and the OTEL_EVENTLOG_* variables'}: valid")
    print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
    return 0
