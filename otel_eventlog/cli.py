"""The ``otel-eventlog`` command line.

- ``otel-eventlog --version``
- ``otel-eventlog check-config FILE``: print the effective configuration (the file with the
  ``OTEL_EVENTLOG_*`` environment applied) or what is wrong with it; exit status 0 or 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from otel_eventlog._version import __version__
from otel_eventlog.config import ConfigError, load_config

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with `argv` (by default ``sys.argv[1:]``) and return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    status: int = args.run(args)
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otel-eventlog",
        description="A live, bounded activity feed of OpenTelemetry events.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = commands.add_parser(
        "check-config",
        help="validate a YAML config file and print the effective configuration",
        description=(
            "Validate the observability section of a YAML file and print the effective "
            "configuration, with the OTEL_EVENTLOG_* environment variables applied. "
            "Exits 0 when the configuration is valid, 1 when it is not."
        ),
    )
    check.add_argument("file", metavar="FILE", help="the YAML file to check")
    check.set_defaults(run=_check_config)
    return parser


def _check_config(args: argparse.Namespace) -> int:
    try:
        config = load_config(Path(args.file))  # always a file name, never YAML text
    except ConfigError as error:
        print(f"otel-eventlog: error: {error}", file=sys.stderr)
        return 1
    print(f"# {args.file}: valid")
    print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
    return 0
