"""The ``otel-eventlog`` command line: its commands, the ``tail`` client, the demo agent, line formatting.

`main` runs it; the ``otel-eventlog`` script and ``python -m otel_eventlog`` call it.
"""

from __future__ import annotations

from otel_eventlog.cli.commands import main

__all__ = ["main"]
