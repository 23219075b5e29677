"""Run the command line: ``python -m otel_eventlog``."""

import sys

from otel_eventlog.cli import main

sys.exit(main())
