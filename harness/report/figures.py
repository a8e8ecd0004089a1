"""The report's plots that a reader scans: exact results shown as exact, points labelled by layer.

Each function takes long results (:mod:`harness.report.data`), writes one PNG atomically
and returns its path, or None when there is nothing to draw.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd



def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    import io

    from harness.support.results_io import write_atomic

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, metadata={"Software": None})
    _pyplot().close(fig)
    return write_atomic(path, buffer.getvalue())

MARKERS = "osD^v<>phx*"


def gflops_plot(results: pd.DataFrame, path: Path) -> Path | None:
    """GFLOP/s per layer per backend, one panel per suite, batch and dtype."""
    timed = results[results.metric == "gflops"]
    if timed.empty:
        return None
    plt = _pyplot()
    groups = list(timed.groupby(["suite", "batch", "dtype"], sort=False))
    widths = [max(8.0, 0.32 * part.layer.nunique() + 3) for _, part in groups]
    fig, axes = plt.subplots(len(groups), 1, figsize=(max(widths), 3.8 * len(groups)), squeeze=False)
    for ax, ((suite, batch, dtype), part) in zip(axes[:, 0], groups):
        wide = part.pivot_table(index="layer", columns="backend", values="value", aggfunc="first")
        wide = wide.reindex(list(dict.fromkeys(part.layer)))
        wide.index = [label.split(".", 1)[-1] for label in wide.index]
        wide.plot.bar(ax=ax, width=0.85, logy=True)
        ax.set_title(f"{suite}, batch {batch}, {dtype}: GFLOP/s per layer (higher is better)")
        ax.set_ylabel("GFLOP/s (dense)")
        ax.tick_params(axis="x", labelsize=7)
        ax.legend(fontsize=7, ncol=min(8, wide.shape[1]))
    fig.tight_layout()
    return _save(fig, path)


def verify_error_figure(results: pd.DataFrame, path: Path) -> Path | None:
    """Worst verification error per backend and kernel size, in units of the bound (<= 1 passes).

    A backend whose every case matched torch's float64 result bit for bit has nothing to draw
    on a log axis; it gets no bar and the word "exact" at the foot of its slot, not a sliver
    at an arbitrary floor. A non-finite error is a full-height hatched bar marked "inf/NaN".
    """
    units = results[(results.metric == "max_units") & (results.kernel != "")]
    if units.empty:
        return None
    plt = _pyplot()
    kernels = sorted(units.kernel.unique(), key=lambda k: tuple(int(v) for v in k.split("x")))
    worst = units.pivot_table(index="kernel", columns="backend", values="value", aggfunc="max").reindex(kernels)
    finite = worst.to_numpy()[np.isfinite(worst.to_numpy()) & (worst.to_numpy() > 0)]
    floor = min(1e-3, finite.min() / 3) if finite.size else 1e-3
    ceiling = max(10.0, finite.max() * 3) if finite.size else 10.0
    fig, ax = plt.subplots(figsize=(min(16.0, 4 + 0.7 * len(kernels) * max(1, worst.shape[1]) / 3), 4.6))
    width = 0.85 / worst.shape[1]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for j, backend in enumerate(worst.columns):
        x = np.arange(len(kernels)) - 0.425 + (j + 0.5) * width
        values = worst[backend].to_numpy()
        colour = colours[j % len(colours)]
        shown = np.where(np.isfinite(values) & (values > 0), values, np.nan)
        ax.bar(x, shown - floor, bottom=floor, width=width, color=colour, label=backend)
        for xi, v in zip(x, values):
            if v == 0:
                ax.text(xi, floor * 1.15, "exact", rotation=90, ha="center", va="bottom", fontsize=7, color=colour)
            elif not np.isnan(v) and not np.isfinite(v):
                ax.bar(xi, ceiling - floor, bottom=floor, width=width, color="none", edgecolor=colour, hatch="//")
                ax.text(xi, ceiling, "inf/NaN", rotation=90, ha="center", va="top", fontsize=7)
    ax.axhline(1.0, color="red", lw=1.2, label="bound: 1 unit (above fails)")
    ax.set_yscale("log")
    ax.set_ylim(floor, ceiling)
    ax.set_xticks(range(len(kernels)))
    ax.set_xticklabels(kernels)
    ax.set_xlabel("kernel size (KH x KW)")
    ax.set_ylabel("worst error, units of its bound")
    ax.set_title("verification: worst error per backend and kernel size ('exact': bit-identical to the reference)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the bars, never over them
    fig.tight_layout()
    return _save(fig, path)


def _per_point(results: pd.DataFrame) -> pd.DataFrame:
    wide = results[results.metric.isin(["gflops", "cpr", "intensity"])].pivot_table(
        index=["suite", "layer", "batch", "dtype", "backend"], columns="metric", values="value", aggfunc="first")
    if wide.empty or not {"gflops", "cpr", "intensity"} <= set(wide.columns):
        return pd.DataFrame()
    wide = wide.dropna(subset=["gflops"]).reset_index()
    wide["short"] = wide.layer.str.split(".", n=1).str[-1]
    return wide


def _label_layers(ax, points: pd.DataFrame, x: str) -> None:
    """Name each layer once, beside its fastest backend's point."""
    best = points.loc[points.groupby(["suite", "layer", "batch", "dtype"]).gflops.idxmax()]
    placed = []  # (log x, log y) of labels so far: a label close to one is moved down a line
    for row in best.sort_values([x, "gflops"], ascending=[True, False]).itertuples():
        where = (np.log10(getattr(row, x)), np.log10(row.gflops))
        near = sum(abs(where[0] - px) < 0.08 and abs(where[1] - py) < 0.15 for px, py in placed)
        placed.append(where)
        ax.annotate(row.short, (getattr(row, x), row.gflops), xytext=(4, 2 - 8 * near), textcoords="offset points",
                    fontsize=6, color="#333")


def _scatter(ax, points: pd.DataFrame, x: str) -> None:
    for i, (backend, part) in enumerate(points.groupby("backend")):
        ax.scatter(part[x], part.gflops, s=20, marker=MARKERS[i % len(MARKERS)], label=backend, alpha=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_ylabel("achieved GFLOP/s (dense)")


def gflops_cpr_figure(results: pd.DataFrame, path: Path) -> Path | None:
    """Achieved GFLOP/s against CPR (multiply-adds per weight), each layer named once."""
    points = _per_point(results)
    if points.empty:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 5.5))
    _scatter(ax, points, "cpr")
    _label_layers(ax, points, "cpr")
    ax.set_xlabel("CPR: multiply-adds per weight (low: each weight is used few times, the layer is memory-bound)")
    ax.set_title("GFLOP/s against CPR; each layer named at its fastest backend")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return _save(fig, path)


def roofline_figure(results: pd.DataFrame, machine: dict | None, path: Path) -> Path | None:
    """Achieved GFLOP/s against arithmetic intensity under the measured roofline, layers named.

    The roof is ``min(peak, intensity * bandwidth)``, the peak scaled to the run's thread
    count (the same count the report's header states).
    """
    points = _per_point(results)
    if points.empty:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 5.5))
    _scatter(ax, points, "intensity")
    _label_layers(ax, points, "intensity")
    if machine:
        from harness.support.machine import peak_gflops

        threads = results.threads.dropna()
        threads = int(threads.max()) if not threads.empty else None
        dtype = results.dtype.dropna().iloc[0] if not results.dtype.dropna().empty else "float32"
        peak, bandwidth = peak_gflops(machine, dtype, threads), machine["bandwidth"]["gbs"]
        ai = np.logspace(np.log10(max(points.intensity.min() / 2, 1e-2)), np.log10(points.intensity.max() * 2), 200)
        ax.plot(ai, np.minimum(peak, ai * bandwidth), "k-", lw=1.5,
                label=f"roofline: {peak:.0f} GFLOP/s ({dtype}, {threads} thread(s)), {bandwidth:.0f} GB/s")
    ax.set_xlabel("arithmetic intensity (FLOP per byte moved at minimum)")
    ax.set_title("roofline: GFLOP/s against arithmetic intensity; each layer named at its fastest backend")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return _save(fig, path)
