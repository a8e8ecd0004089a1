"""A Dask client: on an embedded ``LocalCluster`` of worker processes, or on an existing scheduler."""

from __future__ import annotations

import logging
from contextlib import contextmanager

from harness.distributed.errors import ClusterError

#: Seconds to wait for a scheduler to answer before saying it cannot be reached.
CONNECT_TIMEOUT_S = 20.0


@contextmanager
def cluster_client(workers: int | None = None, scheduler: str | None = None, *,
                   connect_timeout_s: float | None = None):
    """A ``distributed.Client``, closed (with any cluster it started) on leaving the block.

    Parameters
    ----------
    workers : int, optional
        Start a ``LocalCluster`` of this many worker processes on 127.0.0.1 (one task at a time each,
        its HTTP endpoint on a free local port, no memory limit: the harness guards memory per call
        itself). The tasks set their own thread counts (:func:`harness.distributed.sharded_verify.check_shard`).
    scheduler : str, optional
        The address of a running scheduler (``tcp://host:8786``) instead; its workers are used.
    connect_timeout_s : float, optional
        How long to wait for that scheduler (default :data:`CONNECT_TIMEOUT_S`).

    Raises
    ------
    ClusterError
        The scheduler cannot be reached (with the address and what to start), or it has no worker.
    ValueError
        Neither or both of ``workers`` and ``scheduler``, or ``workers`` < 1.
    """
    if (workers is None) == (scheduler is None):
        raise ValueError("give either workers (a local cluster) or scheduler (an address), not both or neither")
    from distributed import Client, LocalCluster

    if connect_timeout_s is None:
        connect_timeout_s = CONNECT_TIMEOUT_S
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=connect_timeout_s, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"cannot reach the Dask scheduler at {scheduler} within {connect_timeout_s:g} s "
                               f"({type(exc).__name__}); start one with 'dask scheduler' and workers with "
                               f"'dask worker {scheduler}'") from None
        try:
            _wait_for_workers(client, scheduler, connect_timeout_s)
            yield client
        finally:
            client.close()
        return
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0", memory_limit=0, silence_logs=logging.ERROR)
    try:
        client = Client(cluster, set_as_default=False)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


def _wait_for_workers(client, address: str, timeout_s: float) -> None:
    try:
        client.wait_for_workers(1, timeout=timeout_s)
    except TimeoutError:
        raise ClusterError(f"the Dask scheduler at {address} has no worker (waited {timeout_s:g} s); "
                           f"start some with 'dask worker {address}'") from None


def worker_count(client) -> int:
    """Workers the scheduler knows now."""
    return len(client.scheduler_info(n_workers=-1)["workers"])


def cancel_unfinished(client, futures) -> None:
    """Cancel the tasks of ``futures`` not done yet, when the scheduler is still there to hear it."""
    unfinished = [f for f in futures if not f.done()]
    if unfinished and client.status == "running":
        try:
            client.cancel(unfinished)
        except (OSError, TimeoutError):
            pass  # the scheduler went away meanwhile: its tasks went with it
