"""In-process benchmarks: suite layers x backends, one long results table.

The same rules as the asv benchmarks (``benchmarks/bench_conv2d.py`` uses
:func:`prepare` and :mod:`harness.timing` too): inputs from a seeded ``default_rng``
made outside the timed region, the backend's op called directly (arguments were checked
once, when the case was prepared), warm-up and compile time apart from run time, and the
backend's ``sync()`` before every clock stop.

Backends are timed against each other on each layer in interleaved, shuffled rounds
(:mod:`harness.bench.paired`), with the machine's state sampled around and between the rounds
(:mod:`harness.support.machine_state`).

Results are long: one row per (backend, op, suite, layer, batch, dtype, threads, metric), with
``impl`` saying whether the backend ran the op natively or through a harness lowering
(``native`` / ``lowered``, see :mod:`harness.ops.lowering`), and on every row of a timed
(backend, layer) its ``stable`` flag and ``unstable_reason`` (:mod:`harness.bench.stability`).
Metrics:

* ``time_min``, ``time_median``, ``time_iqr`` (seconds per call, over the rounds' samples),
  ``runs`` (timed calls), ``rounds``, ``compile_s``, ``rel_spread`` (IQR / median)
* ``gflops`` (dense FLOPs / time_min, see :mod:`harness.ops.metrics`; a transposed conv counts
  2 * the MACs of its forward pair), ``gflops_useful``
* ``ratio_to_torch``: median over rounds of torch's sample / this backend's, from the same
  rounds (> 1 = faster than torch), with ``ratio_lo`` and ``ratio_hi``, its 95% interval
* ``pct_peak``: gflops as % of the roofline min(peak GEMM GFLOP/s, intensity x bandwidth)
  measured by ``convbench env``
* ``cpr``, ``intensity`` (properties of the layer, repeated per backend for convenience)
* ``busy_cores`` (cores other processes wanted while the layer ran), ``busy_cores_consumed``,
  ``runnable_others``, ``steal_pct``, ``load1``, ``procs_running``, ``cpu_mhz_before`` /
  ``cpu_mhz_after`` (the machine's state, where the OS exposes it; repeated per backend),
  ``core_speed_min`` (the slowest core's speed, as a fraction of its fastest in the process, probed
  before and after the layer: :mod:`harness.support.core_speed`)
* ``skipped`` (value NaN) with the reason, for unavailable backends, unsupported
  features or ops, and cases the time guard refused.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness import autoselect
from harness.backend import dispatch
from harness.backend.registry import get_backend, with_role
from harness.bench import paired, stability
from harness.errors import Unsupported
from harness.ops import metrics
from harness.ops.table import op_info
from harness.suites import Layer, expand_batches, layers
from harness.suites.shape_files import read_rows
from harness.support.allocator import steady_heap
from harness.support import core_speed, machine_state
from harness.support.machine import peak_gflops
from harness.support.results_io import write_atomic, write_csv
from harness.support.timing import pinned_threads, time_once


#: Rounds per layer at most: each round settles every backend (``paired.SETTLE_S``), so without a
#: cap a layer whose samples fall short of the budget (a per-call estimate inflated by another
#: pool still spinning) ran up to 40 rounds, a minute per layer with nine backends.
ROUND_CAP = 2 * paired.TARGET_ROUNDS


def baseline_name() -> str | None:
    """The backend every ratio is taken against: the available CPU ``baseline`` (``Backend.role``)."""
    return with_role("baseline")

COLUMNS = ("backend", "impl", "op", "suite", "layer", "batch", "dtype", "threads", "cache", "metric", "value",
           "reason", "stable", "unstable_reason")
DEFAULT_CASE_LIMIT_S = 20.0


Prepared = dispatch.Prepared


def prepare(backend_name: str, op: str, spec, seed: int = 0, limit_s: float | None = DEFAULT_CASE_LIMIT_S):
    """Everything a timing loop needs, or ``Unsupported`` with the reason it cannot run.

    ``spec`` may be a suite row's Conv2dSpec (see :func:`op_spec`). The reason covers an
    unavailable backend, an op or feature it lacks, a call that cannot fit in memory
    (``ResourceLimit``, before any input is generated) and a case whose estimated time per
    call exceeds ``limit_s`` (see :func:`estimate_seconds`).
    """
    declared = get_backend(backend_name)
    spec = op_spec(op, spec)
    declared.check(op, spec)  # raises Unsupported with the reason
    estimate = estimate_seconds(backend_name, spec, op)
    if limit_s is not None and estimate is not None and estimate > limit_s:
        raise Unsupported(
            f"estimated {estimate:.0f} s per call for {backend_name} exceeds the per-case limit of {limit_s:g} s"
        )
    return dispatch.prepare(declared, op, spec, seed)


def op_spec(op: str, spec):
    """The spec ``op`` takes, from a suite row's Conv2dSpec (the op record's ``from_layer``)."""
    convert = op_info(op).from_layer
    return spec if convert is None else convert(spec)


def estimate_seconds(backend_name: str, spec, op: str = "conv2d") -> float | None:
    """The backend's cost model's time per call (``Backend.cost``); None without a model.

    Backends without a model for the call are guarded by their first call instead (see :func:`run`).
    """
    return autoselect.predict(backend_name, op, spec)


# -- planning ----------------------------------------------------------------------------
def plan(suites=(), shape_files=(), batches=None, dtypes=("float32",)) -> list[tuple[str, Layer]]:
    """``(suite, layer)`` pairs for the named suites and shape files.

    ``batches`` is a list of batch sizes, or None for each file's own batch (else 1 and 8).
    """
    out = []
    for dtype in dtypes:
        for name in suites:
            for batch in batches or [None]:
                out += [(name, layer) for layer in layers(name, batch, dtype)]
        for path in shape_files:
            rows = read_rows(path)
            stem = rows[0].label.split(".")[0] if rows else str(path)
            for batch in batches or [None]:
                out += [(stem, layer) for layer in expand_batches(rows, batch, dtype)]
    return out


# -- running -----------------------------------------------------------------------------
def run(
    cases,
    backend_names,
    *,
    threads: int | None = None,
    budget_s: float = 0.3,
    min_runs: int = paired.MIN_ROUNDS,
    cache: str = "hot",
    limit_s: float = DEFAULT_CASE_LIMIT_S,
    machine: dict | None = None,
    progress: bool = True,
    seed: int = 0,
    on_rows=None,
    until_stable_s: float = 0.0,
    settle_s: float | None = None,
    baseline: str | None = None,
    max_rounds: int = ROUND_CAP,
) -> pd.DataFrame:
    """Time every (suite, layer) in ``cases`` on every backend; one long DataFrame.

    Backends are timed against each other in interleaved rounds (:mod:`harness.bench.paired`):
    ``min_runs`` is the fewest rounds, ``budget_s`` the timed seconds each backend should
    accumulate per layer, ``max_rounds`` the most rounds (default :data:`ROUND_CAP`), ``settle_s``
    the untimed calls before each sample (default :func:`harness.bench.paired.settle_seconds` for
    the thread count). Every timed row carries ``stable`` and ``unstable_reason``
    (:mod:`harness.bench.stability`), judged from the ratio's interval, the backend's spread and
    the machine's state while the layer ran (:mod:`harness.support.machine_state`). ``until_stable_s`` > 0 re-measures a layer with unstable
    rows until it is stable or that many seconds (over the whole run) are spent on re-measuring.

    ``on_rows`` is called with each finished layer's rows (a list of dicts) at once, so a
    caller can keep them even if the run is interrupted.

    ``baseline`` (default: the CPU ``baseline`` backend, torch) is added when it is available and not listed, so that
    ``ratio_to_torch`` always comes from the same rounds. Each case's first call is timed
    alone; a backend without a cost model whose first call exceeds ``limit_s`` is not
    timed further (recorded as skipped with that time).
    """
    steady_heap()  # large buffers stay in the heap: no page faults per call (harness.support.allocator)
    names = list(dict.fromkeys(backend_names))
    baseline = baseline or baseline_name()
    if baseline is not None and baseline not in names and get_backend(baseline).available:
        names.append(baseline)
    rows = []
    total = len(cases) * len(names)
    with pinned_threads(threads) as counts:
        retry_until = time.monotonic() + max(0.0, until_stable_s)  # after the libraries' imports
        used_threads = threads or counts.get("torch") or counts.get("blas") or 1
        settle_s = paired.settle_seconds(used_threads) if settle_s is None else settle_s
        done = 0
        for suite, layer in cases:
            base = {"op": layer.op, "suite": suite, "layer": layer.label, "batch": layer.spec.N,
                    "dtype": layer.spec.dtype, "threads": used_threads, "cache": cache}
            contenders, layer_rows, notes = {}, [], {}
            for name in names:
                done += 1
                if progress:
                    _progress(done, total, layer.label, layer.spec.N, name)
                started = _one(name, layer, base, limit_s, seed)
                if isinstance(started, list):
                    layer_rows += started  # skipped, with the reason
                else:
                    contenders[name], notes[name] = _share_inputs(started[0], contenders), started[1]
            measured = _measure_layer(contenders, notes, layer, base, budget_s, min_runs, cache, machine,
                                      used_threads, seed, settle_s, baseline, max_rounds)
            attempt = 0
            while _unstable(measured) and time.monotonic() < retry_until:
                attempt += 1  # another shuffle of the rounds' order each time
                measured = _measure_layer(contenders, notes, layer, base, budget_s, min_runs, cache, machine,
                                          used_threads, seed + attempt, settle_s, baseline, max_rounds)
            for contender in contenders.values():  # seeded inputs no later layer passes again
                dispatch.release(contender)
            layer_rows += measured
            rows += layer_rows
            if on_rows is not None:
                on_rows(layer_rows)
    if progress:
        print(file=sys.stderr)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _one(name, layer, base, limit_s, seed):
    """``(Contender, note)`` for one (backend, layer) ready to time, or its ``skipped`` rows."""
    row = dict(base, backend=name, impl="", stable=False, unstable_reason="not timed")
    try:
        chosen, note = resolve_auto(name, layer.op, op_spec(layer.op, layer.spec))
        row["impl"] = get_backend(chosen).op_impl(layer.op) or ""
        prepared = prepare(chosen, layer.op, layer.spec, seed, limit_s)
    except Unsupported as exc:
        return [dict(row, metric="skipped", value=math.nan, reason=str(exc))]
    try:
        first = time_once(prepared.fn, prepared.args, prepared.sync)
    except Unsupported as exc:  # a limit found only at run time (e.g. winograd's kernel size)
        return [dict(row, metric="skipped", value=math.nan, reason=str(exc))]
    except Exception as exc:  # a crashing backend is reported, and the run goes on
        return [dict(row, metric="skipped", value=math.nan, reason=f"error: {type(exc).__name__}: {exc}")]
    if first > limit_s:
        reason = f"first call took {first:.1f} s, over the per-case limit of {limit_s:g} s; not timed further"
        return [dict(row, metric="skipped", value=math.nan, reason=reason)]
    return paired.Contender(prepared.fn, prepared.args, prepared.sync, first, prepared.release), note


def _share_inputs(contender, others: dict):
    """``contender`` using the inputs another backend of the layer already holds, when they are the
    same (same seed and spec: equal read-only arrays), so a layer's inputs are in memory once."""
    for other in others.values():
        if len(other.args) == len(contender.args) and all(map(_same_input, contender.args, other.args)):
            return dataclasses.replace(contender, args=other.args)
    return contender


def _same_input(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape
                and a.dtype == b.dtype and not a.flags.writeable and np.array_equal(a, b))
    return a is b or a == b


def _measure_layer(contenders, notes, layer, base, budget_s, min_runs, cache, machine, threads, seed, settle_s,
                   baseline, max_rounds=ROUND_CAP):
    """Rows of one layer's interleaved measurement: times, derived figures, ratio intervals,
    machine state, and every row's stability verdict."""
    if not contenders:
        return []
    speeds_before = core_speed.speeds()  # after this process's pools went idle
    before, during = machine_state.sample(), []
    samples = paired.measure(contenders, budget_s=budget_s, min_rounds=min_runs,
                             max_rounds=max(min_runs, max_rounds), settle_s=settle_s, cache=cache, seed=seed,
                             on_round=lambda: during.append(machine_state.sample(frequency=False)))
    window = machine_state.between(before, machine_state.sample(), during)
    crowded = machine_state.oversubscription(window, threads)
    speeds = [speeds_before, core_speed.speeds()]
    contended = core_speed.contention(speeds)
    times, ratios, rows = {}, {}, []
    for name, c in contenders.items():
        times[name] = paired.timing_of(samples.times[name], samples.calls[name], c.first_call_s, cache)
        if baseline in contenders:
            ratios[name] = paired.ratio_interval(samples.times[baseline], samples.times[name], seed=seed)
    state = _state_values(window)
    slowest = [v for one in speeds if one for v in one.values()]
    if slowest:
        state["core_speed_min"] = min(slowest)
    for name, t in times.items():
        spread = paired.rel_spread(samples.times[name])
        ratio, lo, hi = ratios.get(name, (None, None, None))
        stable, why = stability.verdict(rounds=samples.rounds, rel_spread=spread, ratio=ratio, lo=lo, hi=hi,
                                        oversubscribed=crowded, steal_pct=window.steal_pct, contended=contended)
        flags = {"stable": stable, "unstable_reason": why}
        impl = get_backend(resolve_auto(name, layer.op, op_spec(layer.op, layer.spec))[0]).op_impl(layer.op) or ""
        values = {"time_min": t.min, "time_median": t.median, "time_iqr": t.iqr, "runs": t.runs,
                  "rounds": samples.rounds, "compile_s": t.compile, "rel_spread": spread, **state}
        rows += [dict(base, backend=name, impl=impl, metric=k, value=float(v), reason=notes[name], **flags)
                 for k, v in values.items()]
        derived = _derived({name: t}, layer, base, machine, threads, {name: ratios[name]} if name in ratios else {})
        rows += [dict(r, **flags) for r in derived]
    return rows


def _state_values(window) -> dict:
    """The machine-state metrics of a layer (those the OS exposes), repeated on each backend's rows."""
    values = {"busy_cores": window.busy_cores, "busy_cores_consumed": window.consumed_cores,
              "runnable_others": window.runnable_others, "steal_pct": window.steal_pct, "load1": window.load1,
              "procs_running": window.procs_running, "cpu_mhz_before": window.cpu_mhz_before,
              "cpu_mhz_after": window.cpu_mhz_after}
    return {k: v for k, v in values.items() if v is not None}


def _unstable(rows) -> bool:
    return any(not r["stable"] for r in rows if r["metric"] == "time_min")


#: Backend names that ``run`` resolves per layer through :mod:`harness.autoselect`, with the function that does.
AUTO_NAMES = {"auto": "choose", "auto:measure": "measure", "auto:estimate": "estimate", "auto:torch": "measure"}


def resolve_auto(name: str, op: str, spec) -> tuple[str, str]:
    """``(backend to time, note for the results)``: a plain name stays itself, with no note.

    ``auto`` is what ``harness.conv2d(backend="auto")`` runs (:func:`harness.autoselect.choose`: the
    cost model, its close calls timed once per spec, untimed here); ``auto:measure`` is cuDNN's find
    mode (:func:`harness.autoselect.measure`: every candidate timed once per spec, the winner
    cached); ``auto:estimate`` the cost model alone; ``auto:torch`` find mode with torch among the
    candidates.
    """
    if name not in AUTO_NAMES:
        return name, ""
    choice = getattr(autoselect, AUTO_NAMES[name])(op, spec, include_torch=name == "auto:torch")
    if choice is None:  # estimate and choose, without a cost model (measure raises Unsupported itself)
        raise Unsupported(f"{name}: no candidate backend has a cost model for {op} on {spec}")
    return choice.backend, f"chose {choice.backend} ({choice.method})"


def _derived(times: dict, layer: Layer, base: dict, machine: dict | None, threads: int,
             ratios: dict | None = None) -> list[dict]:
    """GFLOP/s, % of peak, CPR and intensity for every timed backend; with ``ratios`` (name ->
    ``(ratio, lo, hi)`` from :func:`harness.bench.paired.ratio_interval`), its ratio to torch and interval."""
    spec = op_spec(layer.op, layer.spec)
    counts = op_info(layer.op).counts(spec)
    if "intensity" not in counts:
        return []
    dense, useful = counts["flops_dense"], counts["flops_useful"]
    ai, layer_cpr = counts["intensity"], counts["cpr"]
    attainable = None
    if machine is not None:
        attainable = metrics.roofline_gflops(ai, peak_gflops(machine, spec.dtype, threads), machine["bandwidth"]["gbs"])
    rows = []
    for name, t in times.items():
        values = {
            "gflops": dense / t.min / 1e9,
            "gflops_useful": useful / t.min / 1e9,
            "cpr": layer_cpr,
            "intensity": ai,
        }
        if ratios and name in ratios:
            values["ratio_to_torch"], values["ratio_lo"], values["ratio_hi"] = ratios[name]
        if attainable:
            values["pct_peak"] = metrics.pct_of(values["gflops"], attainable)
        impl = get_backend(resolve_auto(name, layer.op, spec)[0]).op_impl(layer.op) or ""
        rows += [dict(base, backend=name, impl=impl, metric=k, value=float(v), reason="") for k, v in values.items()]
    return rows


def _progress(done: int, total: int, label: str, batch: int, backend: str) -> None:
    end = "\r" if sys.stderr.isatty() else "\n"
    print(f"[{done}/{total}] {label} N={batch} {backend}".ljust(79), end=end, file=sys.stderr, flush=True)


# -- reporting ---------------------------------------------------------------------------

def save(results: pd.DataFrame, out, settings: dict, started: float) -> None:
    """``results`` as a CSV at ``out`` and, beside it (``.json``), the run's settings with the
    rows, so a report quotes the settings of the run it shows. Both are written atomically."""
    settings = {"command": sys.argv, **settings,
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
                "wall_s": round(time.time() - started, 3)}
    write_csv(results, out)
    write_atomic(out.with_suffix(".json"),
                 json.dumps({"settings": settings, "results": results.to_dict(orient="records")}, indent=1, default=str))
