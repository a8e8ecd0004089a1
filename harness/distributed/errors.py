"""What can go wrong on a cluster, as errors the command line prints as one line."""

from __future__ import annotations

from harness.backend.plugins import PluginError


class ClusterError(OSError):
    """The cluster failed us: the scheduler is unreachable or went away, or a shard was lost with
    every worker that tried it. An ``OSError``: ``convbench`` prints it as one ``error:`` line;
    the results that came back before it are kept by the caller."""


class WorkerPluginError(PluginError):
    """A worker could not load a plug-in file that the client loaded (a module missing there, ...)."""
