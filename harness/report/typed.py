"""``harness.read_results(path)``: any convbench results file back as a DataFrame with pinned dtypes.

CSV loses types: a column of reproducers that are all empty reads back as float NaN, a
column of ``2`` and ``"(2, 2)"`` as object, batch sizes as float once one is missing. This
reader knows convbench's columns and gives each one dtype, whatever the values:

========================  ==========================================================
text (``str``)            backend, op, status, case, message, reproducer, stride,
                          padding, dilation (the arguments as written), shapes, ...
integers (``Int64``)      N, C, H, W, O, KH, KW, OH, OW, stride_h ... dilation_w,
                          groups, seed, n_acc, batch, threads (missing stays <NA>)
floats (``float64``)      value, max_units, max_abs_err, seconds
booleans (``boolean``)    exact, bias, minimal, git_dirty
========================  ==========================================================

Columns it does not know keep what pandas read.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.report.data import BENCH_COLUMNS, LONG_COLUMNS, VERIFY_COLUMNS, read_csv_results
from harness.verify.tidy import AXIS_COLUMNS

INTEGER = (*AXIS_COLUMNS, "groups", "seed", "n_acc", "batch", "threads")
FLOAT = ("value", "max_units", "max_abs_err", "seconds")
BOOLEAN = ("exact", "bias", "minimal", "git_dirty")
TEXT = ("backend", "op", "source", "status", "message", "case", "reproducer", "features", "x_shape", "w_shape",
        "stride", "padding", "dilation", "padding_mode", "dtype", "fill", "layout", "suite", "layer", "metric",
        "impl", "cache", "reason", "kernel", "git_commit", "run")


def kind_of(columns) -> str:
    """``verify``, ``bench`` or ``long`` (``convbench report``'s results.csv) from a file's columns."""
    columns = set(columns)
    if set(VERIFY_COLUMNS) <= columns:
        return "verify"
    if set(LONG_COLUMNS) <= columns:
        return "long"
    if set(BENCH_COLUMNS) <= columns:
        return "bench"
    raise ValueError(f"columns {sorted(columns)} are not those of a convbench results file "
                     "(verify.csv, bench.csv or results.csv)")


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every known column cast to its pinned dtype (a new frame)."""
    out = frame.copy()
    for column in out.columns:
        if column in TEXT:
            out[column] = out[column].astype(object).where(out[column].notna(), "").astype(str)
        elif column in INTEGER:
            out[column] = pd.to_numeric(out[column], errors="coerce").round().astype("Int64")
        elif column in FLOAT:
            out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
        elif column in BOOLEAN:
            out[column] = out[column].map(_bool).astype("boolean")
    return out


def _bool(value):
    if isinstance(value, str):
        return {"true": True, "false": False}.get(value.strip().lower(), pd.NA)
    return pd.NA if pd.isna(value) else bool(value)


def read_results(path) -> pd.DataFrame:
    """A convbench results file as a DataFrame with pinned dtypes.

    Parameters
    ----------
    path : str or Path
        ``verify.csv`` (``convbench verify``), ``bench.csv`` (``convbench bench``), or
        ``results.csv`` (``convbench report``, the long layout of every result).

    Returns
    -------
    pandas.DataFrame
        One row per case (verify) or per (backend, layer, metric) (bench, results); dtypes as
        in this module's table; ``frame.attrs["kind"]`` says which file it was.

    Raises
    ------
    ValueError
        The file is missing, truncated, empty or not a convbench results file (the message
        names it).

    Examples
    --------
    >>> frame = harness.read_results("reports/verify.csv")          # doctest: +SKIP
    >>> frame[(frame.stride_h == 2) & (frame.status == "failed")]   # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such results file")
    frame = read_csv_results(path, ())
    kind = kind_of(frame.columns)
    out = typed(frame)
    out.attrs["kind"] = kind
    return out
