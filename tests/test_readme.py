"""Every fenced block of README.md runs as written, or matches a real run, the way a reader would use it.

`readme_blocks` finds the blocks, with the heading each sits under. `CHECKS` gives each block its check,
naming the block by that heading and a piece of its text, so that a block added, or rewritten past
recognition, without a check of its own fails `test_every_readme_block_is_checked`, which names its line.

- Python blocks run in a fresh interpreter whose working directory holds a copy of
  ``examples/observability.yaml`` (the blocks say ``configure("observability.yaml")``). They run one
  statement at a time, as in a REPL, so that the check can read what an expression statement such as
  ``event.id  # 1`` gives; then the check's own code asserts what the block promises, in the same
  process. The script keeps the README's line numbers, in a file called ``README.md``, so that a
  traceback points at the README line that failed.
- YAML blocks go through `load_config`.
- Transcripts and sample outputs are compared with a real run, after normalising only what varies from
  run to run (times, ids, epochs, trace ids, ports, durations, token counts, random choices).
- Shell blocks run as written, with only the substitutions each check names (a free port for a fixed
  one, the test's own Redis for the README's), or are checked against what they name where running them
  would install packages or take minutes.
"""

from __future__ import annotations

import builtins
import calendar
import importlib.metadata
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
import yaml
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

import otel_eventlog
import otel_eventlog.backends
import otel_eventlog.errors
from otel_eventlog import (
    Entry,
    EventLogSpanProcessor,
    InMemoryEventLog,
    ObservabilityConfig,
    RedisEventLog,
    load_config,
)
from otel_eventlog.config import ENV_VARIABLES, ConfigError
from tests import redis_server
from tests.helpers import until_a_reader_waits
from tests.otlp_receiver import otlp_receiver

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
WAIT = 30.0  # seconds: only ever reached when a check fails


# -- The blocks ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One fenced block of the README.

    Attributes:
        language: What follows the opening fence: ``python``, ``sh``, ``yaml``, ``text``, or ``""``.
        line: The README line of the block's first line of text.
        heading: The heading of the section the block sits in.
        text: The block's text, without its fences, and without the indentation of its fences.
    """

    language: str
    line: int
    heading: str
    text: str

    def lines(self) -> list[str]:
        """Return the block's lines."""
        return self.text.splitlines()


def readme_blocks(text: str) -> list[Block]:
    """Return the fenced blocks of a Markdown text, indented ones (in list items) included, in order."""
    blocks: list[Block] = []
    heading = ""
    opened: tuple[str, int, int] | None = None  # the open block's language, first line, indentation
    body: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.lstrip(" ")
        if opened is None:
            if stripped.startswith("```"):
                opened, body = (stripped[3:].strip(), number + 1, len(line) - len(stripped)), []
            elif line.startswith("#"):
                heading = line.lstrip("#").strip()
        elif stripped.rstrip() == "```":
            language, first, indent = opened
            blocks.append(Block(language, first, heading, "".join(f"{row[indent:]}\n" for row in body)))
            opened = None
        else:
            body.append(line)
    assert opened is None, f"README.md:{opened[1] - 1}: a fence that is never closed"
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


def where(blocks: list[Block]) -> str:
    """Name the blocks' README lines, for a failure message."""
    return ", ".join(f"README.md:{block.line}" for block in blocks)


# -- Running things as a reader would --------------------------------------------------------------------


def environment(**variables: str) -> dict[str, str]:
    """This process's environment without any ``OTEL_*`` variable, plus `variables`."""
    environ = {name: value for name, value in os.environ.items() if not name.startswith("OTEL_")}
    environ.update(variables)
    return environ


def script(name: str) -> str:
    """Return the path of a console script of this environment (``otel-eventlog``, ``gunicorn``, ...)."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is not installed (pip install -e '.[test]')"
    return found


def run(command: list[str], cwd: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """Run `command` to its end in `cwd`, in `environment(**variables)`, and return what it printed."""
    return subprocess.run(
        command,
        cwd=cwd,
        env=environment(**variables),
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )


def cli() -> list[str]:
    """The ``otel-eventlog`` command: the script beside this interpreter, else ``python -m otel_eventlog``."""
    beside = Path(sys.executable).with_name("otel-eventlog")
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "otel_eventlog"]


class Lines:
    """The lines a child process writes to one of its pipes, read as they come by a thread of their own."""

    def __init__(self, pipe: IO[str]) -> None:
        self.lines: list[str] = []
        self._ended = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe: IO[str]) -> None:
        for line in pipe:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def wait_for(self, done: Callable[[list[str]], bool], what: str) -> list[str]:
        """Wait until `done` holds for the lines so far (or the pipe closed) and return them."""
        with self._changed:
            self._changed.wait_for(lambda: self._ended or done(self.lines), WAIT)
            assert done(self.lines), f"waited for {what}; the lines so far:\n" + "\n".join(self.lines)
            return list(self.lines)

    def line_with(self, pattern: str) -> re.Match[str]:
        """Wait for a line that `pattern` matches (searched) and return the match."""
        lines = self.wait_for(lambda lines: any(re.search(pattern, line) for line in lines), pattern)
        return next(match for line in lines if (match := re.search(pattern, line)))

    def all(self) -> list[str]:
        """Wait until the pipe closes and return every line."""
        self._thread.join(WAIT)
        return self.lines


@contextmanager
def started(command: list[str], **options: Any) -> Iterator[tuple[subprocess.Popen[str], Lines, Lines]]:
    """Start `command`, its output read line by line; kill it and its children if it still runs at the end.

    It leads a process group of its own, so that its children (a server's workers) go with it.
    """
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, **options
    )
    assert process.stdout is not None
    assert process.stderr is not None
    out, err = Lines(process.stdout), Lines(process.stderr)
    try:
        yield process, out, err
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # it still leads its group: the group is its own
        process.wait(WAIT)
        out.all()
        err.all()
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


def interrupt(process: subprocess.Popen[str]) -> int:
    """Press Ctrl-C (SIGINT) and return the exit status."""
    process.send_signal(signal.SIGINT)
    return process.wait(WAIT)


# Runs the README's Python blocks one statement at a time, as a REPL does, keeping what each expression
# statement gives (`value_of`), then runs the check's code in the same namespace.
DRIVER = r"""
import ast
import sys


def main(blocks_path, checks_path):
    with open(blocks_path, encoding="utf-8") as file:
        source = file.read()
    shown = []
    namespace = {"__name__": "__main__"}
    for statement in ast.parse(source, blocks_path).body:
        text = ast.get_source_segment(source, statement)
        sys.displayhook = lambda value, text=text: value is None or shown.append((text, value))
        exec(compile(ast.Interactive(body=[statement]), blocks_path, "single"), namespace)
    sys.displayhook = sys.__displayhook__

    def value_of(start):
        values = [value for text, value in shown if text.startswith(start)]
        assert len(values) == 1, f"{len(values)} expression statements start with {start!r}: {shown}"
        return values[0]

    namespace["value_of"] = value_of
    with open(checks_path, encoding="utf-8") as file:
        exec(compile(file.read(), checks_path, "exec"), namespace)


main(*sys.argv[1:])
"""


def run_python(
    blocks: list[Block], checks: str, cwd: Path, **variables: str
) -> subprocess.CompletedProcess[str]:
    """Run `blocks` in order in one fresh interpreter, then `checks` in the same namespace.

    The blocks stand at their README line numbers in a file called ``README.md``, so that a traceback
    names the README's line. The working directory holds a copy of ``examples/observability.yaml``.
    """
    shutil.copy(ROOT / "examples" / "observability.yaml", cwd / "observability.yaml")
    lines: list[str] = []
    for block in blocks:
        assert len(lines) < block.line, "blocks run together must be given in README order"
        lines += [""] * (block.line - 1 - len(lines)) + block.lines()
    (cwd / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (cwd / "checks.py").write_text(textwrap.dedent(checks), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, "README.md", "checks.py"],
        cwd=cwd,
        env=environment(**variables),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"the block(s) at {where(blocks)} failed, or did not do what the README says "
            f"(line numbers in README.md are the README's):\n{result.stderr}",
            pytrace=False,
        )
    return result


def pip_install(words: list[str], block: Block, extras: dict[str, set[str]]) -> None:
    """Check a ``pip install`` line: each of our extras exists and holds what it should; others are installed.

    Nothing is installed: the extras are read from this package's metadata (what pip reads, built from
    pyproject.toml), and the other packages must be installed here already, as the test extra has them.
    """
    assert words[:2] == ["pip", "install"], f"README.md:{block.line}: not a pip install line: {words}"
    declared: dict[str, set[str]] = {}
    for requirement in importlib.metadata.requires("otel-eventlog") or []:
        found = re.match(r"([A-Za-z0-9._-]+).*;\s*extra\s*==\s*['\"]([\w-]+)['\"]", requirement)
        if found:
            declared.setdefault(found[2], set()).add(found[1].lower())
    for requirement in words[2:]:
        named = re.fullmatch(r"otel-eventlog\[([\w-]+)\]", requirement)
        if named:
            assert extras[named[1]] <= declared.get(named[1], set()), (
                f"README.md:{block.line}: the extra {named[1]!r} should install {extras[named[1]]}; "
                f"it installs {declared.get(named[1])}"
            )
        else:
            importlib.metadata.version(requirement)  # raises PackageNotFoundError if it is not installed


# -- The checks ------------------------------------------------------------------------------------------


def an_illustration(blocks: list[Block], tmp_path: Path) -> None:
    """The architecture diagram is not run; the packages, modules and classes it names exist."""
    (block,) = blocks
    source = Path(otel_eventlog.__file__).parent
    for package in re.findall(r"^ (\w+)/ ", block.text, re.MULTILINE):
        assert (source / package / "__init__.py").exists(), package
    for module in re.findall(r"^ (\w+\.py) ", block.text, re.MULTILINE):
        assert (source / module).exists(), module
    names = set(re.findall(r"\b(\w*EventLog\w*|BatchWriter)\b", block.text)) - {"otel_eventlog"}
    assert len(names) >= 8, names
    for name in names:
        assert hasattr(otel_eventlog, name) or hasattr(otel_eventlog.backends, name), name


_DEMO_TAKEN = re.compile(r"# port 9450 is taken \(.*\): the page is on a free one instead")


def _demo_line(line: str) -> str:
    """A line of the demo's output, without what varies from run to run."""
    line = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<port>", line)
    line = re.sub(r"^#\d+ +", "#<id> ", line)  # the id, and the padding that follows its width
    line = re.sub(r"\b\d\d:\d\d:\d\d\.\d{3}\b", "<time>", line)
    line = re.sub(r"tokens=\d+", "tokens=<count>", line)
    line = re.sub(r"tool=\w+", "tool=<tool>", line)  # the demo picks its tools at random
    return re.sub(r" +trace=[0-9a-f]{8}$", " trace=<trace>", line)  # and the padding before it


def check_the_quick_start(blocks: list[Block], tmp_path: Path) -> None:
    """Command 2 is what .ci/run runs; command 1's demo runs, serves its page, prints the sample's lines."""
    commands_block, sample = blocks
    commands = [line for line in commands_block.lines() if line and not line.startswith("#")]
    assert len(commands) == 2, commands
    demo_command, test_command = commands
    # Command 2 runs on a fresh machine as .ci/run runs it, word for word.
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_command in ci, f"README.md:{commands_block.line}: .ci/run does not run {test_command!r}"
    # Command 1 installs as command 2 does, without the test extra; this environment has the package
    # installed already, so only its last step runs here: the demo, with this environment's script.
    *install, run_demo = demo_command.split(" && ")
    assert install == [test_command.split(" && ")[0], ".venv/bin/pip install -e ."], install
    words = shlex.split(run_demo)
    assert words[0] == ".venv/bin/otel-eventlog", words
    header, _, events = sample.text.partition("\n\n")
    first_lines = [*map(_demo_line, header.splitlines()), ""]
    wanted = [_demo_line(line) for line in events.splitlines()]
    # The demo writes to a pipe here, and flushes each page it reads: its lines come as they happen.
    command = [*cli(), *words[1:]]
    with started(command, cwd=tmp_path, env=environment()) as (demo, out, err):
        page = out.line_with(r"^# the Activity page: (http://127\.0\.0\.1:\d+/)$")[1]
        with urllib.request.urlopen(page, timeout=WAIT) as response:
            assert b"<html" in response.read().lower()
        out.wait_for(
            lambda lines: set(wanted) <= {_demo_line(line) for line in lines}, "the sample's event lines"
        )
        status = interrupt(demo)
    assert status == 130, err.all()
    assert err.all() == []
    # 9450 may be taken on this machine: then the demo says so first and serves on a free port.
    lines = [line for line in out.all() if not _DEMO_TAKEN.fullmatch(line)]
    shown = [_demo_line(line) for line in lines[: len(first_lines)]]
    assert shown == first_lines, f"README.md:{sample.line}: the demo's first lines differ from the sample's"


_USING_CHECKS = r"""
import asyncio
import contextlib
import io
import re
import time
import urllib.error
import urllib.request

# Using the event log: what the comments say each expression gives.
assert value_of("event.id") == 1
wire = value_of("event.to_dict()")
assert list(wire) == ["id", "timestamp", "kind", "payload"], wire
assert (wire["id"], wire["kind"], wire["payload"]) == (1, "turn.started", {"session": "s-1", "turn": 41})
assert value_of("log.extend(") == range(2, 4)

# From Python: the long-poll returned at once with the two events after the cursor; after close(), a
# wait returns at once.
assert [event.id for event in page.events] == [2, 3], page
assert cursor == 3
started = time.monotonic()
assert log.read(since=cursor, wait=30).events == ()
assert time.monotonic() - started < 5

# activity_tab, on a log holding a turn event and a tool event: it prints the turn event, then the turn
# events that come while it follows, never a tool event, and ends when the log is closed.
class Printed(io.StringIO):
    def write(self, text):
        written = super().write(text)
        news.set()
        return written


async def until_printed(text):
    while text not in printed.getvalue():
        news.clear()
        try:
            await asyncio.wait_for(news.wait(), 10)
        except asyncio.TimeoutError:
            raise AssertionError(f"activity_tab never printed {text!r}: {printed.getvalue()!r}") from None


async def follow_a_tab():
    global news
    news = asyncio.Event()
    tab_log = create_event_log("memory")
    tab_log.append("turn.started", {"turn": 1})
    tab_log.append("tool.called", {"tool": "search"})
    tab = asyncio.create_task(activity_tab(tab_log))
    await until_printed("1 turn.started\n")
    tab_log.append("tool.called", {"tool": "read_file"})
    tab_log.append("turn.completed", {"turn": 1})
    await until_printed("4 turn.completed\n")
    tab_log.close()
    await asyncio.wait_for(tab, 10)


printed = Printed()
with contextlib.redirect_stdout(printed):
    asyncio.run(follow_a_tab())
assert printed.getvalue().splitlines() == ["1 turn.started", "4 turn.completed"], printed.getvalue()

# Over HTTP: the server got a port of its own, and close() freed it.
assert re.fullmatch(rf"http://127\.0\.0\.1:{server.port}/", server.url) and server.port > 0, server.url
try:
    urllib.request.urlopen(server.url + "activity", timeout=5).close()
except urllib.error.URLError:
    pass
else:
    raise AssertionError("the server still answers after close()")
"""


def check_the_event_log_as_the_readme_uses_it(blocks: list[Block], tmp_path: Path) -> None:
    """Using the event log, then reading it from Python and over HTTP: one session, as a reader runs it."""
    result = run_python(blocks, _USING_CHECKS, tmp_path)
    printed = result.stdout.splitlines()
    assert printed[0] == "1 turn.started {'session': 's-1', 'turn': 41}", printed
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", printed[1]), printed
    assert len(printed) == 2, printed


def check_the_batch_writer_contract(blocks: list[Block], tmp_path: Path) -> None:
    """The BatchWriter the README shows runs, and has the members and signature of the library's."""
    run_python(
        blocks,
        """
        import inspect
        import sys

        from otel_eventlog import backends, create_event_log

        real = backends.BatchWriter
        members = [{name for name in vars(cls) if not name.startswith("_")} for cls in (BatchWriter, real)]
        assert members[0] == members[1] == {"write_batch"}, members
        shown, actual = inspect.signature(BatchWriter.write_batch), inspect.signature(real.write_batch)
        assert list(shown.parameters) == list(actual.parameters), (shown, actual)
        # The same annotations: the library's, written as text, read in the library's module.
        module = vars(sys.modules[real.__module__])
        annotations = {
            name: eval(text, module) if isinstance(text, str) else text
            for name, text in real.write_batch.__annotations__.items()
        }
        assert BatchWriter.write_batch.__annotations__ == annotations, annotations
        assert isinstance(create_event_log("memory"), real)  # the built-in backends implement it
        """,
        tmp_path,
    )


def check_the_redis_extra(blocks: list[Block], tmp_path: Path) -> None:
    """``pip install 'otel-eventlog[redis]'`` names an extra that installs redis-py."""
    (block,) = blocks
    pip_install(shlex.split(block.text, comments=True), block, {"redis": {"redis"}})


def check_the_redis_configuration(blocks: list[Block], tmp_path: Path) -> None:
    """The Redis section loads: backend, limits, URL and stream as written, the rest the defaults."""
    (block,) = blocks
    event_log = load_config(block.text, environ={}).event_log
    assert (event_log.backend, event_log.ttl_seconds, event_log.max_entries) == ("redis", 3600, 10_000)
    redis = event_log.redis
    assert (redis.url, redis.stream) == ("redis://cache.internal:6379/0", "otel-eventlog")
    defaults = ObservabilityConfig().event_log.redis
    assert (redis.queue_events, redis.batch_events, redis.timeout_seconds) == (
        defaults.queue_events,
        defaults.batch_events,
        defaults.timeout_seconds,
    )


def check_serve_without_redis(blocks: list[Block], tmp_path: Path) -> None:
    """``otel-eventlog serve`` with its Redis unreachable exits 1 with the README's one line."""
    (block,) = blocks
    port = redis_server.free_port()  # nothing listens there
    variables = {"OTEL_EVENTLOG_BACKEND": "redis", "OTEL_EVENTLOG_REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    result = run([*cli(), "serve"], tmp_path, **variables)

    def varying(text: str) -> list[str]:  # the port, and the errno's number, which is the platform's
        return re.sub(r"Error \d+ ", "Error <errno> ", re.sub(r":\d+\b", ":<port>", text)).splitlines()

    assert result.returncode == 1, result.stderr
    assert varying(result.stderr) == varying(block.text), f"README.md:{block.line}: {result.stderr}"


def _recipe(block: Block, redis_url: str) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Each command of the recipes, by program, with the variables exported before it in the block.

    The README's Redis URLs are replaced by the test's own Redis.
    """
    variables: dict[str, str] = {}
    commands: dict[str, tuple[list[str], dict[str, str]]] = {}
    for line in block.lines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["export"]:
            for word in words[1:]:
                name, _, value = word.partition("=")
                if name == "OTEL_EVENTLOG_REDIS_URL":
                    assert value.startswith("redis://"), value
                    value = redis_url
                variables[name] = value
        elif words:
            commands[words[1] if words[0] == "otel-eventlog" else words[0]] = (words, dict(variables))
    assert set(commands) == {"gunicorn", "uvicorn", "serve", "tail"}, f"README.md:{block.line}: {commands}"
    return commands


def check_the_deployment_recipes(blocks: list[Block], tmp_path: Path) -> None:
    """The recipes run as written: gunicorn's and uvicorn's workers and serve show one feed; tail follows it.

    Substituted: the test's own Redis for the README's, and free ports for the servers' defaults (through
    ``GUNICORN_CMD_ARGS``, ``UVICORN_PORT`` and ``OTEL_EVENTLOG_ACTIVITY_PORT``, and the port serve got
    for 9450 in the tail command). tests/test_redis_deployments.py checks more of the same deployments:
    that each worker answers, and long-polls held by every worker at once.
    """
    (block,) = blocks
    redis = redis_server.shared()  # skips, or fails when Redis is required, without redis-server
    commands = _recipe(block, redis.url)
    ports = {"gunicorn": redis_server.free_port(), "uvicorn": redis_server.free_port()}
    ours = {
        # gunicorn 27 opens a control socket under ~/.gunicorn: here, under tmp_path.
        "gunicorn": {"GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{ports['gunicorn']}", "HOME": str(tmp_path)},
        "uvicorn": {"UVICORN_PORT": str(ports["uvicorn"])},
        "serve": {"OTEL_EVENTLOG_ACTIVITY_PORT": "0"},
    }
    programs = {"gunicorn": [script("gunicorn")], "uvicorn": [script("uvicorn")], "serve": cli()}

    @contextmanager
    def running(name: str) -> Iterator[tuple[subprocess.Popen[str], Lines, Lines]]:
        words, variables = commands[name]
        command = programs[name] + words[1:]
        # From a clone: the recipes name examples/activity_app.py by a path relative to its root.
        with started(command, cwd=ROOT, env=environment(**variables, **ours[name])) as process:
            yield process
            process[0].terminate()
            assert process[0].wait(WAIT) == 0, "\n".join(process[2].all())

    stream = commands["gunicorn"][1]["OTEL_EVENTLOG_REDIS_STREAM"]
    writer = RedisEventLog(redis.url, stream=stream)
    try:
        ids = writer.extend([Entry("turn.started", {"turn": 1}), Entry("tool.called", {"tool": "search"})])
        with running("gunicorn") as gunicorn, running("uvicorn") as uvicorn, running("serve") as serve:
            gunicorn[2].line_with(rf"Listening at: http://127\.0\.0\.1:{ports['gunicorn']}\b")
            uvicorn[2].line_with(rf"Uvicorn running on http://127\.0\.0\.1:{ports['uvicorn']}\b")
            # Its workers listen on the socket it bound: wait until both serve.
            uvicorn[2].wait_for(
                lambda lines: "\n".join(lines).count("Application startup complete.") == 2, "workers"
            )
            served = serve[1].line_with(r"^serving the redis event log at (http://127\.0\.0\.1:(\d+)/)$")
            urls = [f"http://127.0.0.1:{ports['gunicorn']}/"] * 3 + [
                f"http://127.0.0.1:{ports['uvicorn']}/"
            ] * 2
            pages = []
            for url in [*urls, served[1]]:
                with urllib.request.urlopen(f"{url}activity?since={ids[0] - 1}", timeout=WAIT) as response:
                    pages.append(json.load(response))
            words, variables = commands["tail"]
            tail = [*cli(), *(word.replace("127.0.0.1:9450", f"127.0.0.1:{served[2]}") for word in words[1:])]
            with started(tail, cwd=tmp_path, env=environment(**variables)) as (follower, out, _):
                out.wait_for(lambda lines: len(lines) >= len(ids), "tail's lines")
                assert interrupt(follower) == 130
    finally:
        writer.close()
    for page in pages:
        events = [(event["id"], event["kind"], event["payload"]) for event in page["events"]]
        assert events == [(ids[0], "turn.started", {"turn": 1}), (ids[1], "tool.called", {"tool": "search"})]
    assert len({page["epoch"] for page in pages}) == 1, pages
    assert [line.split()[2] for line in out.all()] == ["turn.started", "tool.called"], out.all()


def _transcript(block: Block) -> list[tuple[list[str], list[str]]]:
    """The ``$ `` commands of a transcript, each with the lines it printed (trailing blank lines left out)."""
    steps: list[tuple[list[str], list[str]]] = []
    for line in block.lines():
        if line.startswith("$ "):
            steps.append((shlex.split(line[2:], comments=True), []))
        else:
            steps[-1][1].append(line)
    for _, printed in steps:
        while printed and not printed[-1]:
            printed.pop()
    return steps


def _http(lines: list[str]) -> list[str]:
    """What the Activity endpoints sent, with the ids shortened as the README does and the epoch left out."""
    text = re.sub(r'"(trace_id|span_id)":"([0-9a-f]{4})[0-9a-f.]*"', r'"\1":"\2..."', "\n".join(lines))
    return re.sub(r"\b[0-9a-f]{16}\b", "<epoch>", text).splitlines()


def check_the_curl_transcript(blocks: list[Block], tmp_path: Path) -> None:
    """Each ``$ curl`` of the transcript, run as written at a server whose log holds events like its own.

    9450 becomes the server's free port. Compared exactly: every answer, byte for byte, but for the log's
    epoch (a new one each run) and the trace and span ids, which the README shortens.
    """
    (block,) = blocks
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    (first, page), (poll, held), (stream, messages), (wrong, refused) = _transcript(block)
    log = InMemoryEventLog()
    trace_id, span_id = "d788" + "5e1f" * 7, "b6d3" + "9a0c" * 3
    log.append("turn.started", {"turn": 1}, timestamp=1795749229.47, trace_id=trace_id, span_id=span_id)
    log.append("tool.called", {"tool": "read_file"})
    log.append("tool.returned", {"lines": 120})
    with otel_eventlog.start_activity_server(log, port=0) as server:

        def command(words: list[str]) -> list[str]:
            return [curl, *(word.replace("127.0.0.1:9450", f"127.0.0.1:{server.port}") for word in words[1:])]

        def run(words: list[str]) -> list[str]:
            result = subprocess.run(command(words), capture_output=True, text=True, timeout=WAIT, check=True)
            return result.stdout.splitlines()

        assert _http(run(first)) == _http(page), f"README.md:{block.line}"
        assert held == []  # the long-poll: its answer is not shown; it comes once event 4 is appended
        with started(command(poll)) as (waiting, out, _):
            until_a_reader_waits(log)
            log.append("tool.called", {"tool": "search"}, timestamp=1795749230.01)
            assert waiting.wait(WAIT) == 0
        assert [event["id"] for event in json.loads(out.all()[0])["events"]] == [4]
        log.append("turn.completed", {"turn": 1})  # the stream's hello says latest_id 5
        with started(command(stream)) as (streaming, out, _):
            sent = out.wait_for(lambda lines: len(lines) >= len(messages), "the stream's first messages")
            streaming.terminate()
        assert _http(sent[: len(messages)]) == _http(messages), f"README.md:{block.line}"
        assert run(wrong) == refused, f"README.md:{block.line}"


def check_configure(blocks: list[Block], tmp_path: Path) -> None:
    """configure("observability.yaml") builds the file's log and fills it from spans and from logging."""
    run_python(
        blocks,
        """
        import logging

        from opentelemetry import trace

        assert otel_eventlog.get_event_log() is log
        assert (log.ttl_seconds, log.max_entries) == (600, 1000)  # examples/observability.yaml's
        with trace.get_tracer("agent").start_as_current_span("turn") as span:
            span.add_event("turn.started", {"turn": 1})
            logging.getLogger("agent").setLevel(logging.INFO)
            logging.getLogger("agent").info("calling", extra={"event_name": "tool.called", "tool": "search"})
        kinds = [event.kind for event in log.read(since=0, kinds=["turn.*", "tool.*"]).events]
        assert kinds == ["turn.started", "tool.called"], kinds
        """,
        tmp_path,
    )


def check_unconfigure(blocks: list[Block], tmp_path: Path) -> None:
    """configure() then unconfigure(): get_event_log() is None again and the log is closed."""
    run_python(
        blocks,
        """
        assert otel_eventlog.get_event_log() is None
        assert log.closed
        """,
        tmp_path,
    )


def check_wiring_it_yourself(blocks: list[Block], tmp_path: Path) -> None:
    """The hand-wired pipeline puts turn.started and tool.called in the log and exports the span over OTLP."""
    checks = """
        events = log.query()
        assert [event.kind for event in events] == ["turn.started", "tool.called"], events
        started, called = events
        assert started.payload == {"turn": 41}, started
        assert (called.payload["tool"], called.payload["message"]) == ("search", "calling search"), called
        assert called.trace_id == started.trace_id == format(session.get_span_context().trace_id, "032x")
        """
    with otlp_receiver() as receiver:
        run_python(blocks, checks, tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint)
        (span,) = receiver.wait_for(1)  # the BatchSpanProcessor exports it, at the latest at exit
    assert span.name == "session"
    [event] = span.events
    assert (event.name, event.attributes[0].key, event.attributes[0].value.int_value) == (
        "turn.started",
        "turn",
        41,
    )


# One agent turn with a tool step: the openai client, instrumented by opentelemetry-instrumentation-openai-v2
# in its default mode, against a stub of the API that answers as the README's turn was answered. The
# agent serves its log, prints the server's URL and how many events the log holds, and waits for stdin
# to close.
_GEN_AI_AGENT = r"""
import sys

sys.path.insert(0, sys.argv[1])
import openai
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider

import otel_eventlog
from tests.openai_stub import completion, serve

CALL = {"id": "call_7Qx", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
ASKED = {"role": "assistant", "content": None, "tool_calls": [CALL]}
ANSWERED = {"role": "assistant", "content": "Sunny, 21 C."}
ANSWERS = {  # by whether the request holds the tool's result: (response id, finish reason, message, tokens)
    False: ("chatcmpl-1", "tool_calls", ASKED, (41, 17)),
    True: ("chatcmpl-2", "stop", ANSWERED, (73, 9)),
}


def answer(request):
    answer_id, finish, message, (prompt, completed) = ANSWERS[
        any(sent["role"] == "tool" for sent in request["messages"])
    ]
    return 200, completion(answer_id, finish, message, prompt, completed)


base_url = serve(answer)
tracer_provider, logger_provider = TracerProvider(), LoggerProvider()
log = otel_eventlog.configure({}, tracer_provider=tracer_provider, logger_provider=logger_provider)
OpenAIInstrumentor().instrument(tracer_provider=tracer_provider, logger_provider=logger_provider)
client = openai.OpenAI(base_url=base_url, api_key="sk-x", max_retries=0)
tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
messages = [{"role": "user", "content": "What is the weather in Paris?"}]
tracer = tracer_provider.get_tracer("agent")
with tracer.start_as_current_span("turn") as turn:
    turn.add_event("turn.started", {"session": 1, "turn": 1})
    asked = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools).choices[0]
    call = asked.message.tool_calls[0]
    attributes = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": call.function.name,
        "gen_ai.tool.call.id": call.id,
        "gen_ai.tool.type": "function",
    }
    with tracer.start_as_current_span(f"execute_tool {call.function.name}", attributes=attributes):
        result = "Sunny, 21 C."
    messages.append(asked.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools)
    turn.add_event("turn.completed", {"session": 1, "turn": 1})
tracer_provider.force_flush()
server = otel_eventlog.start_activity_server(log, port=0)
print(server.url, len(log), flush=True)
sys.stdin.read()
server.close()
"""


def _varying(line: str) -> str:
    """A line of ``otel-eventlog tail`` without its time, trace id and span durations."""
    line = re.sub(r"\b\d\d:\d\d:\d\d\.\d{3}\b", "<time>", line)
    line = re.sub(r"duration_ms=[0-9.]+", "duration_ms=<ms>", line)
    return re.sub(r"trace=[0-9a-f]{8}$", "trace=<trace>", line)


def check_the_gen_ai_turn(blocks: list[Block], tmp_path: Path) -> None:
    """One agent turn through the OpenAI instrumentation prints the README's lines in ``otel-eventlog tail``.

    A real run: the maintained instrumentation (default mode: no content) around the openai client,
    against a local stub of the API that answers as the README's turn was answered (the same response
    ids, models, token counts and tool call id), with the tool step as the agent's own span, and
    ``otel-eventlog tail`` reading the agent's Activity server. Compared exactly: the number of events,
    their ids, kinds and order, every field's name and value, the bodies, the layout. Normalised: the
    times, the trace id and the spans' durations, which vary from run to run.
    """
    (block,) = blocks
    agent = [sys.executable, "-c", _GEN_AI_AGENT, str(ROOT)]
    with started(agent, cwd=tmp_path, env=environment(), stdin=subprocess.PIPE) as (process, out, err):
        url, count = out.wait_for(bool, "the agent's server")[0].split()
        tail = [*cli(), "tail", url, "--since", "0", "--count", count]
        result = subprocess.run(
            tail, capture_output=True, text=True, timeout=WAIT, env=environment(), check=False
        )
        assert process.stdin is not None
        process.stdin.close()
        assert process.wait(WAIT) == 0, "\n".join(err.all())
    assert result.returncode == 0, result.stderr
    shown = [_varying(line) for line in block.lines()]
    assert [_varying(line) for line in result.stdout.splitlines()] == shown, (
        f"README.md:{block.line}: the turn, as tail prints it now:\n{result.stdout}"
    )


def check_zero_code(blocks: list[Block], tmp_path: Path) -> None:
    """The opentelemetry-instrument block runs as written: the feed is printed, the spans reach the collector.

    Nothing is installed: the pip line is checked against this package's extras and what is installed
    here. The command runs in a directory holding copies of the two files it names, with this
    environment's scripts first on PATH (as in an activated virtual environment) and
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` naming a local OTLP/HTTP receiver.
    """
    (block,) = blocks
    lines = block.text.replace("\\\n", " ").splitlines()
    assert len(lines) == 2, f"README.md:{block.line}: expected a pip install line, then the command: {lines}"
    install, command = (shlex.split(line, comments=True) for line in lines)
    pip_install(install, block, {"otlp": {"opentelemetry-exporter-otlp-proto-http"}})
    variables = {}
    while "=" in command[0]:
        name, _, value = command.pop(0).partition("=")
        variables[name] = value
    assert command[:2] == ["opentelemetry-instrument", "python"], command
    for name in (variables["OTEL_EVENTLOG_CONFIG"], command[2]):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    with otlp_receiver() as receiver:
        result = run(
            [script("opentelemetry-instrument"), *command[1:]],
            tmp_path,
            **variables,
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            PATH=path,
        )
        assert result.returncode == 0, f"README.md:{block.line}:\n{result.stderr}"
        spans = receiver.wait_for(3)
    assert sorted(span.name for span in spans) == ["session", "turn", "turn"], spans
    assert result.stderr == ""
    kinds = [line.split()[1] for line in result.stdout.splitlines()]
    turn = ["turn.started", "tool.called", "turn.completed"]
    assert kinds == ["session.started", *turn, *turn, "session.ended"], result.stdout


def check_the_tail_transcript(blocks: list[Block], tmp_path: Path) -> None:
    """``otel-eventlog tail URL --kind 'turn.*'`` prints the transcript's lines, for a log holding its events.

    The server's log holds the transcript's events, with their ids, times, payloads and trace ids, and
    tool calls in the ids between, which the filter leaves out; so the lines compare exactly. 9450
    becomes the server's free port; tail runs in UTC, the zone the times are made in here.
    """
    (block,) = blocks
    command, *shown = block.lines()
    log = InMemoryEventLog()
    last = 0
    for line in shown:
        number, clock, kind, *fields, trace = line.split()
        while last < int(number[1:]) - 1:
            last = log.append("tool.called", {"tool": "search"}).id
        hours, minutes, seconds = clock.split(":")
        timestamp = calendar.timegm((2026, 1, 15, int(hours), int(minutes), 0, 0, 0, 0)) + float(seconds)
        payload = {key: yaml.safe_load(value) for key, value in (field.split("=", 1) for field in fields)}
        trace_id = trace.removeprefix("trace=") + "0" * 24
        # A little past the millisecond shown, which tail rounds down to.
        last = log.append(kind, payload, timestamp=timestamp + 0.0002, trace_id=trace_id).id
    words = shlex.split(command.removeprefix("$ "))
    with otel_eventlog.start_activity_server(log, port=0) as server:
        tail = [*cli(), *(word.replace("127.0.0.1:9450", f"127.0.0.1:{server.port}") for word in words[1:])]
        with started(tail, cwd=tmp_path, env=environment(TZ="UTC")) as (follower, out, err):
            out.wait_for(lambda lines: len(lines) >= len(shown), "tail's lines")
            assert interrupt(follower) == 130, err.all()
    assert out.all() == shown, f"README.md:{block.line}"


def check_the_running_transcript(blocks: list[Block], tmp_path: Path) -> None:
    """``tail --running --count 1`` prints the transcript's tree, for spans shaped like its own.

    A tracer with span entries on runs the transcript's spans: the first trace's session, its turn and
    the turn's model call, open, and a second trace's session between turns. Times, ages and trace ids
    vary from run to run: they are the only parts not compared.
    """
    (block,) = blocks
    command, *shown = block.lines()
    log = InMemoryEventLog()
    provider = TracerProvider()
    provider.add_span_processor(EventLogSpanProcessor(log, span_lifecycle=True, live_interval=0))
    tracer = provider.get_tracer("readme")
    first = tracer.start_span("session")
    first.add_event("session.started", {"session": 1})
    with trace.use_span(first):
        turn = tracer.start_span("turn")
        with trace.use_span(turn):
            chat = tracer.start_span("chat demo-model")
    second = tracer.start_span("session")
    with trace.use_span(second), tracer.start_as_current_span("turn") as ended:
        ended.add_event("turn.completed", {"session": 2, "turn": 1})
    turn.add_event("turn.started", {"session": 1, "turn": 1})
    provider.force_flush()
    words = shlex.split(command.removeprefix("$ "))
    try:
        with otel_eventlog.start_activity_server(log, port=0) as server:
            port = f"127.0.0.1:{server.port}"
            result = run([*cli(), *(word.replace("127.0.0.1:9450", port) for word in words[1:])], tmp_path)
    finally:
        for span in (chat, turn, first, second):
            span.end()
        provider.shutdown()
    assert result.returncode == 0, result.stderr

    def shape(line: str) -> str:
        line = re.sub(r"\d\d:\d\d:\d\d", "HH:MM:SS", line)
        line = re.sub(r"trace [0-9a-f]{8}", "trace TRACE", line)
        return re.sub(r"\b\d+\.\ds\b", "N.Ns", line)

    assert [shape(line) for line in result.stdout.splitlines()] == [shape(line) for line in shown], (
        f"README.md:{block.line}\n{result.stdout}"
    )


def _keys(document: object, path: str = "") -> set[str]:
    """The dotted paths of a YAML document's values."""
    if not isinstance(document, dict):
        return {path}
    return {key for name, value in document.items() for key in _keys(value, f"{path}.{name}".lstrip("."))}


def check_the_configuration_reference(blocks: list[Block], tmp_path: Path) -> None:
    """The reference loads, shows every default, and lists every key the library knows, and no other."""
    (block,) = blocks
    shown, known = _keys(yaml.safe_load(block.text)), _keys(ObservabilityConfig().to_dict())
    assert shown == known, (
        f"README.md:{block.line}: missing {sorted(known - shown)}, unknown {sorted(shown - known)}"
    )
    assert known == set(ENV_VARIABLES.values())
    expected = ObservabilityConfig().to_dict()
    capture = expected["observability"]["event_log"]["capture"]
    capture["include"], capture["exclude"] = ["turn.*", "tool.*"], ["*.debug"]  # examples, not the defaults
    assert load_config(block.text, environ={}).to_dict() == expected, f"README.md:{block.line}"


def check_load_config(blocks: list[Block], tmp_path: Path) -> None:
    """load_config("observability.yaml") reads the file, and its event_log section builds that log."""
    run_python(
        blocks,
        """
        from otel_eventlog import InMemoryEventLog

        assert (config.event_log.ttl_seconds, config.event_log.max_entries) == (600, 1000)
        assert isinstance(log, InMemoryEventLog)
        assert (log.ttl_seconds, log.max_entries) == (600, 1000)
        """,
        tmp_path,
    )


def check_the_config_errors(blocks: list[Block], tmp_path: Path) -> None:
    """Each ConfigError shown is what load_config raises, word for word, for a mistake of that kind."""
    (block,) = blocks
    mistakes = [  # the file (None: no file), the environment: one per message, in the README's order
        ("observability:\n  event_log:\n    ttl_second: 60\n", {}),
        ("observability:\n  event_log:\n    max_entries: lots\n", {}),
        ("observability:\n  event_log: {capture: {include: [turn.*\n", {}),
        (None, {"OTEL_EVENTLOG_TTL_SECONDS": "soon"}),
    ]
    messages = []
    for text, environ in mistakes:
        if text is not None:
            (tmp_path / "observability.yaml").write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError) as raised:  # the working directory is tmp_path
            load_config(None if text is None else "observability.yaml", environ=environ)
        assert isinstance(raised.value, ValueError)
        messages.append(str(raised.value))
    assert messages == block.lines(), f"README.md:{block.line}"


def check_check_config(blocks: list[Block], tmp_path: Path) -> None:
    """check-config of the reference, saved as observability.yaml, begins with the transcript's lines."""
    (block,) = blocks
    reference = the_block(*CONFIGURATION_REFERENCE)
    (tmp_path / "observability.yaml").write_text(reference.text, encoding="utf-8")
    command, *shown = block.lines()
    assert shown[-1].strip() == "...", shown  # the rest of the output
    words = shlex.split(command.removeprefix("$ "))
    result = run([*cli(), *words[1:]], tmp_path)
    assert result.returncode == 0, result.stderr
    printed = result.stdout.splitlines()
    assert printed[: len(shown) - 1] == shown[:-1], (
        f"README.md:{block.line}: check-config prints\n{result.stdout}"
    )
    assert len(printed) > len(shown) - 1


def check_the_errors_tree(blocks: list[Block], tmp_path: Path) -> None:
    """The tree names each exception of otel_eventlog.errors, under EventLogError, with its builtin base."""
    (block,) = blocks
    root, *branches = block.lines()
    assert root == "EventLogError"
    shown = {}
    for line in branches:
        branch = re.match(r"[├└]── (\w+) +(?:\(also an? (\w+)\))?", line)
        assert branch, line
        shown[branch[1]] = branch[2]
    errors = otel_eventlog.errors
    assert set(shown) == set(errors.__all__) - {"EventLogError"}, f"README.md:{block.line}"
    for name, builtin in shown.items():
        bases = (errors.EventLogError, *([getattr(builtins, builtin)] if builtin else []))
        assert getattr(errors, name).__bases__ == bases, name
    assert otel_eventlog.EventLogError is errors.EventLogError


def check_the_benchmark_commands(blocks: list[Block], tmp_path: Path) -> None:
    """Each benchmark command names a script that takes --quick (test_examples.py makes the quick runs)."""
    for block in blocks:
        words = shlex.split(block.text, comments=True)
        assert words[0] == ".venv/bin/python", words  # the quick start's virtual environment
        assert "--quick" in block.text
        result = run([sys.executable, str(ROOT / words[1]), "--help"], ROOT)
        assert result.returncode == 0, result.stderr
        assert "--quick" in result.stdout, f"README.md:{block.line}: {words[1]} takes no --quick"


# -- Which check checks which block ----------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """A check and the blocks it claims, each named by its heading and a piece of its text, in README order.

    A check that claims several blocks runs them together, the later ones going on from the earlier ones
    (the same `log`, the same `cursor`), or compares one block with what another runs.
    """

    run: Callable[[list[Block], Path], None]
    claims: tuple[tuple[str, str], ...]

    @property
    def name(self) -> str:
        """The check's function's name."""
        return self.run.__name__

    def blocks(self) -> list[Block]:
        """The blocks the check claims, in the order of its claims."""
        return [the_block(heading, piece) for heading, piece in self.claims]


def claimed(heading: str, piece: str) -> list[Block]:
    """The blocks under `heading` that hold `piece`."""
    return [block for block in BLOCKS if block.heading == heading and piece in block.text]


def the_block(heading: str, piece: str) -> Block:
    """The one block under `heading` that holds `piece`; test_every_readme_block_is_checked says if not."""
    (block,) = claimed(heading, piece)
    return block


REDIS = "One feed for many processes: Redis"
CONFIGURATION_REFERENCE = ("Configuration", "allow_unauthenticated:")

CHECKS = [
    Check(an_illustration, (("otel_eventlog", "agent code ──spans"),)),
    Check(
        check_the_quick_start,
        (("Quick start", ".venv/bin/otel-eventlog demo"), ("Quick start", "# the Activity page:")),
    ),
    Check(
        check_the_event_log_as_the_readme_uses_it,
        (
            ("Using the event log", 'log = create_event_log("memory"'),
            ("Using the event log", "log.extend(["),  # goes on with `log`
            ("From Python", "async def activity_tab(log)"),  # goes on with `log` and `cursor`
            ("Over HTTP", "start_activity_server(log"),  # goes on with `log`
        ),
    ),
    Check(check_the_batch_writer_contract, (("A backend of your own", "class BatchWriter(Protocol)"),)),
    Check(check_the_redis_extra, ((REDIS, "pip install 'otel-eventlog[redis]'"),)),
    Check(check_the_redis_configuration, ((REDIS, "backend: redis"),)),
    Check(check_serve_without_redis, ((REDIS, "otel-eventlog: error: Redis at"),)),
    Check(check_the_deployment_recipes, ((REDIS, "gunicorn -w 3"),)),
    Check(check_the_curl_transcript, (("Over HTTP", "$ curl -s"),)),
    Check(check_configure, (("Plugging into OpenTelemetry", "# or a mapping, or None"),)),
    Check(check_unconfigure, (("Plugging into OpenTelemetry", "otel_eventlog.unconfigure()"),)),
    Check(check_wiring_it_yourself, (("Wiring it yourself", "EventLogSpanProcessor(log, include="),)),
    Check(check_the_gen_ai_turn, (("GenAI calls", "gen_ai.execute_tool"),)),
    Check(check_zero_code, (("Zero-code: `opentelemetry-instrument`", "opentelemetry-instrument python"),)),
    Check(check_the_tail_transcript, (("The command line", "--kind 'turn.*'"),)),
    Check(check_the_running_transcript, (("The command line", "--running --count 1"),)),
    Check(check_the_configuration_reference, (CONFIGURATION_REFERENCE,)),
    Check(check_load_config, (("Configuration", "config.event_log.create_event_log()"),)),
    Check(check_the_config_errors, (("Configuration", "unknown key (did you mean"),)),
    Check(check_check_config, (("Configuration", "$ otel-eventlog check-config"),)),
    Check(check_the_errors_tree, (("Errors", "├── ArgumentTypeError"),)),
    Check(
        check_the_benchmark_commands,
        (("Benchmarks", "bench_event_log.py"), ("Benchmarks", "bench_processor.py")),
    ),
]


# -- The tests -------------------------------------------------------------------------------------------


def test_blocks_are_found_with_their_language_line_heading_and_text() -> None:
    """The parser finds bare, tagged and indented blocks, each with its heading and its text dedented."""
    text = (
        "# Top\n\n```\ndiagram\n```\n\n## Use\n\n- a list item:\n\n"
        "  ```\n  indented\n    more\n  ```\n\n```sh\n# not a heading\n```\n"
    )
    assert readme_blocks(text) == [
        Block("", 4, "Top", "diagram\n"),
        Block("", 12, "Use", "indented\n  more\n"),
        Block("sh", 17, "Use", "# not a heading\n"),
    ]


def test_every_readme_block_is_checked() -> None:
    """Each README block has one check, each claim finds one block, and only the diagram goes unrun."""
    problems = []
    checks_of: dict[int, list[str]] = {}
    for check in CHECKS:
        for heading, piece in check.claims:
            found = claimed(heading, piece)
            if len(found) != 1:
                problems.append(
                    f"{check.name} claims the block under {heading!r} holding {piece!r}: "
                    f"{len(found)} blocks match ({where(found) or 'none'})"
                )
            for block in found:
                checks_of.setdefault(block.line, []).append(check.name)
    for block in BLOCKS:
        names = checks_of.get(block.line, [])
        if len(names) != 1:
            problems.append(
                f"README.md:{block.line}: the ```{block.language} block under {block.heading!r} "
                f"is claimed by {names or 'no check'}"
            )
    illustrations = [check.blocks() for check in CHECKS if check.run is an_illustration]
    assert illustrations == [[BLOCKS[0]]], "only the architecture diagram at the top may go unrun"
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.name)
def test_the_readme_block_does_what_it_says(
    check: Check, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The blocks a check claims run as written, or match a real run, as the check's docstring says."""
    monkeypatch.chdir(tmp_path)
    check.run(check.blocks(), tmp_path)
