"""``--plugin FILE``: import a user's module that calls ``harness.register_backend``."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path


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
    """Execute ``path`` as a module (its register_backend calls take effect)."""
    file = Path(path)
    if not file.is_file():
        raise SystemExit(f"convbench: plugin file not found: {path}")
    name = "convbench_plugin_" + hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
