"""Tests for loading the ``observability.event_log`` configuration."""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from pathlib import Path

import pytest

from otel_eventlog import (
    ActivityConfig,
    ActivityLimits,
    CaptureConfig,
    ConfigError,
    DisabledEventLog,
    EventLogConfig,
    InMemoryEventLog,
    ObservabilityConfig,
    load_config,
)
from otel_eventlog.config import ENV_VARIABLES, RedactConfig, RedisConfig

NO_ENV: dict[str, str] = {}

FULL = """\
service:
  name: my-agent          # the application's own settings are left alone
observability:
  tracing: {sampler: always_on}
  event_log:
    backend: Disabled
    ttl_seconds: 90.5
    max_entries: 250
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "observability.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_source() -> None:
    """No source and no environment gives the documented defaults."""
    config = load_config(environ=NO_ENV)
    assert config == ObservabilityConfig()
    assert config.event_log == EventLogConfig(backend="memory", ttl_seconds=3600, max_entries=10_000)


def test_reads_the_event_log_section_from_a_file(tmp_path: Path) -> None:
    """A YAML file's observability.event_log section is read, names normalised, other keys ignored."""
    config = load_config(write(tmp_path, FULL), environ=NO_ENV)
    assert config.event_log == EventLogConfig(backend="disabled", ttl_seconds=90.5, max_entries=250)


def test_a_path_may_be_given_as_a_string(tmp_path: Path) -> None:
    """A file name passed as a str is read as a file."""
    assert load_config(str(write(tmp_path, FULL)), environ=NO_ENV).event_log.max_entries == 250


def test_reads_yaml_text_and_mappings() -> None:
    """YAML text and a mapping shaped like the document give the same config."""
    from_text = load_config("observability:\n  event_log: {max_entries: 5}\n", environ=NO_ENV)
    one_line = load_config("{observability: {event_log: {max_entries: 5}}}", environ=NO_ENV)
    from_mapping = load_config({"observability": {"event_log": {"max_entries": 5}}}, environ=NO_ENV)
    assert from_text == one_line == from_mapping
    assert from_text.event_log.max_entries == 5


@pytest.mark.parametrize(
    "document",
    ["", "other: 1\n", "observability:\n", "observability: {}\n", "observability:\n  event_log:\n"],
)
def test_missing_sections_and_keys_mean_defaults(document: str, tmp_path: Path) -> None:
    """An empty file, a missing or empty section, all give the defaults."""
    assert load_config(write(tmp_path, document), environ=NO_ENV) == ObservabilityConfig()


def test_a_config_object_is_returned_as_it_is() -> None:
    """An ObservabilityConfig built in code wins over the environment."""
    config = ObservabilityConfig(event_log=EventLogConfig(max_entries=3))
    assert load_config(config, environ={"OTEL_EVENTLOG_MAX_ENTRIES": "9"}) is config


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    """OTEL_EVENTLOG_* variables override the file's values; empty ones count as unset."""
    env = {
        "OTEL_EVENTLOG_BACKEND": " memory ",
        "OTEL_EVENTLOG_TTL_SECONDS": "12.5",
        "OTEL_EVENTLOG_MAX_ENTRIES": "",
    }
    config = load_config(write(tmp_path, FULL), environ=env)
    assert config.event_log == EventLogConfig(backend="memory", ttl_seconds=12.5, max_entries=250)


def test_config_file_named_by_the_environment(tmp_path: Path) -> None:
    """Without a source, the file named by OTEL_EVENTLOG_CONFIG is read."""
    env = {"OTEL_EVENTLOG_CONFIG": str(write(tmp_path, FULL)), "OTEL_EVENTLOG_MAX_ENTRIES": "7"}
    assert load_config(environ=env).event_log == EventLogConfig(
        backend="disabled", ttl_seconds=90.5, max_entries=7
    )


def test_the_process_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an explicit environ, os.environ is used."""
    monkeypatch.setenv("OTEL_EVENTLOG_MAX_ENTRIES", "42")
    monkeypatch.delenv("OTEL_EVENTLOG_CONFIG", raising=False)
    assert load_config().event_log.max_entries == 42


def test_config_builds_the_log_through_create_event_log(caplog: pytest.LogCaptureFixture) -> None:
    """The section builds the backend it names, with its bounds."""
    log = EventLogConfig(ttl_seconds=5, max_entries=6).create_event_log()
    assert isinstance(log, InMemoryEventLog)
    assert (log.ttl_seconds, log.max_entries) == (5, 6)
    assert isinstance(EventLogConfig(backend="off").create_event_log(), DisabledEventLog)


@pytest.mark.parametrize("word", ["off", "OFF", "no", "false"])
def test_unquoted_yaml_off_means_disabled(word: str) -> None:
    """YAML reads an unquoted off as false; as a backend it means the disabled log, as written."""
    config = load_config(f"observability:\n  event_log:\n    backend: {word}\n", environ=NO_ENV)
    assert config.event_log.backend == "off"
    assert isinstance(config.event_log.create_event_log(), DisabledEventLog)


def test_a_true_backend_is_rejected() -> None:
    """An unquoted on or true is no backend name and fails, naming the key."""
    with pytest.raises(ConfigError, match="backend: expected a backend name, got True"):
        load_config("observability:\n  event_log:\n    backend: on\n", environ=NO_ENV)


def test_infinite_ttl_is_allowed() -> None:
    """A YAML .inf TTL means events stay until max_entries pushes them out."""
    config = load_config("observability:\n  event_log: {ttl_seconds: .inf}\n", environ=NO_ENV)
    assert config.event_log.ttl_seconds == math.inf


def test_config_objects_are_frozen_and_keyword_only() -> None:
    """Config sections cannot be changed after construction, nor built positionally."""
    config = EventLogConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.backend = "off"  # type: ignore[misc]
    with pytest.raises(TypeError):
        EventLogConfig("memory")  # type: ignore[misc]


DEFAULT_CAPTURE = {
    "include": None,
    "exclude": None,
    "span_lifecycle": False,
    "gen_ai_operations": True,
    "span_attributes": ["gen_ai.*", "error.type"],
    "live_interval_seconds": 0.1,
    "logging": True,
    "logging_level": "INFO",
}


DEFAULT_ACTIVITY = {
    "enabled": False,
    "addr": "127.0.0.1",
    "port": 9450,
    "token": None,
    "default_limit": 100,
    "max_limit": 1000,
    "max_wait_seconds": 30.0,
    "heartbeat_seconds": 15.0,
    "max_streams": 32,
    "max_connections": 64,
    "io_timeout_seconds": 10.0,
    "allow_unauthenticated": False,
}


def test_to_dict_is_shaped_like_the_document() -> None:
    """The effective config serialises under observability.event_log."""
    assert ObservabilityConfig().to_dict() == {
        "observability": {
            "event_log": {
                "backend": "memory",
                "ttl_seconds": 3600,
                "max_entries": 10_000,
                "max_bytes": 64 * 1024 * 1024,
                "max_value_bytes": 16 * 1024,
                "capture": DEFAULT_CAPTURE,
                "redact": {"enabled": True, "keys": [], "default_keys": True, "patterns": []},
                "redis": {
                    "url": "redis://127.0.0.1:6379/0",
                    "stream": "otel-eventlog",
                    "queue_events": 10_000,
                    "batch_events": 500,
                    "timeout_seconds": 5.0,
                },
            },
            "activity": DEFAULT_ACTIVITY,
        }
    }


# the redis section


def test_the_redis_section_is_read_from_the_document_and_the_environment() -> None:
    """url, stream and the batching options come from the file; the environment wins over it."""
    config = load_config(
        {
            "observability": {
                "event_log": {
                    "backend": "redis",
                    "redis": {"url": "rediss://cache:6380/2", "stream": " agents ", "batch_events": 50},
                }
            }
        },
        environ={"OTEL_EVENTLOG_REDIS_STREAM": "fleet", "OTEL_EVENTLOG_REDIS_TIMEOUT_SECONDS": "2.5"},
    )
    redis = config.event_log.redis
    assert (redis.url, redis.stream, redis.batch_events, redis.timeout_seconds) == (
        "rediss://cache:6380/2",
        "fleet",
        50,
        2.5,
    )
    assert config.event_log.backend == "redis"


def test_a_password_in_the_redis_url_is_never_shown() -> None:
    """repr, to_dict (what check-config prints) and errors hide the URL's password."""
    config = load_config({}, environ={"OTEL_EVENTLOG_REDIS_URL": "redis://app:hunter2@cache:6379/0"})
    assert "hunter2" not in repr(config)
    assert config.to_dict()["observability"]["event_log"]["redis"]["url"] == "redis://app:***@cache:6379/0"
    with pytest.raises(ConfigError) as raised:
        load_config({}, environ={"OTEL_EVENTLOG_REDIS_URL": "http://app:hunter2@cache:6379/0"})
    assert "hunter2" not in str(raised.value)
    assert str(raised.value).startswith("OTEL_EVENTLOG_REDIS_URL: expected a Redis URL")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "redis://cache:6379/x",
            "expected a database number after the port, got 'x', in the Redis URL {url!r}",
        ),
        ("redis://cache:6379/0?protocol=9", "expected protocol=2 or protocol=3, in the Redis URL {url!r}"),
        (
            "redis://:hunter2@cache:6379/0?socket_timeout=soon",
            "Invalid value for 'socket_timeout', in the Redis URL 'redis://:***@cache:6379/0?socket_timeout=soon'",
        ),
        (
            "unix:///run/redis.sock?socket_timeout=x",
            "Invalid value for 'socket_timeout', in the Redis URL {url!r}",
        ),
    ],
)
def test_a_redis_url_redis_py_would_refuse_is_refused_at_load_naming_its_variable(
    url: str, message: str
) -> None:
    """Its database and options are checked as redis-py reads them, the password still hidden."""
    with pytest.raises(ConfigError) as raised:
        load_config({}, environ={"OTEL_EVENTLOG_REDIS_URL": url})
    assert str(raised.value) == "OTEL_EVENTLOG_REDIS_URL: " + message.format(url=url)
    for fine in (
        "redis://cache:6379/0?socket_timeout=2&protocol=3",
        "unix:///run/redis.sock?db=1",
        "redis://cache",
    ):
        assert load_config({}, environ={"OTEL_EVENTLOG_REDIS_URL": fine}).event_log.redis.url == fine


@pytest.mark.parametrize(
    ("redis", "message"),
    [
        ({"url": 6379}, "observability.event_log.redis.url: expected a Redis URL, got 6379 (int)"),
        ({"stream": ""}, "observability.event_log.redis.stream: expected a stream name"),
        ({"queue_events": 0}, "observability.event_log.redis.queue_events: expected a positive integer"),
        ({"timeout_seconds": "soon"}, "observability.event_log.redis.timeout_seconds: expected"),
        ({"urll": "redis://x"}, "observability.event_log.redis.urll: unknown key (did you mean 'url'?)"),
    ],
)
def test_a_wrong_redis_value_is_named_by_its_key_path(redis: dict[str, object], message: str) -> None:
    """Each key of the redis section is checked at start-up, its path in the message."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config({"observability": {"event_log": {"redis": redis}}})


# the capture section


def test_capture_section_is_read_and_checked() -> None:
    """The capture keys are read from the document, names and patterns trimmed, levels by name."""
    config = load_config(
        {
            "observability": {
                "event_log": {
                    "capture": {
                        "include": ["turn.*", " tool.called "],
                        "exclude": "*.debug",
                        "span_lifecycle": True,
                        "live_interval_seconds": 0,
                        "logging": False,
                        "logging_level": "warning",
                    }
                }
            }
        },
        environ={},
    )
    assert config.event_log.capture == CaptureConfig(
        include=("turn.*", "tool.called"),
        exclude=("*.debug",),
        span_lifecycle=True,
        live_interval_seconds=0.0,
        logging=False,
        logging_level=logging.WARNING,
    )


def test_capture_environment_overrides() -> None:
    """OTEL_EVENTLOG_* variables override the capture keys, lists as comma-separated names."""
    config = load_config(
        "observability:\n  event_log:\n    capture:\n      span_lifecycle: false\n",
        environ={
            "OTEL_EVENTLOG_CAPTURE_INCLUDE": "turn.*, tool.*",
            "OTEL_EVENTLOG_CAPTURE_EXCLUDE": "heartbeat",
            "OTEL_EVENTLOG_SPAN_LIFECYCLE": "true",
            "OTEL_EVENTLOG_LIVE_INTERVAL_SECONDS": "0.5",
            "OTEL_EVENTLOG_LOGGING": "no",
            "OTEL_EVENTLOG_LOGGING_LEVEL": "DEBUG",
        },
    )
    assert config.event_log.capture == CaptureConfig(
        include=("turn.*", "tool.*"),
        exclude=("heartbeat",),
        span_lifecycle=True,
        live_interval_seconds=0.5,
        logging=False,
        logging_level=logging.DEBUG,
    )


@pytest.mark.parametrize(
    ("capture", "message"),
    [
        (
            "include: 5",
            "observability.event_log.capture.include: expected an event name or a list of them, got 5",
        ),
        ("include: ['a', '']", "observability.event_log.capture.include: expected event names or patterns"),
        ("span_lifecycle: maybe", "observability.event_log.capture.span_lifecycle: expected true or false"),
        (
            "live_interval_seconds: -1",
            "observability.event_log.capture.live_interval_seconds: expected a finite number of seconds >= 0",
        ),
        ("logging_level: LOUD", "observability.event_log.capture.logging_level: expected a logging level"),
        ("live_interval: 1", "observability.event_log.capture.live_interval: unknown key (did you mean"),
    ],
)
def test_bad_capture_values_name_the_key_path(capture: str, message: str) -> None:
    """A wrong capture key or value fails with its full key path."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(f"observability:\n  event_log:\n    capture:\n      {capture}\n", environ={})


def test_bad_capture_environment_value_names_the_variable() -> None:
    """A wrong capture variable fails naming the variable."""
    with pytest.raises(
        ConfigError, match="OTEL_EVENTLOG_SPAN_LIFECYCLE: expected true or false, got 'sometimes'"
    ):
        load_config(None, environ={"OTEL_EVENTLOG_SPAN_LIFECYCLE": "sometimes"})


# the activity section


def test_activity_section_is_read_and_overridden_by_the_environment() -> None:
    """The activity keys come from the document, the address, port and token also from variables."""
    config = load_config(
        "observability:\n  activity:\n    enabled: true\n    port: 0\n    max_limit: 50\n",
        environ={"OTEL_EVENTLOG_ACTIVITY_ADDR": "0.0.0.0", "OTEL_EVENTLOG_ACTIVITY_TOKEN": "s3cret"},
    )
    activity = config.activity
    assert (activity.enabled, activity.addr, activity.port, activity.token) == (True, "0.0.0.0", 0, "s3cret")
    assert activity.limits().max_limit == 50
    assert "s3cret" not in repr(activity)
    assert config.to_dict()["observability"]["activity"]["token"] == "<set>"  # never printed


def test_every_key_has_an_environment_twin_named_in_the_docs() -> None:
    """Each key has an OTEL_EVENTLOG_* variable, named in load_config's docstring and in the README."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    keys = {path.removeprefix("observability.") for path in ENV_VARIABLES.values()}
    sections = {
        "event_log": EventLogConfig(),
        "event_log.capture": CaptureConfig(),
        "event_log.redact": RedactConfig(),
        "event_log.redis": RedisConfig(),
        "activity": ActivityConfig(),
    }
    for section, config in sections.items():
        for field in dataclasses.fields(config):
            if field.name not in ("capture", "redact", "redis"):
                assert f"{section}.{field.name}" in keys, f"{section}.{field.name} has no variable"
    for variable in ENV_VARIABLES:
        assert variable in (load_config.__doc__ or ""), variable
        assert variable in readme, variable


def test_the_activity_limits_come_from_the_environment_too() -> None:
    """The limits of the activity section are read from their variables, checked like the file's."""
    config = load_config(
        None,
        environ={
            "OTEL_EVENTLOG_ACTIVITY_DEFAULT_LIMIT": "20",
            "OTEL_EVENTLOG_ACTIVITY_MAX_LIMIT": "200",
            "OTEL_EVENTLOG_ACTIVITY_MAX_WAIT_SECONDS": "5",
            "OTEL_EVENTLOG_ACTIVITY_HEARTBEAT_SECONDS": "2.5",
        },
    )
    assert config.activity.limits() == ActivityLimits(
        default_limit=20, max_limit=200, max_wait=5, heartbeat=2.5
    )
    with pytest.raises(ConfigError, match="OTEL_EVENTLOG_ACTIVITY_MAX_LIMIT: expected a positive integer"):
        load_config(None, environ={"OTEL_EVENTLOG_ACTIVITY_MAX_LIMIT": "many"})


@pytest.mark.parametrize(
    ("activity", "message"),
    [
        ("port: 70000", "observability.activity.port: expected a TCP port from 0 to 65535, got 70000"),
        ("addr: ''", "observability.activity.addr: expected a host name or IP address"),
        ("enabled: yes please", "observability.activity.enabled: expected true or false"),
        ("token: ''", "observability.activity.token: expected a non-empty string or null"),
        (
            "max_wait_seconds: 0",
            "observability.activity.max_wait_seconds: expected a positive, finite number",
        ),
        ("prot: 1", "observability.activity.prot: unknown key (did you mean 'port'?)"),
        (
            "token: pässwörd",
            "observability.activity.token: expected visible ASCII characters only "
            "(an HTTP header carries the token)",
        ),
    ],
)
def test_bad_activity_values_name_the_key_path(activity: str, message: str) -> None:
    """A wrong activity key or value fails with its full key path."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(f"observability:\n  activity:\n    {activity}\n", environ={})


def test_a_token_no_header_can_carry_is_refused_without_being_shown() -> None:
    """A token with spaces or beyond ASCII is refused naming the variable, and never echoed."""
    with pytest.raises(ConfigError) as refused:
        load_config(None, environ={"OTEL_EVENTLOG_ACTIVITY_TOKEN": "s3cr3t with spaces"})
    assert "OTEL_EVENTLOG_ACTIVITY_TOKEN" in str(refused.value)
    assert "s3cr3t" not in str(refused.value)


def test_bad_activity_port_variable_names_it() -> None:
    """A port variable that is not a port fails naming the variable."""
    with pytest.raises(ConfigError, match="OTEL_EVENTLOG_ACTIVITY_PORT: expected a TCP port"):
        load_config(None, environ={"OTEL_EVENTLOG_ACTIVITY_PORT": "http"})


# errors


@pytest.mark.parametrize(
    ("event_log", "message"),
    [
        (
            "ttl_seconds: abc",
            "observability.event_log.ttl_seconds: expected a positive number of seconds, got 'abc' (str)",
        ),
        (
            "ttl_seconds: 0",
            "observability.event_log.ttl_seconds: expected a positive number of seconds, got 0",
        ),
        (
            "ttl_seconds: true",
            "observability.event_log.ttl_seconds: expected a positive number of seconds, got True (bool)",
        ),
        (
            "ttl_seconds: .nan",
            "observability.event_log.ttl_seconds: expected a positive number of seconds, got nan",
        ),
        (
            "ttl_seconds:",
            "observability.event_log.ttl_seconds: expected a positive number of seconds, got null",
        ),
        (
            "max_entries: 10.5",
            "observability.event_log.max_entries: expected a positive integer, got 10.5 (float)",
        ),
        ("max_entries: -1", "observability.event_log.max_entries: expected a positive integer, got -1 (int)"),
        (
            "max_entries: '100'",
            "observability.event_log.max_entries: expected a positive integer, got '100' (str)",
        ),
        ("backend: 3", "observability.event_log.backend: expected a backend name, got 3 (int)"),
        (
            "backend: memroy",
            "observability.event_log.backend: unknown backend 'memroy' "
            "(did you mean 'memory'?); known: disabled, memory, none, off, redis",
        ),
        (
            "ttl_second: 5",
            "observability.event_log.ttl_second: unknown key (did you mean 'ttl_seconds'?); "
            "known keys: backend, ttl_seconds, max_entries, max_bytes, max_value_bytes, capture, redact, "
            "redis",
        ),
        (
            "colour: blue",
            "observability.event_log.colour: unknown key; "
            "known keys: backend, ttl_seconds, max_entries, max_bytes, max_value_bytes, capture, redact, "
            "redis",
        ),
    ],
)
def test_bad_values_name_the_key_path_and_the_value(event_log: str, message: str, tmp_path: Path) -> None:
    """A wrong type, range or key fails with the file, the full key path and the bad value."""
    path = write(tmp_path, f"observability:\n  event_log:\n    {event_log}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=NO_ENV)
    assert str(caught.value) == f"{path}: {message}"
    assert isinstance(caught.value, ValueError)
    assert caught.value.path is not None
    assert caught.value.path.startswith("observability.event_log.")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("- a\n- b\n", "expected a mapping at the top level, got list"),
        ("observability: 3\n", "observability: expected a mapping, got 3 (int)"),
        ("observability:\n  event_log: [1]\n", "observability.event_log: expected a mapping, got [1] (list)"),
        ("observabilty:\n  event_log: {}\n", "observabilty: unknown section (did you mean 'observability'?)"),
        (
            "observability:\n  eventlog: {}\n",
            "observability.eventlog: unknown section (did you mean 'event_log'?)",
        ),
    ],
)
def test_bad_document_shapes_name_the_section(document: str, message: str, tmp_path: Path) -> None:
    """A section of the wrong shape, or a misspelt section, is reported by its path."""
    path = write(tmp_path, document)
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        load_config(path.read_text(), environ=NO_ENV)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=NO_ENV)
    assert str(caught.value) == f"{path}: {message}"


def test_malformed_yaml_names_the_file_and_position(tmp_path: Path) -> None:
    """Unparseable YAML fails with the file name, line and column."""
    path = write(tmp_path, "observability:\n  event_log: [unclosed\n")
    with pytest.raises(ConfigError, match=rf"^{path}: malformed YAML at line 3, column 1: "):
        load_config(path, environ=NO_ENV)


def test_malformed_yaml_text_is_reported_as_such() -> None:
    """Malformed YAML text is reported as malformed, not as a missing file."""
    with pytest.raises(ConfigError, match=r"^malformed YAML at line 2, column 1: "):
        load_config("observability: {event_log: [\n", environ=NO_ENV)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    """A path to nowhere fails with its name, as a Path or as a str."""
    missing = tmp_path / "nope.yaml"
    for source in (missing, str(missing)):
        with pytest.raises(ConfigError, match=rf"^{missing}: config file not found$"):
            load_config(source, environ=NO_ENV)


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    """A file that is not UTF-8 text fails with its name."""
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match=rf"^{path}: cannot read config file"):
        load_config(path, environ=NO_ENV)


def test_an_unsupported_source_type_is_rejected() -> None:
    """A source that is neither path, text, mapping nor config raises ConfigError."""
    with pytest.raises(
        ConfigError, match="expected a file path, YAML text, a mapping or an ObservabilityConfig"
    ):
        load_config(42, environ=NO_ENV)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "OTEL_EVENTLOG_TTL_SECONDS",
            "soon",
            "OTEL_EVENTLOG_TTL_SECONDS: expected a positive number of seconds, got 'soon' (str)",
        ),
        (
            "OTEL_EVENTLOG_TTL_SECONDS",
            "-5",
            "OTEL_EVENTLOG_TTL_SECONDS: expected a positive number of seconds, got -5.0",
        ),
        (
            "OTEL_EVENTLOG_MAX_ENTRIES",
            "1.5",
            "OTEL_EVENTLOG_MAX_ENTRIES: expected a positive integer, got '1.5' (str)",
        ),
        ("OTEL_EVENTLOG_BACKEND", "redis-ish", "OTEL_EVENTLOG_BACKEND: unknown backend 'redis-ish'"),
    ],
)
def test_bad_environment_values_name_the_variable(variable: str, value: str, message: str) -> None:
    """A bad override names the environment variable and its value."""
    with pytest.raises(ConfigError) as caught:
        load_config(environ={variable: value})
    assert str(caught.value).startswith(message)
    assert caught.value.path == variable


def test_config_objects_check_themselves() -> None:
    """Building a config section in code checks it the same way the loader does."""
    with pytest.raises(
        ConfigError, match=r"^observability.event_log.max_entries: expected a positive integer"
    ):
        EventLogConfig(max_entries=0)
    with pytest.raises(ConfigError, match=r"^observability.event_log: expected an EventLogConfig, got"):
        ObservabilityConfig(event_log={"max_entries": 5})  # type: ignore[arg-type]


def test_valid_config_logs_no_warning(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    """Loading a valid config and building its log warns about nothing."""
    with caplog.at_level(logging.DEBUG, logger="otel_eventlog"):
        load_config(write(tmp_path, FULL), environ=NO_ENV).event_log.create_event_log()
    assert caplog.records == []


def test_span_attributes_and_gen_ai_operations_are_read_and_checked() -> None:
    """The GenAI keys are read from the document and the environment; a wrong value names the key."""
    document = {"observability": {"event_log": {"capture": {"span_attributes": ["llm.*", " db.system "]}}}}
    capture = load_config(document).event_log.capture
    assert (capture.span_attributes, capture.gen_ai_operations) == (("llm.*", "db.system"), True)
    environ = {
        "OTEL_EVENTLOG_SPAN_ATTRIBUTES": "gen_ai.*,http.route",
        "OTEL_EVENTLOG_GEN_AI_OPERATIONS": "no",
    }
    capture = load_config({}, environ=environ).event_log.capture
    assert (capture.span_attributes, capture.gen_ai_operations) == (("gen_ai.*", "http.route"), False)
    with pytest.raises(ConfigError, match=r"capture\.span_attributes: expected an attribute name or a list"):
        load_config({"observability": {"event_log": {"capture": {"span_attributes": 5}}}})


def test_unknown_variables_names_only_what_the_library_does_not_read() -> None:
    """Known variables, the config file's and the test switches pass; others are named, close or not."""
    from otel_eventlog.config import unknown_variables

    environ = {
        "OTEL_EVENTLOG_TTL_SECONDS": "5",
        "OTEL_EVENTLOG_CONFIG": "obs.yaml",
        "OTEL_EVENTLOG_REQUIRE_REDIS": "1",
        "OTEL_EVENTLOG_REDIS_ULR": "redis://cache:6379/0",
        "OTEL_EVENTLOG_XYZZY": "1",
        "OTEL_SERVICE_NAME": "agent",
    }
    assert unknown_variables(environ) == [
        "OTEL_EVENTLOG_REDIS_ULR is not a variable otel_eventlog reads (did you mean "
        "'OTEL_EVENTLOG_REDIS_URL'?); it is ignored",
        "OTEL_EVENTLOG_XYZZY is not a variable otel_eventlog reads; it is ignored",
    ]
