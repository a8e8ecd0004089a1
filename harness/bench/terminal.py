"""The benchmark table a terminal shows: one column per backend, fitted to the terminal's width.

Each cell is ``GFLOP/s (x baseline)`` to three significant figures: ``12.3 (1.52x)``; ``*``
marks an op that ran through a harness lowering, ``skipped`` a case that did not run (the
reasons follow the table). Each suite ends with its geometric means. Wider than the terminal,
the table continues in blocks that repeat the layer column (:func:`harness.support.render.fit_table`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from harness.support.render import fit_table, sig


def _geomean(values) -> float:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    return float(np.exp(np.log(v).mean())) if v.size else math.nan


def _cell(gflops: float, ratio: float, mark: str = "") -> str:
    if math.isnan(gflops):
        return ""
    return sig(gflops) + mark + ("" if math.isnan(ratio) else f" ({sig(ratio)}x)")


def results_table(results: pd.DataFrame, width: int | None = None) -> str:
    """GFLOP/s and the ratio to the baseline per layer and backend, with geomeans per suite."""
    timed = results[results.metric.isin(["gflops", "ratio_to_torch"])]
    if timed.empty:
        return "no case was timed"
    keys = ["suite", "layer", "batch", "dtype"]
    wide = timed.pivot_table(index=keys, columns=["backend", "metric"], values="value", aggfunc="first")
    wide = wide.reindex(list(dict.fromkeys(zip(*(timed[k] for k in keys)))))  # the suite's own layer order
    backends = list(dict.fromkeys(timed.backend))
    skipped = set(map(tuple, results[results.metric == "skipped"][["layer", "batch", "dtype", "backend"]].values))
    lowered = set(map(tuple, timed[timed.impl == "lowered"][["layer", "batch", "dtype", "backend"]].values))
    several = {"batch": results.batch.nunique() > 1, "dtype": results.dtype.nunique() > 1}
    rows = []
    for suite, part in wide.groupby(level="suite", sort=False):
        for (_, layer, batch, dtype), values in part.iterrows():
            row = {"layer": layer.split(".", 1)[-1] if results.suite.nunique() == 1 else layer}
            row.update({k: v for k, v in (("N", batch), ("dtype", dtype)) if several[{"N": "batch"}.get(k, k)]})
            for b in backends:
                gf, ratio = values.get((b, "gflops"), math.nan), values.get((b, "ratio_to_torch"), math.nan)
                if math.isnan(gf) and (layer, batch, dtype, b) in skipped:
                    row[b] = "skipped"
                else:
                    row[b] = _cell(gf, ratio, "*" if (layer, batch, dtype, b) in lowered else "")
            rows.append(row)
        geo = {"layer": f"geomean {suite}"}
        geo.update({k: "" for k in ("N", "dtype") if several[{"N": "batch"}.get(k, k)]})
        for b in backends:
            geo[b] = _cell(_geomean(part.get((b, "gflops"), [])), _geomean(part.get((b, "ratio_to_torch"), [])))
        rows.append(geo)
    frame = pd.DataFrame(rows)
    lines = ["GFLOP/s (x torch: torch's time / the backend's, > 1 is faster) per layer and backend:",
             fit_table(frame, keys=1 + sum(several.values()), width=width)]
    if lowered:
        lines.append("* lowered: the backend ran the op through a harness lowering onto its conv2d")
    reasons = results[results.metric == "skipped"].reason
    if not reasons.empty:
        lines.append(f"{len(reasons)} case(s) skipped; reasons in the results file (metric 'skipped'). First ones:")
        lines += [f"  - {reason}" for reason in reasons.drop_duplicates().head(5)]
    return "\n".join(lines)
