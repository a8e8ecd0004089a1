"""The capability matrix: one table, from the registry, for the CLI, tests and reports."""

from __future__ import annotations

import pandas as pd

from harness.backend.registry import OP_FEATURES, backends


def capability_matrix(op: str = "conv2d") -> pd.DataFrame:
    """One row per backend: where it runs, whether it can here (and why not), what it claims."""
    rows = []
    for b in backends():
        row = {
            "backend": b.name,
            "device": b.device,
            "available": b.available,
            "reason": b.reason or "",
            "dtypes": ",".join(sorted(b.dtypes)),
            "exact": b.exact,
            "deterministic": b.deterministic,
            "role": b.role,
            "error_model": b.model.name,
            "auto_cost_model": b.cost is not None,
            op: op in b.ops,
            "implementation": b.op_impl(op) or "",
        }
        declared = b.features.get(op, frozenset())
        row.update({feature: feature in declared for feature in sorted(OP_FEATURES[op])})
        rows.append(row)
    return pd.DataFrame(rows).set_index("backend")


def op_matrix() -> pd.DataFrame:
    """Backend x op: ``native``, ``lowered`` (provided by the harness on the backend's conv2d), or ''."""
    return pd.DataFrame(
        [{"backend": b.name, **{op: b.op_impl(op) or "" for op in OP_FEATURES}} for b in backends()]
    ).set_index("backend")


def render_op_matrix(matrix: pd.DataFrame) -> str:
    """Text rendering, one row per op: N = native, L = lowered by the harness, . = absent."""
    short = matrix.replace({"native": "N", "lowered": "L", "": "."}).T
    return short.to_string() + "\n\nN = native, L = lowered by the harness (harness/ops/lowering.py), . = absent"


def render_matrix(matrix: pd.DataFrame) -> str:
    """Text rendering, one column per backend: yes/no as 'x' and '.'."""
    shown = matrix.drop(columns=["reason"]).astype(object).replace({True: "x", False: "."}).T
    text = shown.to_string()
    notes = [f"  {name}: {reason}" for name, reason in matrix["reason"].items() if reason]
    if notes:
        text += "\n\nunavailable:\n" + "\n".join(notes)
    return text
