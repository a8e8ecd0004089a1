"""The report's plots (matplotlib, Agg): each function takes long results, writes one PNG
atomically, and returns its path, or None when there is nothing to draw."""

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
    from harness.support.results_io import write_atomic

    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    _pyplot().close(fig)
    return write_atomic(path, buffer.getvalue())


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


def roofline_plot(results: pd.DataFrame, machine: dict | None, path: Path) -> Path | None:
    """Achieved GFLOP/s against CPR and against arithmetic intensity, with the roofline.

    The roofline is ``min(peak, intensity * bandwidth)`` from ``convbench env``'s measured
    GEMM peak (scaled to the run's thread count) and copy bandwidth.
    """
    wide = results[results.metric.isin(["gflops", "cpr", "intensity"])].pivot_table(
        index=["suite", "layer", "batch", "dtype", "backend"], columns="metric", values="value", aggfunc="first")
    if wide.empty or not {"gflops", "cpr", "intensity"} <= set(wide.columns):
        return None
    wide = wide.dropna(subset=["gflops"]).reset_index()
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    markers = "osD^v<>phx*"
    for i, (backend, part) in enumerate(wide.groupby("backend")):
        for ax, x in zip(axes, ("cpr", "intensity")):
            ax.scatter(part[x], part.gflops, s=18, marker=markers[i % len(markers)], label=backend, alpha=0.75)
    if machine:
        from harness.support.machine import peak_gflops

        threads = results.threads.dropna()
        threads = int(threads.max()) if not threads.empty else None
        dtype = results.dtype.dropna().iloc[0] if not results.dtype.dropna().empty else "float32"
        peak, bandwidth = peak_gflops(machine, dtype, threads), machine["bandwidth"]["gbs"]
        ai = np.logspace(np.log10(max(wide.intensity.min() / 2, 1e-2)), np.log10(wide.intensity.max() * 2), 200)
        axes[1].plot(ai, np.minimum(peak, ai * bandwidth), "k-", lw=1.5,
                     label=f"roofline: {peak:.0f} GFLOP/s, {bandwidth:.0f} GB/s")
        axes[0].axhline(peak, color="k", lw=1.5, label=f"peak {peak:.0f} GFLOP/s ({dtype}, {threads} thr)")
    for ax, x, label in ((axes[0], "cpr", "CPR (multiply-adds per weight)"),
                         (axes[1], "intensity", "arithmetic intensity (FLOP per byte moved at minimum)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("achieved GFLOP/s (dense)")
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=7)
    axes[0].set_title("GFLOP/s against CPR")
    axes[1].set_title("GFLOP/s against arithmetic intensity, with the measured roofline")
    fig.tight_layout()
    return _save(fig, path)


def verify_error_plot(results: pd.DataFrame, path: Path) -> Path | None:
    """Worst verification error (units of the bound; <= 1 passes) by backend and kernel size."""
    units = results[(results.metric == "max_units") & (results.kernel != "")]
    if units.empty:
        return None
    plt = _pyplot()
    kernels = sorted(units.kernel.unique(), key=lambda k: tuple(int(v) for v in k.split("x")))
    worst = units.pivot_table(index="kernel", columns="backend", values="value", aggfunc="max").reindex(kernels)
    floor, ceiling = 1e-6, 1e6  # exact results (0 units) at the floor; non-finite errors at the ceiling
    fig, ax = plt.subplots(figsize=(min(16.0, 4 + 0.5 * len(kernels)), 4.5))
    worst.replace([np.inf, -np.inf], np.nan).fillna(ceiling).where(worst.notna()).clip(floor, ceiling).plot.bar(
        ax=ax, logy=True, width=0.85)
    ax.axhline(1.0, color="red", lw=1.2, label="error bound (1 unit)")
    ax.set_xlabel("kernel size (KH x KW)")
    ax.set_ylabel("worst error, units of its bound")
    ax.set_title(f"verification: worst error per backend and kernel size (exact at {floor:g}, inf/NaN at {ceiling:g})")
    ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    return _save(fig, path)
