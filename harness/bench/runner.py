"""In-process benchmarks: suite layers x backends, one long results table.

The same rules as the asv benchmarks (``benchmarks/bench_conv2d.py`` uses
:func:`prepare` and :mod:`harness.support.timing` too): inputs from a seeded ``default_rng``
made outside the timed region, the backend's op called directly (arguments were checked
once, when the case was prepared), warm-up and compile time apart from run time, and the
backend's ``sync()`` before every clock stop.

Results are long: one row per (backend, op, suite, layer, batch, dtype, threads, metric), with
``impl`` saying whether the backend ran the op natively or through a harness lowering
(``native`` / ``lowered``, see :mod:`harness.ops.lowering`).
Metrics:

* ``time_min``, ``time_median``, ``time_iqr`` (seconds), ``runs``, ``compile_s``
* ``gflops`` (dense FLOPs / time_min, see :mod:`harness.ops.metrics`; a transposed conv counts
  2 * the MACs of its forward pair), ``gflops_useful``
* ``ratio_to_torch``: torch's time_min / this backend's, from the same run (> 1 = faster
  than torch)
* ``pct_peak``: gflops as % of the roofline min(peak GEMM GFLOP/s, intensity x bandwidth)
  measured by ``convbench env``
* ``cpr``, ``intensity`` (properties of the layer, repeated per backend for convenience)
* ``skipped`` (value NaN) with the reason, for unavailable backends, unsupported
  features or ops, and cases the time guard refused.
"""

from __future__ import annotations

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
from harness.errors import Unsupported
from harness.ops import metrics
from harness.ops.table import op_info
from harness.support.machine import peak_gflops
from harness.suites import Layer, expand_batches, layers
from harness.support.results_io import write_atomic, write_csv
from harness.support.timing import pinned_threads, time_call, time_once


def baseline_name() -> str | None:
    """The backend every ratio is taken against: the available CPU ``baseline`` (``Backend.role``)."""
    return with_role("baseline")

COLUMNS = ("backend", "impl", "op", "suite", "layer", "batch", "dtype", "threads", "cache", "metric", "value",
           "reason")
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
    from harness.suites.shape_files import read_rows

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
    min_runs: int = 3,
    cache: str = "hot",
    limit_s: float = DEFAULT_CASE_LIMIT_S,
    machine: dict | None = None,
    progress: bool = True,
    seed: int = 0,
    on_rows=None,
) -> pd.DataFrame:
    """Time every (suite, layer) in ``cases`` on every backend; one long DataFrame.

    ``on_rows`` is called with each finished layer's rows (a list of dicts) at once, so a
    caller can keep them even if the run is interrupted.

    ``torch`` is added as the baseline when it is available and not listed, so that
    ``ratio_to_torch`` always comes from the same run. Each case's first call is timed
    alone; a backend without a cost model whose first call exceeds ``limit_s`` is not
    timed further (recorded as skipped with that time).
    """
    names = list(dict.fromkeys(backend_names))
    baseline = baseline_name()
    if baseline is not None and baseline not in names:
        names.append(baseline)
    rows = []
    total = len(cases) * len(names)
    with pinned_threads(threads) as counts:
        used_threads = threads or counts.get("torch") or counts.get("blas") or 1
        done = 0
        for suite, layer in cases:
            base = {"op": layer.op, "suite": suite, "layer": layer.label, "batch": layer.spec.N,
                    "dtype": layer.spec.dtype, "threads": used_threads, "cache": cache}
            times, layer_rows = {}, []
            for name in names:
                done += 1
                if progress:
                    _progress(done, total, layer.label, layer.spec.N, name)
                result = _one(name, layer, base, budget_s, min_runs, cache, limit_s, seed)
                layer_rows += result[0]
                if result[1] is not None:
                    times[name] = result[1]
            layer_rows += _derived(times, layer, base, machine, used_threads, baseline)
            rows += layer_rows
            if on_rows is not None:
                on_rows(layer_rows)
    if progress:
        print(file=sys.stderr)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _one(name, layer, base, budget_s, min_runs, cache, limit_s, seed):
    """Rows for one (backend, layer), and its Timing (None when skipped)."""
    row = dict(base, backend=name, impl="")
    try:
        chosen, note = resolve_auto(name, layer.op, op_spec(layer.op, layer.spec))
        row["impl"] = get_backend(chosen).op_impl(layer.op) or ""
        prepared = prepare(chosen, layer.op, layer.spec, seed, limit_s)
    except Unsupported as exc:
        return [dict(row, metric="skipped", value=math.nan, reason=str(exc))], None
    try:
        first = time_once(prepared.fn, prepared.args, prepared.sync)
    except Unsupported as exc:  # a limit found only at run time (e.g. winograd's kernel size)
        return [dict(row, metric="skipped", value=math.nan, reason=str(exc))], None
    except Exception as exc:  # a crashing backend is reported, and the run goes on
        return [dict(row, metric="skipped", value=math.nan, reason=f"error: {type(exc).__name__}: {exc}")], None
    if first > limit_s:
        reason = f"first call took {first:.1f} s, over the per-case limit of {limit_s:g} s; not timed further"
        return [dict(row, metric="skipped", value=math.nan, reason=reason)], None
    timing = time_call(prepared.fn, prepared.args, sync=prepared.sync, budget_s=budget_s,
                       min_runs=min_runs, cache=cache, warmup=1, first_call_s=first)
    values = {"time_min": timing.min, "time_median": timing.median, "time_iqr": timing.iqr,
              "runs": timing.runs, "compile_s": timing.compile}
    return [dict(row, metric=k, value=float(v), reason=note) for k, v in values.items()], timing


#: Backend names that ``run`` resolves per layer through :mod:`harness.autoselect`, with how.
AUTO_NAMES = {"auto": "measure", "auto:estimate": "estimate", "auto:torch": "measure"}


def resolve_auto(name: str, op: str, spec) -> tuple[str, str]:
    """``(backend to time, note for the results)``: a plain name stays itself, with no note.

    ``auto`` is cuDNN's find mode (:func:`harness.autoselect.measure`: every candidate timed
    once per spec, untimed here, the winner cached); ``auto:estimate`` the cost model alone;
    ``auto:torch`` find mode with torch among the candidates.
    """
    if name not in AUTO_NAMES:
        return name, ""
    include_torch = name == "auto:torch"
    if AUTO_NAMES[name] == "estimate":
        choice = autoselect.estimate(op, spec, include_torch=include_torch)
        if choice is None:
            raise Unsupported(f"{name}: no candidate backend has a cost model for {op} on {spec}")
    else:
        choice = autoselect.measure(op, spec, include_torch=include_torch)
    return choice.backend, f"chose {choice.backend} ({choice.method})"


def _derived(times: dict, layer: Layer, base: dict, machine: dict | None, threads: int,
             baseline: str | None = None) -> list[dict]:
    """GFLOP/s, ratio to the baseline, % of peak, CPR and intensity for every timed backend (the
    op record's counts)."""
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
        if baseline in times:
            values["ratio_to_torch"] = times[baseline].min / t.min
        if attainable:
            values["pct_peak"] = metrics.pct_of(values["gflops"], attainable)
        impl = get_backend(resolve_auto(name, layer.op, spec)[0]).op_impl(layer.op) or ""
        rows += [dict(base, backend=name, impl=impl, metric=k, value=float(v), reason="") for k, v in values.items()]
    return rows


def _progress(done: int, total: int, label: str, batch: int, backend: str) -> None:
    end = "\r" if sys.stderr.isatty() else "\n"
    print(f"[{done}/{total}] {label} N={batch} {backend}".ljust(79), end=end, file=sys.stderr, flush=True)


# -- reporting ---------------------------------------------------------------------------
def table(results: pd.DataFrame) -> str:
    """GFLOP/s and ratio to torch per layer and backend, with geometric means per suite."""
    timed = results[results.metric.isin(["gflops", "ratio_to_torch"])]
    if timed.empty:
        return "no case was timed"
    wide = timed.pivot_table(index=["suite", "layer", "batch", "dtype"], columns=["backend", "metric"],
                             values="value", aggfunc="first")
    order = list(dict.fromkeys(zip(timed.suite, timed.layer, timed.batch, timed.dtype)))
    wide = wide.reindex(order)  # the suite's own layer order, not alphabetical
    backends = list(dict.fromkeys(b for b, _ in wide.columns))
    header = f"{'layer':<40} {'N':>3} " + " ".join(f"{b + ' GF/s':>14} {'x torch':>8}" for b in backends)
    lines = [header, "-" * len(header)]
    skipped = results[results.metric == "skipped"].set_index(["layer", "batch", "dtype", "backend"]).reason
    lowered = set(map(tuple, timed[timed.impl == "lowered"][["layer", "batch", "dtype", "backend"]].values))
    for suite, part in wide.groupby(level="suite", sort=False):
        for (_, layer, batch, dtype), row in part.iterrows():
            cells = []
            for b in backends:
                gf, ratio = row.get((b, "gflops"), math.nan), row.get((b, "ratio_to_torch"), math.nan)
                if math.isnan(gf) and (layer, batch, dtype, b) in skipped.index:
                    cells.append(f"{'skipped':>14} {'':>8}")
                else:  # '*': the op ran through a harness lowering, not the backend's own kernel
                    mark = "*" if (layer, batch, dtype, b) in lowered else " "
                    cells.append(f"{gf:>13.2f}{mark} {ratio:>8.2f}")
            lines.append(f"{layer:<40} {batch:>3} " + " ".join(cells))
        cells = []
        for b in backends:
            cells.append(f"{_geomean(part.get((b, 'gflops'))):>14.2f} {_geomean(part.get((b, 'ratio_to_torch'))):>8.2f}")
        lines.append(f"{'geomean ' + suite:<40} {'':>3} " + " ".join(cells))
        lines.append("")
    if lowered:
        lines.append("* lowered: the backend ran the op through a harness lowering onto its conv2d")
    n_skipped = int((results.metric == "skipped").sum())
    if n_skipped:
        lines.append(f"{n_skipped} case(s) skipped; reasons in the results file (metric 'skipped'). First ones:")
        for reason in results[results.metric == "skipped"].reason.drop_duplicates().head(5):
            lines.append(f"  - {reason}")
    return "\n".join(lines)


def _geomean(values) -> float:
    if values is None:
        return math.nan
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    return float(np.exp(np.log(v).mean())) if v.size else math.nan


def save(results: pd.DataFrame, out, settings: dict, started: float) -> None:
    """``results`` as a CSV at ``out`` and, beside it (``.json``), the run's settings with the
    rows, so a report quotes the settings of the run it shows. Both are written atomically."""
    settings = {"command": sys.argv, **settings,
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
                "wall_s": round(time.time() - started, 3)}
    write_csv(results, out)
    write_atomic(out.with_suffix(".json"),
                 json.dumps({"settings": settings, "results": results.to_dict(orient="records")}, indent=1, default=str))
