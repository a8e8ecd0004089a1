"""``--plugin FILE``: import a user's module that calls ``harness.register_backend``."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import traceback
from pathlib import Path

from harness.backend.registry import backends

#: backend name -> the plugin file that registered it (reproducers load that file first)
_SOURCES: dict[str, str] = {}


class PluginError(ValueError):
    """A plug-in file could not be loaded: missing, or it raised while running (a syntax or
    import error, a backend name already taken, ...); the message names the file and line."""


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

    Raises
    ------
    PluginError
        The file is missing, or running it raised (any ``Exception``: the user's file, not
        convbench, is at fault); the message gives the exception and the plug-in's line.
    """
    file = Path(path)
    if not file.is_file():
        raise PluginError(f"plugin file not found: {path}")
    name = "convbench_plugin_" + hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    before = {b.name: b for b in backends()}
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise PluginError(f"plugin {path} failed to load{_where(exc, file)}: {type(exc).__name__}: {exc}") from exc
    for declared in backends():
        if before.get(declared.name) is not declared:
            _SOURCES[declared.name] = str(file.resolve())


def plugin_file(name: str) -> str | None:
    """The plugin file that registered backend ``name`` (``NAME:lowered`` too), or None."""
    return _SOURCES.get(name.split(":")[0])


def _where(exc: Exception, file: Path) -> str:
    """`` (line N)`` of the plug-in's own line that raised, when there is one."""
    if isinstance(exc, SyntaxError) and exc.lineno:
        return f" (line {exc.lineno})"
    lines = [frame.lineno for frame in traceback.extract_tb(exc.__traceback__)
             if Path(frame.filename).resolve() == file.resolve()]
    return f" (line {lines[-1]})" if lines else ""
