"""``--plugin FILE``: import a user's module that calls ``harness.register_backend``."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

#: backend name -> the plugin file that registered it (reproducers load that file first)
_SOURCES: dict[str, str] = {}


def add_plugin_option(parser) -> None:
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="FILE",
        help="a Python file that registers backends with harness.register_backend (repeatable)",
    )


def load_plugins(paths) -> None:
    for path in paths:
        load_plugin(path)


def load_plugin(path) -> None:
    """Execute ``path`` as a module (its register_backend calls take effect).

    The backends it registers (or replaces) are remembered with the file's absolute path, so a
    reproducer printed for them can load the plugin first (:func:`plugin_file`).
    """
    from .registry import backends

    file = Path(path)
    if not file.is_file():
        raise SystemExit(f"convbench: plugin file not found: {path}")
    name = "convbench_plugin_" + hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    before = {b.name: b for b in backends()}
    spec.loader.exec_module(module)
    for declared in backends():
        if before.get(declared.name) is not declared:
            _SOURCES[declared.name] = str(file.resolve())


def plugin_file(name: str) -> str | None:
    """The plugin file that registered backend ``name`` (``NAME:lowered`` too), or None."""
    return _SOURCES.get(name.split(":")[0])
