"""GenAI calls in the feed: the maintained OpenAI instrumentation against a local stub of the API.

Each case runs in a fresh process, as the instrumentation patches the OpenAI client for the whole
process and reads its settings from the environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Status, StatusCode

from otel_eventlog import EventLogSpanProcessor, InMemoryEventLog

ROOT = Path(__file__).resolve().parent.parent  # where the agent script imports the API stub from

AGENT_SCRIPT = r"""
import json, sys

sys.path.insert(0, sys.argv[3])
import openai
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider
import otel_eventlog
from tests.openai_stub import completion, serve

REPLY = sys.argv[1]
FAIL = sys.argv[2] == "fail"


def answer(request):
    if FAIL:
        return 500, {"error": {"message": "overloaded", "type": "server_error"}}
    return 200, completion("chatcmpl-1", "stop", {"role": "assistant", "content": REPLY}, 12, 7)


base_url = serve(answer)
tracer_provider, logger_provider = TracerProvider(), LoggerProvider()
log = otel_eventlog.configure(
    {"observability": {"event_log": {"max_value_bytes": 2048,
                                     "redact": {"patterns": ["sk-[A-Za-z0-9]{20,}"]}}}},
    tracer_provider=tracer_provider, logger_provider=logger_provider,
)
OpenAIInstrumentor().instrument(tracer_provider=tracer_provider, logger_provider=logger_provider)
client = openai.OpenAI(base_url=base_url, api_key="sk-test0123456789abcdefghij", max_retries=0)
try:
    client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "What is the weather in Paris?"}]
    )
except openai.APIError as error:
    print("# the call failed:", type(error).__name__, file=sys.stderr)
tracer_provider.force_flush()
print(json.dumps([event.to_dict() for event in log.query()]))
"""


def run_agent(reply: str = "Sunny, 21 C.", *, fail: bool = False, **env: str) -> list[dict[str, Any]]:
    """Run one chat completion through the instrumented client; return the feed's events."""
    environment = {**os.environ, **env}
    for name in ("OTEL_SEMCONV_STABILITY_OPT_IN", "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"):
        if name not in env:
            environment.pop(name, None)
    command = [sys.executable, "-c", AGENT_SCRIPT, reply, "fail" if fail else "ok", str(ROOT)]
    run = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120, env=environment)
    assert run.returncode == 0, run.stderr
    events: list[dict[str, Any]] = json.loads(run.stdout)
    return events


def the_call(events: list[dict[str, Any]]) -> dict[str, Any]:
    [call] = [event for event in events if event["kind"] == "gen_ai.chat"]
    return call


def test_a_chat_call_is_readable_by_default_without_its_content() -> None:
    """Default mode: model, token usage, finish reason and status; no prompt or completion."""
    call = the_call(run_agent())
    payload = call["payload"]
    assert payload["gen_ai.operation.name"] == "chat"
    assert payload["gen_ai.request.model"] == "gpt-4o-mini"
    assert payload["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert payload["gen_ai.usage.input_tokens"] == 12
    assert payload["gen_ai.usage.output_tokens"] == 7
    assert payload["gen_ai.response.finish_reasons"] == ["stop"]
    assert payload["status"] == "UNSET"
    assert payload["duration_ms"] > 0
    assert call["trace_id"]
    assert call["span_id"]
    assert "Sunny" not in json.dumps(call)
    assert "sk-test" not in json.dumps(call)


def test_content_capture_lands_cut_and_redacted_in_the_order_it_happened() -> None:
    """With content capture on, the prompt and the reply land as events, cut to size and redacted."""
    reply = "Use the key sk-abcdefghijklmnopqrstuvwxyz0123 and " + "la " * 2000
    events = run_agent(reply, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true")
    kinds = [event["kind"] for event in events]
    assert kinds == ["gen_ai.user.message", "gen_ai.choice", "gen_ai.chat"]
    [prompt, choice, _] = events
    assert prompt["payload"]["body"] == {"content": "What is the weather in Paris?"}
    content = choice["payload"]["body"]["message"]["content"]
    assert content.startswith("Use the key [redacted] and la la")
    assert content.endswith("bytes truncated]")
    assert len(content.encode()) < 2048 + 100
    assert choice["span_id"] == events[2]["span_id"]  # correlated with the call's span


def test_content_on_the_span_is_carried_cut_and_redacted() -> None:
    """Messages recorded as span attributes (the latest conventions) come along, within the limits."""
    log = InMemoryEventLog(max_value_bytes=1024)
    provider = TracerProvider()
    provider.add_span_processor(EventLogSpanProcessor(log, live_interval=0))
    messages = json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "la " * 1000}]}])
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]',
        "gen_ai.output.messages": messages,
    }
    with provider.get_tracer("agent").start_as_current_span("chat gpt-4o-mini", attributes=attributes):
        pass
    provider.shutdown()
    [call] = log.query()
    assert call.kind == "gen_ai.chat"
    assert '"content": "hi"' in call.payload["gen_ai.input.messages"]
    assert call.payload["gen_ai.output.messages"].endswith("bytes truncated]")
    assert log.stats()["truncated"] == 1


def test_a_failed_call_shows_its_error() -> None:
    """A call the API refuses shows its status and error type."""
    payload = the_call(run_agent(fail=True))["payload"]
    assert payload["status"] == "ERROR"
    assert payload["error.type"] == "InternalServerError"
    assert payload["gen_ai.request.model"] == "gpt-4o-mini"


def test_a_tool_step_shows_its_name_and_call_id_and_other_spans_carry_chosen_attributes() -> None:
    """An execute_tool span becomes gen_ai.execute_tool; span_attributes picks what span.ended carries."""
    log = InMemoryEventLog()
    provider = TracerProvider()
    provider.add_span_processor(
        EventLogSpanProcessor(log, live_interval=0, span_lifecycle=True, span_attributes=["gen_ai.*", "db.*"])
    )
    tracer = provider.get_tracer("agent")
    with tracer.start_as_current_span(
        "execute_tool get_weather",
        attributes={
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "get_weather",
            "gen_ai.tool.call.id": "call_42",
            "http.url": "https://example.com",
        },
    ) as span:
        span.set_status(Status(StatusCode.ERROR, "no such city"))
    with tracer.start_as_current_span("query", attributes={"db.system": "sqlite", "other": 1}):
        pass
    provider.shutdown()
    ended = {
        (event.kind, event.payload["name"]): event.payload for event in log.query() if "name" in event.payload
    }
    tool = ended["gen_ai.execute_tool", "execute_tool get_weather"]
    assert tool["gen_ai.tool.name"] == "get_weather"
    assert tool["gen_ai.tool.call.id"] == "call_42"
    assert (tool["status"], tool["status_description"]) == ("ERROR", "no such city")
    assert "http.url" not in tool
    query = ended["span.ended", "query"]
    assert query["db.system"] == "sqlite"
    assert "other" not in query
    assert ("gen_ai.execute_tool", "query") not in ended


def test_gen_ai_entries_can_be_switched_off() -> None:
    """gen_ai_operations=False: a GenAI span adds nothing of its own."""
    log = InMemoryEventLog()
    provider = TracerProvider()
    provider.add_span_processor(EventLogSpanProcessor(log, live_interval=0, gen_ai_operations=False))
    with provider.get_tracer("agent").start_as_current_span(
        "chat", attributes={"gen_ai.operation.name": "chat"}
    ):
        pass
    provider.shutdown()
    assert log.query() == []
