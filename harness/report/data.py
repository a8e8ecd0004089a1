"""Stored results -> one long DataFrame, and the tables the report shows (pivoted late).

Sources: ``convbench verify`` (``reports/verify.csv``; its append-only history
``reports/verify-history.jsonl``), ``convbench bench`` (``reports/bench.csv`` and the ``.json``
of settings beside it) and asv's results directory (``.asv/results/<machine>/*.json``, read
directly: asv has no DataFrame export). Every reader refuses a truncated or foreign file with
a message naming the file and the command that rewrites it.
"""

from __future__ import annotations

import ast
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from harness.backend.registry import with_role
from harness.bench.paired import format_ratio, geomean, geomean_interval
from harness.bench.stability import CLEARLY_SLOWER, timed_flags, unranked_layers


def baseline() -> str:
    """The backend ratios are taken against (the CPU ``baseline``; its results are labelled with its name)."""
    return with_role("baseline") or ""

#: Columns of the long results frame; ``source`` names the file a row came from.
LONG_COLUMNS = ("backend", "op", "suite", "layer", "batch", "dtype", "metric", "value", "source",
                "threads", "kernel", "impl", "reason", "stable", "unstable_reason")
VERIFY_COLUMNS = ("backend", "op", "status", "max_units", "case", "x_shape", "w_shape", "dtype")
BENCH_COLUMNS = ("backend", "op", "suite", "layer", "batch", "dtype", "metric", "value")
#: asv benchmark method -> metric name in the long frame (asv's ``time_`` result is a median).
ASV_METRICS = {"time_conv2d": "time_median", "track_gflops": "gflops", "peakmem_conv2d": "peakmem_bytes",
               "track_peak_bytes": "traced_peak_bytes",
               "track_cpr": "cpr"}
#: The suites of the ``auto`` target (>= 1.0x torch over all of them combined).
TARGET_SUITES = ("resnet50", "vgg16", "mobilenetv2", "large_kernels")


def read_csv_results(path, required_columns) -> pd.DataFrame:
    """A results CSV, refusing a truncated or foreign file with a clear message."""
    path = Path(path)
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        if handle.tell() and (handle.seek(-1, 2), handle.read(1))[1] != b"\n":
            raise ValueError(f"{path} is truncated (it does not end with a complete line); re-run the "
                             "command that writes it")
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty; re-run the command that writes it") from None
    except pd.errors.ParserError as exc:
        raise ValueError(f"{path} is not a well-formed results CSV ({exc})") from None
    missing = set(required_columns) - set(frame.columns)
    if missing:
        raise ValueError(f"{path} lacks column(s) {sorted(missing)}: not a convbench results file")
    return frame


# -- verification ------------------------------------------------------------------------
def verify_long(verified: pd.DataFrame, source: str) -> pd.DataFrame:
    """One ``status:<status>`` row (value 1) per case, plus ``max_units`` where it was judged."""
    base = pd.DataFrame({
        "backend": verified.backend, "op": verified.op, "suite": "verify", "layer": verified.case,
        "batch": verified.x_shape.map(lambda s: _shape(s)[0] if _shape(s) else math.nan),
        "dtype": verified.dtype, "source": source, "threads": math.nan,
        "kernel": verified.w_shape.map(_kernel), "impl": "", "reason": verified.get("message", ""),
        "stable": math.nan, "unstable_reason": ""})
    status = base.assign(metric="status:" + verified.status.astype(str), value=1.0)
    judged = verified.status.isin(["passed", "failed", "mistrusted"]) & verified.max_units.notna()
    units = base[judged].assign(metric="max_units", value=verified.max_units[judged].astype(float))
    return pd.concat([status, units], ignore_index=True)[list(LONG_COLUMNS)]


def _shape(text) -> tuple:
    try:
        value = ast.literal_eval(str(text))
    except (ValueError, SyntaxError):
        return ()
    return tuple(value) if isinstance(value, (tuple, list)) else ()


def _kernel(w_shape) -> str:
    shape = _shape(w_shape)
    return f"{shape[2]}x{shape[3]}" if len(shape) == 4 else ""


def history_runs(path) -> pd.DataFrame:
    """Per verification run in the append-only history: when, cases, failed, worst error."""
    from harness.support.results_io import read_records

    records = pd.DataFrame(read_records(path))
    if records.empty or "run" not in records:
        return pd.DataFrame()
    judged = records[records.status.isin(["passed", "failed", "mistrusted"])]
    runs = records.groupby("run", sort=True).agg(
        backends=("backend", lambda b: ",".join(sorted(set(b)))), cases=("status", "size"),
        failed=("status", lambda s: int((s == "failed").sum())))
    runs["max_units"] = judged.groupby("run").max_units.max()
    return runs


# -- benchmarks --------------------------------------------------------------------------
def bench_long(results: pd.DataFrame, source: str) -> pd.DataFrame:
    """A ``convbench bench`` results frame in the long layout."""
    out = results.assign(source=source, kernel="")
    if "stable" not in out:  # written before the stability flags: nothing vouches for these timings
        out["stable"] = False
        out["unstable_reason"] = "measured without stability flags (re-run the benchmark)"
    for column in LONG_COLUMNS:
        if column not in out:
            out[column] = "" if column in ("impl", "reason", "unstable_reason") else math.nan
    for column in ("reason", "unstable_reason", "impl"):  # text columns, even when read back all empty (float NaN)
        out[column] = out[column].astype(object).fillna("")
    return out[list(LONG_COLUMNS)]


def read_bench_settings(csv_path) -> dict:
    """The run settings ``convbench bench`` wrote beside its CSV (empty if there are none)."""
    path = Path(csv_path).with_suffix(".json")
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError:
        saved = None
    if not isinstance(saved, dict) or not isinstance(saved.get("settings", {}), dict):
        raise ValueError(f"{path} is not a convbench bench settings file (expected a JSON object with "
                         "'settings'); delete it or re-run 'convbench bench'")
    return saved.get("settings", {})


def asv_long(results_dir) -> pd.DataFrame:
    """Every asv result file under ``results_dir`` (``<machine>/<commit>-<env>.json``), long.

    The file format is asv's version 2: ``result_columns`` names the fields of each
    ``results[benchmark]`` entry; ``result`` lists one value per point of the product of
    ``params`` (parameter values as Python literals), in order.
    """
    frames = []
    for path in sorted(Path(results_dir).glob("*/*.json")):
        if path.name == "machine.json":
            continue
        frames.append(_asv_file(path, _asv_param_names(Path(results_dir) / "benchmarks.json")))
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(LONG_COLUMNS))


def _asv_param_names(path: Path) -> dict:
    try:
        return {name: b.get("param_names", []) for name, b in json.loads(path.read_text()).items()
                if isinstance(b, dict)}
    except (OSError, ValueError):
        return {}


def _asv_file(path: Path, param_names: dict) -> pd.DataFrame:
    try:
        data = json.loads(path.read_text())
        columns, results = data["result_columns"], data["results"]
        if data.get("version") != 2:
            raise KeyError("version")
    except ValueError:
        raise ValueError(f"{path} is truncated or not JSON; re-run `convbench asv run`") from None
    except (KeyError, TypeError):
        raise ValueError(f"{path} is not an asv (format version 2) results file") from None
    machine = data.get("params", {}).get("machine", path.parent.name)
    rows = []
    for name, entry in results.items():
        method = name.rsplit(".", 1)[-1]
        if method not in ASV_METRICS:
            continue
        fields = dict(zip(columns, entry))
        values, params = fields.get("result"), fields.get("params") or []
        names = param_names.get(name) or ["backend", "layer", "batch", "dtype"][: len(params)]
        if values is None:
            continue
        for point, value in zip(itertools.product(*params), values):
            p = dict(zip(names, (ast.literal_eval(v) for v in point)))
            layer = str(p.get("layer", ""))
            rows.append({"backend": p.get("backend", ""), "op": "conv2d", "suite": layer.split(".")[0],
                         "layer": layer, "batch": p.get("batch", math.nan), "dtype": p.get("dtype", ""),
                         "metric": ASV_METRICS[method], "value": math.nan if value is None else float(value),
                         "source": f"asv:{machine}/{path.name}", "threads": p.get("threads", math.nan), "kernel": "",
                         "impl": "", "reason": "", "stable": math.nan, "unstable_reason": ""})
    return pd.DataFrame(rows, columns=list(LONG_COLUMNS))


# -- tables ------------------------------------------------------------------------------

def suite_table(bench: pd.DataFrame) -> pd.DataFrame:
    """Per suite x backend: layers timed, GFLOP/s (geomean), total time, x torch, % of peak."""
    timed = bench[bench.metric.isin(["gflops", "time_min", "ratio_to_torch", "pct_peak"])]
    if timed.empty:
        return pd.DataFrame()
    g = timed.groupby(["suite", "backend", "metric"], sort=False).value
    wide = pd.DataFrame({
        "layers": g.count().xs("time_min", level="metric"),
        "GFLOP/s (geomean)": g.apply(geomean).xs("gflops", level="metric"),
        "time (s, sum)": g.sum().xs("time_min", level="metric"),
    })
    ratio = g.apply(geomean)
    if "ratio_to_torch" in set(timed.metric):
        wide["x torch (geomean)"] = ratio.xs("ratio_to_torch", level="metric")
    if "pct_peak" in set(timed.metric):
        wide["% of peak (median)"] = g.median().xs("pct_peak", level="metric")
    return wide


def winners(bench: pd.DataFrame) -> pd.DataFrame:
    """Per layer: the fastest single backend (auto excluded), its ratio to torch with its
    interval, its GFLOP/s, torch's, auto's pick. A layer whose fastest single backend is unstable, or
    where an unstable one could be the fastest (:func:`harness.bench.stability.unranked_layers`), names
    no winner: ``fastest`` says "not ranked" and ``timing`` why."""
    times = bench[bench.metric == "time_min"]
    single = times[~times.backend.str.startswith("auto")]
    if single.empty:
        return pd.DataFrame()
    keys = ["suite", "layer", "batch", "dtype"]
    flags = timed_flags(bench)
    flags = flags[~flags.backend.str.startswith("auto") & ~flags.stable]
    why = {k: "; ".join(f"{r.backend}: {r.unstable_reason}" for r in part.itertuples())
           for k, part in flags.groupby(keys, sort=False)}
    best = single.loc[single.groupby(keys, sort=False).value.idxmin()]
    gflops = bench[bench.metric == "gflops"].set_index(["layer", "batch", "dtype", "backend"]).value
    ratio = bench[bench.metric.isin(["ratio_to_torch", "ratio_lo", "ratio_hi"])].pivot_table(
        index=["layer", "batch", "dtype", "backend"], columns="metric", values="value", aggfunc="first")
    out = best[["suite", "layer", "batch", "dtype", "backend"]].rename(columns={"backend": "fastest"})
    not_ranked = unranked_layers(bench)
    unranked = [tuple(k) in not_ranked for k in out[keys].values]
    out["timing"] = [("unstable: " if tuple(k) in not_ranked else f"ranked; unstable but over {CLEARLY_SLOWER:g}x slower: ") + why[tuple(k)]
                     if tuple(k) in why else "stable" for k in out[keys].values]
    out["x torch [95%]"] = [_ratio_text(ratio, (r.layer, r.batch, r.dtype, r.fastest)) for r in out.itertuples()]
    out.loc[unranked, "x torch [95%]"] = ""
    out.loc[unranked, "fastest"] = "not ranked"
    out["GFLOP/s"] = [gflops.get((r.layer, r.batch, r.dtype, r.fastest), math.nan) for r in out.itertuples()]
    base = baseline()
    out[f"{base} GFLOP/s"] = [gflops.get((r.layer, r.batch, r.dtype, base), math.nan) for r in out.itertuples()]
    picks = times[times.backend == "auto"].set_index(["layer", "batch", "dtype"]).reason
    if not picks.empty:
        out["auto chose"] = [str(picks.get((r.layer, r.batch, r.dtype), "")).replace("chose ", "")
                             for r in out.itertuples()]
    out["layer"] = out.layer.str.split(".", n=1).str[-1]
    return out.set_index(["suite", "layer"])


def _ratio_text(ratio: pd.DataFrame, key) -> str:
    if key not in ratio.index:
        return ""
    row = ratio.loc[key]
    return format_ratio(*(row.get(m, math.nan) for m in ("ratio_to_torch", "ratio_lo", "ratio_hi")))


def ratio_geomean(bench: pd.DataFrame, backend: str, suites=None) -> tuple[float, float, float, int]:
    """``(geomean, lo, hi, layers)`` of ``backend``'s ratio to torch over its rows in ``bench``
    (restricted to ``suites`` when given), with :func:`harness.bench.paired.geomean_interval`."""
    rows = bench[(bench.backend == backend) & bench.metric.isin(["ratio_to_torch", "ratio_lo", "ratio_hi"])]
    if suites is not None:
        rows = rows[rows.suite.isin(list(suites))]
    wide = rows.pivot_table(index=["suite", "layer", "batch", "dtype"], columns="metric", values="value",
                            aggfunc="first")
    if wide.empty or not {"ratio_to_torch", "ratio_lo", "ratio_hi"} <= set(wide.columns):
        return math.nan, math.nan, math.nan, 0
    return (*geomean_interval(wide.ratio_to_torch, wide.ratio_lo, wide.ratio_hi), len(wide))


def auto_figures(bench: pd.DataFrame, suites=TARGET_SUITES) -> pd.DataFrame:
    """Speedup of each ``auto`` variant over each other backend: geomean of time ratios.

    One row per (auto variant, suite), plus a row over the target ``suites`` combined; a
    column per other backend with geomean(its time / auto's time) over the layers both ran
    (> 1: auto faster), and ``worst`` = the smallest of them.
    """
    times = bench[bench.metric == "time_min"].pivot_table(
        index=["suite", "layer", "batch", "dtype"], columns="backend", values="value", aggfunc="min")
    variants = [b for b in times.columns if b.startswith("auto")]
    others = [b for b in times.columns if not b.startswith("auto")]
    rows = []
    for variant in variants:
        groups = list(times.groupby(level="suite", sort=False))
        combined = times[times.index.get_level_values("suite").isin(suites)]
        if not combined.empty and len(groups) > 1:
            groups.append((" + ".join(s for s in suites if s in set(combined.index.get_level_values("suite"))),
                           combined))
        for suite, part in groups:
            row = {"auto": variant, "suite": suite, "layers": int(part[variant].notna().sum())}
            for other in others:
                row[other] = geomean(part[other] / part[variant])
            rows.append(row)
    if not rows:
        return pd.DataFrame()
    out = pd.DataFrame(rows).set_index(["auto", "suite"])
    singles = [b for b in others if b in out]
    non_torch = [b for b in singles if b != baseline()]
    out["worst"] = out[singles].min(axis=1) if singles else math.nan
    out["worst (torch aside)"] = out[non_torch].min(axis=1) if non_torch else math.nan
    return out
