"""The report: stored verification and benchmark results -> Markdown, CSV and a plot in reports/.

Everything is regenerated from the results files (no re-running): ``convbench report``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import bench
from .capabilities import capability_matrix
from .machine import summary_lines
from .results_io import write_atomic
from .verifier import summarize

REPORTS = Path("reports")


def read_results(path, required_columns) -> pd.DataFrame:
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


def markdown_table(frame: pd.DataFrame, float_format="{:.3g}") -> str:
    """A GitHub-flavoured Markdown table of ``frame`` (index included)."""
    frame = frame.reset_index()
    cells = [[_cell(v, float_format) for v in row] for row in frame.itertuples(index=False)]
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    return "\n".join([header, rule] + ["| " + " | ".join(row) + " |" for row in cells])


def _cell(value, float_format) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return "" if np.isnan(value) else float_format.format(value)
    return str(value)


def gflops_plot(results: pd.DataFrame, path: Path) -> Path | None:
    """GFLOP/s per layer per backend, one panel per suite and batch; None if nothing was timed."""
    timed = results[results.metric == "gflops"]
    if timed.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(timed.groupby(["suite", "batch", "dtype"], sort=False))
    fig, axes = plt.subplots(len(groups), 1, figsize=(11, 3.6 * len(groups)), squeeze=False)
    for ax, ((suite, batch, dtype), part) in zip(axes[:, 0], groups):
        wide = part.pivot_table(index="layer", columns="backend", values="value", aggfunc="first")
        wide = wide.reindex(list(dict.fromkeys(part.layer)))
        wide.index = [label.split(".", 1)[-1] for label in wide.index]
        wide.plot.bar(ax=ax, width=0.8, logy=True)
        ax.set_title(f"{suite}, batch {batch}, {dtype}")
        ax.set_ylabel("GFLOP/s (dense)")
        ax.tick_params(axis="x", labelsize=7)
        ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
    return path


def write_report(verify_csv=REPORTS / "verify.csv", bench_csv=REPORTS / "bench.csv",
                 machine: dict | None = None, out=REPORTS / "summary.md") -> Path:
    """Build ``summary.md`` (and ``gflops.png``) from whichever results files exist."""
    out = Path(out)
    parts = ["# convbench report", "", f"Generated {time.strftime('%Y-%m-%d %H:%M:%S %Z')} from stored results.", ""]
    if machine:
        parts += ["## Machine", "", "```", *summary_lines(machine), "```", ""]
    parts += ["## Backends", "", markdown_table(_matrix_for_report()), ""]
    parts += [f"- {b}: unavailable, {reason}" for b, reason in capability_matrix()["reason"].items() if reason]
    parts += [""]
    if verify_csv is not None and Path(verify_csv).is_file():
        verified = read_results(verify_csv, ["backend", "status", "max_units", "case"])
        parts += _verification_section(verified, verify_csv)
    if bench_csv is not None and Path(bench_csv).is_file():
        results = read_results(bench_csv, ["backend", "suite", "layer", "metric", "value"])
        plot = gflops_plot(results, out.parent / "gflops.png")
        parts += ["## Benchmark", "",
                  "Dense GFLOP/s (seed formula, padding taps counted) per layer and backend, and the ratio",
                  "torch time / backend time from the same run (> 1: faster than torch).", "",
                  "```", bench.table(results), "```", ""]
        if plot:
            parts += [f"![GFLOP/s per layer]({plot.name})", ""]
        parts += [f"All figures: `{bench_csv}`.", ""]
    write_atomic(out, "\n".join(parts))
    return out


def _matrix_for_report() -> pd.DataFrame:
    """Backends as columns (there are fewer backends than features); reasons listed below it."""
    matrix = capability_matrix().drop(columns=["reason"])
    return matrix.astype(object).T.rename_axis("feature")


def _verification_section(verified: pd.DataFrame, path) -> list[str]:
    summary = summarize(verified)
    lines = ["## Verification", "",
             "Cases per status, and the worst error in units of the error bound (<= 1 passes).", "",
             markdown_table(summary), ""]
    failed = verified[verified.status == "failed"]
    if failed.empty:
        lines += ["Every case passed or was reported unsupported / mistrusted.", ""]
    for name, rows in failed.groupby("backend"):
        lines += [f"**{name}**: {len(rows)} failed. Minimal reproducer:", "", "```"]
        minimal = rows[rows.get("minimal", False) == True]  # noqa: E712 (column of bools)
        lines += [(minimal if not minimal.empty else rows).iloc[0].reproducer, "```", ""]
    lines += [f"All cases: `{path}`.", ""]
    return lines
