"""The Activity endpoints of a shared event log, for servers that run several workers.

From a clone of the repository, with ``pip install 'otel-eventlog[redis]' gunicorn uvicorn``::

    export OTEL_EVENTLOG_BACKEND=redis OTEL_EVENTLOG_REDIS_URL=redis://127.0.0.1:6379/0
    gunicorn -w 3 --chdir examples activity_app:app                # WSGI
    uvicorn --workers 2 --app-dir examples activity_app:asgi_app   # ASGI

Each worker imports this module after the fork, so each builds its own connections to Redis from the
``OTEL_EVENTLOG_*`` variables; every worker serves the same feed, whichever one a request reaches.
An application mounts the same apps beside its own routes.
"""

from __future__ import annotations

import otel_eventlog

log = otel_eventlog.configure()  # the file OTEL_EVENTLOG_CONFIG names, if any, and OTEL_EVENTLOG_*
app = otel_eventlog.make_wsgi_app(log)  # /activity, /activity/stream, /activity/stats and the page
asgi_app = otel_eventlog.make_asgi_app(log)
