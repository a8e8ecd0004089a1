"""The verifier's cases in shards on a Dask cluster: the same cases and verdicts as a serial run.

The client plans the run exactly as :func:`harness.verify.verifier.verify` does
(:func:`~harness.verify.verifier.planned_cases`: table, random cases, scale tier; random case
``i`` is a function of the seed and ``i`` alone) and sends the planned cases, a few dozen per
task, to the workers, which build each case's arrays from its own seed and judge it with the
verifier's own checks. The scale tier (most of a slow backend's time) is dealt over one task
per worker, each in order of size: each task's time planner skips a case from the rates measured
on the smaller tier cases before it in that task, as a serial run does on all of them.

Results stream back as tasks finish (``as_completed``); only the client writes them (through
``on_result``), so a run interrupted, or a worker lost, keeps every case already returned. A
worker that dies takes its running task with it; the scheduler gives that task to another worker
(up to Dask's ``distributed.scheduler.allowed-failures`` times, then it is reported lost).
"""

from __future__ import annotations

import math
import socket
import sys
import time
from collections import Counter

from harness.backend.registry import get_backend
from harness.distributed.cluster import cancel_unfinished
from harness.distributed.errors import ClusterError
from harness.distributed.shipping import check_workers, ensure_loaded, loaded_plugins
from harness.support.machine_state import usable_cores
from harness.support.timing import pinned_threads
from harness.verify import scale as scale_tier
from harness.verify.verifier import CASE_TIME_LIMIT_S, check_planned, finish_report, more_random, not_reached, \
    planned_cases, result_row, run_settings, wanted_dtypes

#: Most cases per task: what an interrupted or lost task can take with it, and the grain of load balancing.
SHARD_CASES = 25
#: Tasks per worker the planned cases are cut into (at least), so that fast workers take more.
TASKS_PER_WORKER = 4


def shards(todo, workers: int, size: int | None = None) -> list[list[tuple]]:
    """Cut planned ``(source, case)`` pairs into tasks of ``(position, source, case)`` items.

    The scale tier is dealt over ``workers`` tasks (:func:`tier_shards`), each in the plan's order
    of size; the other cases go in contiguous runs of ``size`` (default: enough for
    :data:`TASKS_PER_WORKER` tasks per worker, at most :data:`SHARD_CASES` cases).
    """
    items = [(position, source, case) for position, (source, case) in enumerate(todo)]
    tier = [item for item in items if item[1] == "scale"]
    rest = [item for item in items if item[1] != "scale"]
    if size is None:
        size = max(1, min(SHARD_CASES, math.ceil(len(rest) / (TASKS_PER_WORKER * max(1, workers)))))
    return tier_shards(tier, workers) + [rest[k:k + size] for k in range(0, len(rest), size)]


def tier_shards(tier: list, workers: int) -> list[list]:
    """The tier's items (smallest work first) dealt over ``workers`` tasks back and forth
    (0, 1, .., w-1, w-1, .., 0, ..), so that the tasks get about the same work and each still
    runs its cases smallest first, learning its rate before the large ones."""
    parts = [[] for _ in range(max(1, min(workers, len(tier))))]
    for k, item in enumerate(tier):
        lap, place = divmod(k, len(parts))
        parts[place if lap % 2 == 0 else len(parts) - 1 - place].append(item)
    return [part for part in parts if part]


def cores_per_worker(client) -> dict[str, int]:
    """``{worker address: threads}``: each machine's usable CPUs (its affinity mask: a container or
    ``taskset`` may allow fewer than the machine has) shared among the worker processes on it."""
    cores = client.run(usable_cores)
    hosts = Counter(_host(address) for address in cores)
    return {address: max(1, (count or 1) // hosts[_host(address)]) for address, count in cores.items()}


def _host(address: str) -> str:
    return address.rsplit(":", 1)[0]


def check_shard(backend: str, op: str, items, *, seed: int, time_limit_s, deadline: float | None,
                budget_s: float | None, plugins=(), threads: int | dict | None = None) -> dict:
    """On a worker: judge each ``(position, source, case)`` of ``items`` in order, with ``threads``
    threads in BLAS, torch and numba (None: as the libraries start, every core; a dict: the entry
    of the worker running the task, by address, see :func:`cores_per_worker`).

    Returns ``{"host": ..., "results": [(position, source, CaseResult or None), ...]}``; a planned case
    reached after ``deadline`` (``time.time()``) is *skipped* as in a serial run, an extra one past it
    gives None (no row).
    """
    ensure_loaded(plugins)
    if isinstance(threads, dict):
        from distributed import get_worker
        threads = threads.get(get_worker().address)
    declared = get_backend(backend)
    planner = scale_tier.TimePlanner(declared.name)
    out = []
    with pinned_threads(threads):
        for position, source, case in items:
            if deadline is not None and time.time() > deadline:
                out.append((position, source, None if source == "extra" else not_reached(case, budget_s)))
                continue
            out.append((position, source, check_planned(declared, source, case, planner=planner, seed=seed,
                                                        time_limit_s=time_limit_s)))
    return {"host": socket.gethostname(), "results": out}


def verify_on_cluster(client, backend, op: str = "conv2d", cases: int | None = None, seed: int = 0, *,
                      table: bool = True, shrink_failures: bool = True, max_failures: int | None = None,
                      time_limit_s: float | None = CASE_TIME_LIMIT_S, on_result=None, progress: bool = False,
                      scale: bool | None = None, budget_s: float | None = None, shard_size: int | None = None,
                      dtypes=None):
    """:func:`harness.verify.verifier.verify` with the cases checked on the workers of ``client``.

    Same parameters and the same report (rows in the serial run's order); ``client`` is a
    ``distributed.Client``, ``shard_size`` the cases per task (default: see :func:`shards`).
    ``on_result`` gets each row as its task comes back (tasks finish in any order). With
    ``budget_s``, the budget ends at one moment for every worker (their clocks are assumed set),
    and further random cases go to whichever workers are free until then. ``max_failures``
    cancels the tasks not yet finished once reached (tasks already running finish).

    Raises
    ------
    ClusterError
        The scheduler went away, or a task was lost with every worker that ran it (a case that
        crashes its worker process). Every row returned before is kept (``on_result`` has it).
    WorkerPluginError
        A worker cannot load a plug-in file this process loaded.
    """
    from distributed import CancelledError, KilledWorker, as_completed

    declared, cases, scale = run_settings(backend, op, cases, budget_s, scale)
    wanted = wanted_dtypes(declared, dtypes)
    todo = planned_cases(declared, op, cases, seed, table=table, scale=scale, dtypes=wanted)
    plugins = loaded_plugins()
    try:
        check_workers(client, plugins)
        tier_threads = cores_per_worker(client)
        workers = max(1, len(tier_threads))
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"the Dask scheduler did not answer ({type(exc).__name__}: {exc})") from None
    deadline = None if budget_s is None else time.time() + budget_s
    common = dict(seed=seed, time_limit_s=time_limit_s, deadline=deadline, budget_s=budget_s, plugins=plugins)

    def submit(items):
        # the tier's tasks (long, of large cases) start first, each with its share of its machine's cores;
        # the short tasks of small cases fill in around them, one thread each (the workers are the parallelism)
        tier = items[0][1] == "scale"
        return client.submit(check_shard, declared.name, op, items, pure=False, priority=1 if tier else 0,
                             threads=tier_threads if tier else 1, **common)

    futures = {submit(items): items for items in shards(todo, workers, shard_size)}
    pending = as_completed(list(futures), loop=client.loop)
    results: dict[int, tuple] = {}
    lost: list[tuple] = []
    extras_drawn, n_failed, total = 0, 0, len(todo)
    try:
        for future in pending:
            try:
                answer = future.result()
            except KilledWorker:
                lost += futures[future]
                continue
            except (CancelledError, OSError, TimeoutError) as exc:
                raise ClusterError(f"lost the Dask scheduler ({type(exc).__name__}: {exc or 'connection lost'}); "
                                   f"{len(results)} finished case(s) kept") from None
            for position, source, result in answer["results"]:
                if result is None:
                    continue
                results[position] = (source, result)
                n_failed += result.status == "failed"
                if on_result is not None:
                    on_result(result_row(declared.name, op, source, result))
            if progress:
                _progress(len(results), total, n_failed)
            if max_failures is not None and n_failed >= max_failures:
                break
            if deadline is not None and pending.count() < workers and time.time() < deadline:
                batch = more_random(declared, op, cases + extras_drawn, seed, wanted)
                extras_drawn += len(batch)
                items = [(total + k, source, case) for k, (source, case) in enumerate(batch)]
                total += len(items)
                step = max(1, math.ceil(len(items) / workers))
                for k in range(0, len(items), step):
                    extra = submit(items[k:k + step])
                    futures[extra] = items[k:k + step]
                    pending.add(extra)
    finally:
        cancel_unfinished(client, futures)
        if progress:
            sys.stderr.write("\n")
    if lost:
        positions = sorted(position for position, _, _ in lost)
        raise ClusterError(f"{len(lost)} case(s) (plan positions {positions[0]}-{positions[-1]}) were lost: every "
                           "worker that ran them died (a crash or running out of memory in one of them); "
                           f"{len(results)} finished case(s) kept; check those cases serially (convbench verify "
                           "without --workers/--scheduler) to find the one")
    ordered = [results[position] for position in sorted(results)]
    return finish_report(declared, op, ordered, shrink_failures=shrink_failures)


def _progress(done: int, total: int, failed: int) -> None:
    sys.stderr.write(f"\r{done}/{total} cases, {failed} failed")
    sys.stderr.flush()
