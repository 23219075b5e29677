"""Activity readers over HTTP: a JSON page, a Server-Sent Events stream and a live page.

`start_activity_server` runs them on a background thread with the standard library only;
`make_wsgi_app` and `make_asgi_app` mount them in a web framework's application. `encode_json` is the
JSON encoder every reader uses: compact, and it never fails (what JSON cannot hold becomes a string).
"""

from __future__ import annotations

from otel_eventlog._json import dumps as encode_json
from otel_eventlog.activity._http import ActivityApp, ActivityLimits
from otel_eventlog.activity.asgi import make_asgi_app
from otel_eventlog.activity.server import DEFAULT_PORT, ActivityServer, start_activity_server
from otel_eventlog.activity.wsgi import make_wsgi_app

__all__ = [
    "DEFAULT_PORT",
    "ActivityApp",
    "ActivityLimits",
    "ActivityServer",
    "encode_json",
    "make_asgi_app",
    "make_wsgi_app",
    "start_activity_server",
]
