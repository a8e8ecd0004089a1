"""The same benchmark on every machine of a Dask cluster, one benchmark at a time per machine.

Workers are grouped by the machine they run on (host name and ``/etc/machine-id``). Each machine
gets one task, on one of its workers, that holds a cluster-wide lock named after the machine for
its whole run (so two fleet runs never time on one machine at once) and runs
:func:`harness.bench.runner.run` there with that machine's own record
(:func:`harness.support.machine.record`: CPU, BLAS, measured peak and bandwidth). Timings are
judged as on one machine (:mod:`harness.bench.stability`, from the machine state sampled around
every layer); besides, a row is flagged unstable when the scheduler had other tasks on that
machine's workers when its run began or ended.

The client gathers each machine's rows, with a ``machine`` column, and its record as they finish.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

from harness.distributed.cluster import cancel_unfinished
from harness.distributed.errors import ClusterError
from harness.distributed.shipping import check_workers, ensure_loaded, loaded_plugins

#: How often the client looks whether a machine still has a worker while waiting.
POLL_S = 2.0
OTHER_WORK = "other Dask tasks ran on this machine during the run"


def machine_id() -> str:
    """This machine: its host name, and its ``/etc/machine-id`` where there is one (containers can share names)."""
    host = socket.gethostname()
    try:
        return f"{host}/{Path('/etc/machine-id').read_text().strip()[:12]}"
    except OSError:
        return host


def machines(client) -> dict[str, list[str]]:
    """The cluster's worker addresses grouped by machine: ``{machine id: [addresses]}``."""
    groups: dict[str, list[str]] = {}
    for address, machine in sorted(client.run(machine_id).items()):
        groups.setdefault(machine, []).append(address)
    return groups


def machine_names(ids) -> dict[str, str]:
    """A short name per machine id: its host name, with the id's suffix only where host names repeat."""
    hosts = [i.split("/")[0] for i in ids]
    return {i: (h if hosts.count(h) == 1 else i) for i, h in zip(ids, hosts)}


def bench_on_machine(machine: str, name: str, siblings, cases, backend_names, *, threads=None, budget_s=0.3,
                     min_runs=None, cache="hot", limit_s=None, until_stable_s=0.0, record_path=None,
                     plugins=()) -> dict:
    """On a worker of ``machine``: run the benchmark there and return its rows and the machine's record.

    ``siblings`` are the addresses of every worker on this machine (work the scheduler gives them
    meanwhile flags the rows); ``record_path`` is where this machine keeps its record (default
    ``~/.cache/convbench/machine.json`` on the worker). Other arguments as :func:`harness.bench.runner.run`.
    """
    from distributed import Lock, get_client, get_worker

    from harness.bench import paired
    from harness.bench import runner
    from harness.support import machine_state
    from harness.support.machine import record

    ensure_loaded(plugins)
    client = get_client()
    own = get_worker().get_current_task()
    path = Path(record_path) if record_path else Path.home() / ".cache" / "convbench" / "machine.json"
    with Lock(f"convbench-bench-{machine}"):
        busy = _other_tasks(client, siblings, own)
        started = time.time()
        measured = record(path)
        threads, note = machine_state.choose_threads(threads)
        results = runner.run(cases, backend_names, threads=threads, budget_s=budget_s,
                             min_runs=min_runs or paired.MIN_ROUNDS, cache=cache,
                             limit_s=limit_s or runner.DEFAULT_CASE_LIMIT_S, machine=measured, progress=False,
                             until_stable_s=until_stable_s)
        busy = busy or _other_tasks(client, siblings, own)
    if busy:
        timed = results.stable.astype("boolean").fillna(False) if "stable" in results else None
        if timed is not None:
            results.loc[timed, "unstable_reason"] = OTHER_WORK
            results.loc[timed, "stable"] = False
    results.insert(0, "machine", name)
    return {"machine": name, "record": measured, "results": results, "threads": threads, "note": note,
            "wall_s": round(time.time() - started, 3), "other_work": busy}


def _other_tasks(client, siblings, own) -> bool:
    """Whether the scheduler has tasks other than ``own`` on any of ``siblings``."""
    processing = client.processing(workers=list(siblings))
    return any(key != own for keys in processing.values() for key in keys)


def bench_fleet(client, cases, backend_names, *, on_machine=None, record_path=None, **settings):
    """Run the benchmark on every machine of ``client``'s cluster; ``(rows, records)`` when all are done.

    Parameters
    ----------
    client : distributed.Client
    cases, backend_names
        As :func:`harness.bench.runner.run` (``(suite, Layer)`` pairs, backend names).
    on_machine : callable, optional
        Called with each machine's answer (a dict: ``machine``, ``record``, ``results``, ``threads``,
        ``wall_s``, ``other_work``) as soon as it arrives, so a caller keeps it whatever happens next.
    record_path : str, optional
        Where each worker keeps its machine record (default on each: ``~/.cache/convbench/machine.json``).
    settings
        ``threads``, ``budget_s``, ``min_runs``, ``cache``, ``limit_s``, ``until_stable_s``.

    Returns
    -------
    (pandas.DataFrame, dict)
        The long rows of every machine (a ``machine`` column first) and ``{machine: record}``.

    Raises
    ------
    ClusterError
        The scheduler went away, or every worker of a machine did (after the other machines finished).
    """
    import pandas as pd
    from distributed import as_completed

    plugins = loaded_plugins()
    try:
        check_workers(client, plugins)
        groups = machines(client)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"the Dask scheduler did not answer ({type(exc).__name__}: {exc})") from None
    names = machine_names(list(groups))
    futures = {}
    for machine, addresses in groups.items():
        future = client.submit(bench_on_machine, machine, names[machine], addresses, cases, backend_names,
                               record_path=record_path, plugins=plugins, workers=addresses,
                               allow_other_workers=False, pure=False, **settings)
        futures[future] = machine
    answers, lost, given_up = [], [], set()
    pending = as_completed(list(futures), loop=client.loop)
    try:
        while not pending.is_empty():
            done = pending.next_batch(block=False)
            if not done:
                time.sleep(POLL_S)
            for future in done:
                if future in given_up:
                    continue
                try:
                    answer = future.result()
                except Exception as exc:  # noqa: BLE001 — a lost worker or scheduler, said per machine
                    if not _cluster_failure(exc):
                        raise
                    lost.append(f"{names[futures[future]]} ({type(exc).__name__})")
                    continue
                answers.append(answer)
                if on_machine is not None:
                    on_machine(answer)
            alive = machines_alive(client, groups)
            for future in [f for f in futures if not f.done() and f not in given_up and futures[f] not in alive]:
                future.cancel()  # its machine has no worker left: the task could never run
                given_up.add(future)
                lost.append(f"{names[futures[future]]} (no worker left)")
    finally:
        cancel_unfinished(client, futures)
    if lost:
        raise ClusterError(f"no results from {len(lost)} machine(s): {', '.join(lost)}; "
                           f"{len(answers)} machine(s) finished")
    rows = pd.concat([a["results"] for a in answers], ignore_index=True) if answers else pd.DataFrame()
    return rows, {a["machine"]: a["record"] for a in answers}


def machines_alive(client, groups: dict) -> set[str]:
    """The machines of ``groups`` (as :func:`machines` gives) with a worker the scheduler still has.

    Asks the scheduler only: the workers, busy timing, are not disturbed. ClusterError when it does not answer.
    """
    try:
        if client.status in ("closing", "closed"):
            raise OSError("the client lost its connection")
        present = set(client.scheduler_info()["workers"])
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"lost the Dask scheduler ({type(exc).__name__}: {exc})") from None
    return {machine for machine, addresses in groups.items() if present & set(addresses)}


def _cluster_failure(exc: Exception) -> bool:
    from distributed import CancelledError, KilledWorker

    return isinstance(exc, (KilledWorker, CancelledError, OSError, TimeoutError))
