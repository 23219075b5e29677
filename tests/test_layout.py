"""The package's layers: each imports only from those below it, never another part's private modules."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import otel_eventlog
from otel_eventlog.errors import EventLogError

PACKAGE = Path(otel_eventlog.__file__).parent

# Each top-level part of the package and its layer: a module may import from its own part and from
# lower layers only. Parts on one layer (capture and activity) do not import each other.
LAYERS = {
    "_version": 0,
    "errors": 0,
    "_defaults": 0,
    "_checks": 1,
    "_kinds": 1,
    "_reporting": 1,
    "_sizing": 0,
    "_json": 0,
    "_forks": 0,
    "_quiet": 0,
    "redaction": 1,
    "_metrics": 1,
    "event": 1,
    "backends": 2,
    "capture": 3,
    "activity": 3,
    "config": 4,
    "pipeline": 5,
    "cli": 6,
    "__init__": 7,
    "__main__": 8,
}


SUBPACKAGES = ("backends", "capture", "activity", "cli")


def modules() -> list[tuple[str, Path]]:
    """Every module of the package, as its dotted name and its file."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found.append((".".join(parts[:-1] if parts[-1] == "__init__" else parts), path))
    return found


def imported(path: Path) -> set[str]:
    """The otel_eventlog modules a file imports, by dotted name (``from x import y`` counts y too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module != "otel_eventlog":  # `from otel_eventlog import _defaults` names a module
                names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] == "otel_eventlog"}


def part(module: str) -> str:
    """The top-level part of the package a dotted name belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


@pytest.mark.parametrize(("module", "path"), modules(), ids=[name for name, _ in modules()])
def test_every_module_imports_only_from_its_own_part_and_lower_layers(module: str, path: Path) -> None:
    """The import graph runs one way: down the layers, never sideways between capture and activity."""
    own = "__main__" if path.name == "__main__.py" else part(module)
    for name in imported(path):
        other = part(name)
        if other == own:
            continue
        assert LAYERS[other] < LAYERS[own], f"{module} imports {name}: layer {other} is not below {own}"


@pytest.mark.parametrize(("module", "path"), modules(), ids=[name for name, _ in modules()])
def test_no_module_reaches_into_another_part_private_modules(module: str, path: Path) -> None:
    """A private module of backends/, capture/, activity/ or cli/ is imported only from its own folder."""
    for name in imported(path):
        parts = name.split(".")
        if (
            len(parts) >= 3
            and parts[1] in SUBPACKAGES
            and parts[2].startswith("_")
            and parts[1] != part(module)
        ):
            pytest.fail(f"{module} imports {name}, private to otel_eventlog.{parts[1]}")


def test_the_store_knows_nothing_of_its_producers() -> None:
    """Nothing in backends/ imports OpenTelemetry: the store takes any producer's events."""
    for path in (PACKAGE / "backends").glob("*.py"):
        assert "opentelemetry" not in path.read_text(), path.name


def test_the_capture_path_has_no_side_door() -> None:
    """The capture side reaches a backend through the written contract: no hasattr, no type: ignore."""
    for path in (PACKAGE / "capture").glob("*.py"):
        text = path.read_text()
        assert "hasattr(" not in text, path.name
        assert "type: ignore" not in text, path.name


def test_every_exception_the_package_defines_is_an_event_log_error() -> None:
    """EventLogError is the base of every exception class the package defines."""
    defined = []
    for info in pkgutil.walk_packages(otel_eventlog.__path__, "otel_eventlog."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == info.name:
                defined.append(value)
    assert len(defined) >= 5
    assert [cls for cls in defined if not issubclass(cls, EventLogError)] == []


# The public names as they were before the package was laid out in layers: they stay importable.
EARLIER_PUBLIC_NAMES = [
    "ActivityConfig",
    "ActivityLimits",
    "ActivityServer",
    "CaptureConfig",
    "ConfigError",
    "DisabledEventLog",
    "Entry",
    "Event",
    "EventLog",
    "EventLogConfig",
    "EventLogHandler",
    "EventLogRecordProcessor",
    "EventLogSpanProcessor",
    "InMemoryEventLog",
    "ObservabilityConfig",
    "Page",
    "__version__",
    "configure",
    "create_event_log",
    "get_activity_server",
    "get_event_log",
    "load_config",
    "make_asgi_app",
    "make_wsgi_app",
    "start_activity_server",
]


def test_every_public_name_imports_from_the_package() -> None:
    """Each name in __all__ is there, and so is every name that was public before."""
    for name in {*otel_eventlog.__all__, *EARLIER_PUBLIC_NAMES}:
        assert hasattr(otel_eventlog, name), name
    assert set(EARLIER_PUBLIC_NAMES) <= set(otel_eventlog.__all__)
