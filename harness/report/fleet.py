"""Machines side by side: one benchmark suite run on several machines (``convbench bench --scheduler``).

Read from ``reports/fleet.csv`` (the benchmark's long rows with a ``machine`` column) and
``reports/fleet-machines.json`` (each machine's record). Every figure is relative to the machine
it was measured on: GFLOP/s, % of *that machine's* roofline (its own measured GEMM peak and
bandwidth) and the ratio to *its own* torch, from the same interleaved rounds. Only stable
timings (:mod:`harness.bench.stability`, judged per machine) are compared; unstable ones are counted.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from harness.bench.paired import geomean
from harness.bench.stability import stable_rows, timed_flags
from harness.report.data import asv_long, baseline

FLEET_CSV = "fleet.csv"
MACHINES_JSON = "fleet-machines.json"
KEYS = ["suite", "layer", "batch", "dtype", "backend"]
REQUIRED = ("machine", *KEYS, "metric", "value")


def machines_path(fleet_csv) -> Path:
    """The machine records written beside ``fleet_csv``."""
    return Path(fleet_csv).with_name(MACHINES_JSON)


def read_fleet(path) -> pd.DataFrame:
    """The rows of a fleet results file; ValueError naming the file when it is not one."""
    frame = pd.read_csv(path)
    missing = [c for c in REQUIRED if c not in frame]
    if missing:
        raise ValueError(f"{path} is not a fleet results file (no column {', '.join(missing)}); "
                         "write one with 'convbench bench --scheduler ADDRESS'")
    return frame


def stable_by_machine(fleet: pd.DataFrame) -> pd.DataFrame:
    """The rows whose (layer, backend) timing is stable on the machine that measured it."""
    parts = [stable_rows(part) for _, part in fleet.groupby("machine", sort=False)]
    return pd.concat(parts, ignore_index=True) if parts else fleet.iloc[:0]


def per_machine(fleet: pd.DataFrame) -> pd.DataFrame:
    """One row per (backend, machine): geomean GFLOP/s, median % of the machine's own peak, geomean
    ratio to the machine's own torch (> 1: faster), stable layers, unstable layers."""
    stable = stable_by_machine(fleet)
    flags = pd.concat([timed_flags(part).assign(machine=m) for m, part in fleet.groupby("machine", sort=False)],
                      ignore_index=True) if not fleet.empty else pd.DataFrame(columns=["machine", "backend", "stable"])
    rows = []
    for (backend, machine), part in flags.groupby(["backend", "machine"], sort=True):
        mine = stable[(stable.backend == backend) & (stable.machine == machine)]
        value = {m: mine[mine.metric == m].value.astype(float) for m in ("gflops", "pct_peak", "ratio_to_torch")}
        peak = value["pct_peak"]
        rows.append({"backend": backend, "machine": machine,
                     "GFLOP/s (geomean)": geomean(value["gflops"]),
                     "% of own peak (median)": float(np.median(peak)) if len(peak) else np.nan,
                     "x own torch (geomean)": geomean(value["ratio_to_torch"]),
                     "stable layers": int(part.stable.sum()), "unstable layers": int((~part.stable).sum())})
    return pd.DataFrame(rows).set_index(["backend", "machine"]) if rows else pd.DataFrame()


def per_layer(fleet: pd.DataFrame, metric: str = "gflops") -> pd.DataFrame:
    """``metric`` of every stable (layer, backend), one column per machine (NaN: not stable or not run there)."""
    stable = stable_by_machine(fleet)
    part = stable[stable.metric == metric]
    if part.empty:
        return pd.DataFrame()
    return part.pivot_table(index=KEYS, columns="machine", values="value", aggfunc="first")


def machine_lines(records: dict) -> list[str]:
    """One line per machine record: CPU, usable CPUs, measured peaks, bandwidth, GPUs."""
    lines = []
    for name, rec in sorted(records.items()):
        try:
            cpu, peak = rec["cpu"], rec["peak"]
            gpus = ", ".join(g.get("name", "?") for g in rec.get("gpus") or []) or "none"
            lines.append(f"- **{name}**: {cpu['model']}, {cpu['usable_cpus']} usable CPUs; SGEMM "
                         f"{peak['sgemm']['gflops']:.1f} / DGEMM {peak['dgemm']['gflops']:.1f} GFLOP/s "
                         f"({peak['threads']} threads); bandwidth {rec['bandwidth']['gbs']:.1f} GB/s; GPU {gpus}")
        except (KeyError, TypeError):
            lines.append(f"- **{name}**: no usable machine record")
    return lines


def read_records(path) -> dict:
    """``{machine: record}`` from ``fleet-machines.json``; empty when there is none."""
    path = Path(path)
    if not path.is_file():
        return {}
    records = json.loads(path.read_text())
    if not isinstance(records, dict):
        raise ValueError(f"{path} is not a set of machine records (a JSON object by machine name)")
    return records


def asv_by_machine(results_dir) -> pd.DataFrame:
    """asv's results of every machine under ``results_dir``, one row per (backend, machine): geomean
    GFLOP/s (``track_gflops``), geomean ratio to the machine's own torch (its median times, same
    layer, batch, dtype and threads) and the layers behind them; empty without asv results.

    asv keeps one folder per machine (``<machine>/<commit>-<env>.json``); every commit found is
    pooled (median per point). asv records no measured peak, and its timings carry asv's own
    statistics, not convbench's stability flags.
    """
    rows = asv_long(results_dir) if results_dir is not None and Path(results_dir).is_dir() else pd.DataFrame()
    if rows.empty:
        return pd.DataFrame()
    # as text: a parameter a benchmark lacks is NaN, which grouping would drop
    rows = rows.assign(machine=rows.source.str.slice(len("asv:")).str.split("/").str[0],
                       batch=rows.batch.map(str), threads=rows.threads.map(str))
    point = ["machine", "suite", "layer", "batch", "dtype", "threads"]
    values = rows.groupby(point + ["backend", "metric"], dropna=False).value.median().reset_index()
    times = values[values.metric == "time_median"].pivot_table(index=point, columns="backend", values="value")
    base = baseline()
    out = []
    for (backend, machine), part in values.groupby(["backend", "machine"]):
        ratios = []
        if base in times and backend in times:
            mine = times.xs(machine, level="machine")
            ratios = (mine[base] / mine[backend]).dropna()
        gflops = part[part.metric == "gflops"].value
        out.append({"backend": backend, "machine": machine, "GFLOP/s (geomean)": geomean(gflops),
                    "x own torch (geomean)": geomean(ratios), "layers": int(part.layer.nunique())})
    return pd.DataFrame(out).set_index(["backend", "machine"])


def sections(fleet_csv, section, asv_dir=None) -> list:
    """The report's "Machines side by side" sections (``section`` builds one): from a fleet file and,
    when asv results hold more than one machine, from asv's results too."""
    out = []
    by_asv = asv_by_machine(asv_dir)
    if not by_asv.empty and by_asv.index.get_level_values("machine").nunique() > 1:
        out.append(section("Machines side by side: asv results", table=by_asv, lines=[
            "asv's results of each machine in the asv results folder (`convbench asv run` on each, folders copied "
            "together): GFLOP/s from `track_gflops`, the ratio to the machine's own torch from asv's median "
            "times. asv's own statistics, not convbench's stability flags; no % of peak (asv records none)."]))
    if fleet_csv is None or not Path(fleet_csv).is_file():
        return out
    fleet = read_fleet(fleet_csv)
    summary = per_machine(fleet)
    if summary.empty:
        return out
    records = read_records(machines_path(fleet_csv))
    out[:0] = [section("Machines side by side", table=summary, lines=[
        f"The same suites on {fleet.machine.nunique()} machine(s) (`convbench bench --scheduler`), one benchmark at a "
        "time per machine. Each figure is against the machine's own measurements: % of its own roofline "
        "(its measured GEMM peak and bandwidth) and the ratio to its own torch in the same rounds. Stable timings "
        "only (judged per machine); a run during which the scheduler gave that machine other work is unstable.",
        *machine_lines(records), f"Every row: `{fleet_csv}`."])]
    layers = per_layer(fleet, "gflops")
    if not layers.empty:
        out.insert(1, section("Machines side by side: GFLOP/s per layer", table=layers))
    return out
