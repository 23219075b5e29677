"""A local stub of the OpenAI chat completions API, for the agents the tests run in processes of their own.

An agent script puts the project's root on ``sys.path`` (it runs with ``python -c``, perhaps in another
directory) and imports this module; `serve` answers each request as the script's own function says.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# What a script says to a request: the HTTP status and the JSON body.
Answer = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]


def completion(
    response_id: str, finish_reason: str, message: dict[str, Any], prompt_tokens: int, completion_tokens: int
) -> dict[str, Any]:
    """Return the body of a chat completion with one choice, as the API sends it."""
    return {
        "id": response_id,
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "finish_reason": finish_reason, "message": message}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def serve(answer: Answer) -> str:
    """Serve the stub on a free loopback port, on a daemon thread; return the client's ``base_url``."""

    class Api(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            status, reply = answer(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            body = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/v1"
