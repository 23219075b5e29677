"""`quiet`: the library's own I/O, hidden from the instrumentations of the libraries it uses.

The Redis backend talks to Redis through redis-py. With ``opentelemetry-instrumentation-redis``
installed (``opentelemetry-bootstrap`` installs it for any application that has redis-py), each of
those calls would become a span of the application's traces and, taken in by the library's own span
processor, events of the very log it is writing: a loop that fills the log with its own traffic,
the application idle. Every OpenTelemetry instrumentation leaves alone what runs while the context
says to suppress instrumentation; `quiet` says so, for the duration of a ``with`` block.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from opentelemetry import context

__all__ = ["quiet"]

# The key the instrumentations look up (a private name of the API, there for them since 1.0), and
# the plain name they also honour, as older ones set it.
_KEY = context._SUPPRESS_INSTRUMENTATION_KEY
_PLAIN_KEY = "suppress_instrumentation"


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Run the block with instrumentation suppressed: what it does is no span, no metric, no log."""
    token = context.attach(context.set_value(_PLAIN_KEY, True, context.set_value(_KEY, True)))
    try:
        yield
    finally:
        context.detach(token)
