"""Plug-in backend files, shipped to Dask workers and loaded there once per worker process.

The client sends each plug-in file's bytes with its absolute path. A worker that sees the same
file at the same path (the same machine, or a shared file system) loads that one, so the module
and its backends carry the names they have on the client; any other worker writes the bytes to its
own folder and loads the copy. A file that fails to load on a worker raises
:class:`WorkerPluginError` naming the worker, its host and the plug-in's own error.
"""

from __future__ import annotations

import hashlib
import socket
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from harness.backend.plugins import PluginError, load_plugin, plugin_file
from harness.backend.registry import backends
from harness.distributed.errors import WorkerPluginError
from harness.support.results_io import write_atomic

_LOADED: dict[str, str] = {}  # sha256 of a plug-in's bytes -> the path it was loaded from, in this process
_LOCK = threading.Lock()  # a worker may run several tasks at once: load each file once


@dataclass(frozen=True)
class ShippedPlugin:
    """One plug-in file as the client loaded it."""

    path: str  # absolute path on the client
    source: bytes
    sha256: str


def loaded_plugins() -> list[ShippedPlugin]:
    """Every plug-in file loaded in this process (``--plugin``), ready to ship."""
    paths = dict.fromkeys(p for p in (plugin_file(b.name) for b in backends()) if p)
    out = []
    for path in paths:
        source = Path(path).read_bytes()
        out.append(ShippedPlugin(path, source, hashlib.sha256(source).hexdigest()))
    return out


def ensure_loaded(plugins) -> None:
    """Load each shipped plug-in in this (worker) process unless already loaded.

    Raises
    ------
    WorkerPluginError
        A plug-in failed to load here; the message names this worker's host and the cause.
    """
    with _LOCK:
        for plugin in plugins:
            if plugin.sha256 in _LOADED:
                continue
            path = _local_copy(plugin)
            try:
                load_plugin(path)
            except PluginError as exc:
                raise WorkerPluginError(f"a worker on {socket.gethostname()} could not load the plug-in "
                                        f"{plugin.path}: {exc}") from None
            _LOADED[plugin.sha256] = str(path)


def check_workers(client, plugins) -> None:
    """Load the plug-ins on every worker now, so a worker that cannot is named before any work starts.

    Raises
    ------
    WorkerPluginError
        With each failing worker's address and message.
    """
    if not plugins:
        return
    answers = client.run(_try_loading, plugins)
    failed = {address: message for address, message in answers.items() if message}
    if failed:
        first = next(iter(failed.values()))
        raise WorkerPluginError(f"{len(failed)} of {len(answers)} worker(s) could not load a plug-in "
                                f"({', '.join(failed)}): {first}")


def _try_loading(plugins) -> str | None:
    """On a worker: None, or why a plug-in does not load there."""
    try:
        ensure_loaded(plugins)
    except WorkerPluginError as exc:
        return str(exc)
    return None


def _local_copy(plugin: ShippedPlugin) -> Path:
    """The client's own file when this process sees it unchanged, else a copy in a folder of our own."""
    original = Path(plugin.path)
    try:
        if original.is_file() and hashlib.sha256(original.read_bytes()).hexdigest() == plugin.sha256:
            return original
    except OSError:
        pass  # unreadable here: use the shipped bytes
    copy = Path(tempfile.gettempdir()) / "convbench-plugins" / plugin.sha256[:16] / original.name
    if not copy.is_file():
        write_atomic(copy, plugin.source)  # workers of one machine may write it at once
    return copy
