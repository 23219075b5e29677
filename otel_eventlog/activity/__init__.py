"""Activity readers over HTTP: a JSON page, a Server-Sent Events stream and a live page.

`start_activity_server` runs them on a background thread with the standard library only.
"""

from __future__ import annotations

from otel_eventlog.activity._http import ActivityApp, ActivityLimits
from otel_eventlog.activity.server import DEFAULT_PORT, ActivityServer, start_activity_server

__all__ = ["DEFAULT_PORT", "ActivityApp", "ActivityLimits", "ActivityServer", "start_activity_server"]
