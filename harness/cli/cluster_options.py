"""``--workers N`` / ``--scheduler ADDRESS``: where a command's work runs (default: this process)."""

from __future__ import annotations

import logging
from contextlib import contextmanager

from harness.cli.args import positive_int


def add_cluster_options(parser, *, workers: bool = True) -> None:
    """The options choosing a Dask cluster: a local one of N worker processes, or a running scheduler's."""
    group = parser.add_mutually_exclusive_group()
    if workers:
        group.add_argument("--workers", type=positive_int, default=None, metavar="N",
                           help="run on a local Dask cluster of N worker processes (127.0.0.1)")
    group.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run on the workers of a running Dask scheduler (tcp://HOST:8786); "
                            "see README, 'Running on a cluster'")


@contextmanager
def cluster_from_args(args):
    """A ``distributed.Client`` for the options given, or None when neither was (run here)."""
    workers, scheduler = getattr(args, "workers", None), getattr(args, "scheduler", None)
    if workers is None and scheduler is None:
        yield None
        return
    from harness.distributed.cluster import cluster_client

    # Dask logs a lost connection or worker with its traceback; convbench says what happened in one
    # 'error:' line (and keeps what finished), so the command line shows Dask's critical messages only
    logger = logging.getLogger("distributed")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with cluster_client(workers=workers, scheduler=scheduler) as client:
            yield client
    finally:
        logger.setLevel(level)
