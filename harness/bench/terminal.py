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

from harness.bench import paired, stability
from harness.support.render import fit_table, sig



def _cell(gflops: float, ratio: str, mark: str = "", flag: str = "") -> str:
    if math.isnan(gflops):
        return ""
    return sig(gflops) + mark + (f" ({ratio})" if ratio != "n/a" else "") + flag


def _ratio(values, backend) -> str:
    """``1.31x [1.22, 1.40]``: the paired ratio to the baseline and its 95% interval."""
    return paired.format_ratio(*(values.get((backend, m), math.nan) for m in ("ratio_to_torch", "ratio_lo", "ratio_hi")))


def results_table(results: pd.DataFrame, width: int | None = None) -> str:
    """GFLOP/s and the ratio to the baseline (with its 95% interval) per layer and backend;
    unstable rows marked ``!`` and left out of each suite's geometric means."""
    timed = results[results.metric.isin(["gflops", "ratio_to_torch", "ratio_lo", "ratio_hi"])]
    if timed.empty:
        return "no case was timed"
    keys = ["suite", "layer", "batch", "dtype"]
    wide = timed.pivot_table(index=keys, columns=["backend", "metric"], values="value", aggfunc="first")
    wide = wide.reindex(list(dict.fromkeys(zip(*(timed[k] for k in keys)))))  # the suite's own layer order
    backends = list(dict.fromkeys(timed.backend))
    skipped = set(map(tuple, results[results.metric == "skipped"][["layer", "batch", "dtype", "backend"]].values))
    lowered = set(map(tuple, timed[timed.impl == "lowered"][["layer", "batch", "dtype", "backend"]].values))
    flags = stability.timed_flags(results)
    unstable = set(map(tuple, flags[~flags.stable][["layer", "batch", "dtype", "backend"]].values)) \
        if not flags.empty else set()
    several = {"batch": results.batch.nunique() > 1, "dtype": results.dtype.nunique() > 1}
    rows = []
    for suite, part in wide.groupby(level="suite", sort=False):
        for (_, layer, batch, dtype), values in part.iterrows():
            row = {"layer": layer.split(".", 1)[-1] if results.suite.nunique() == 1 else layer}
            row.update({k: v for k, v in (("N", batch), ("dtype", dtype)) if several[{"N": "batch"}.get(k, k)]})
            for b in backends:
                gf = values.get((b, "gflops"), math.nan)
                here = (layer, batch, dtype, b)
                if math.isnan(gf) and here in skipped:
                    row[b] = "skipped"
                else:
                    row[b] = _cell(gf, _ratio(values, b), "*" if here in lowered else "", "!" if here in unstable else "")
            rows.append(row)
        geo = {"layer": f"geomean {suite} (stable)"}
        geo.update({k: "" for k in ("N", "dtype") if several[{"N": "batch"}.get(k, k)]})
        for b in backends:
            good = [k for k in part.index if (k[1], k[2], k[3], b) not in unstable]
            sub = part.loc[good] if good else part.iloc[:0]
            interval = paired.geomean_interval(*(sub.get((b, m), pd.Series(dtype=float))
                                                 for m in ("ratio_to_torch", "ratio_lo", "ratio_hi")))
            geo[b] = _cell(paired.geomean(sub.get((b, "gflops"), [])), paired.format_ratio(*interval))
        rows.append(geo)
    frame = pd.DataFrame(rows)
    lines = ["GFLOP/s (x torch [95% interval]: torch's time / the backend's, paired per round; > 1 is faster):",
             fit_table(frame, keys=1 + sum(several.values()), width=width)]
    if lowered:
        lines.append("* lowered: the backend ran the op through a harness lowering onto its conv2d")
    if unstable:
        lines.append(f"! unstable timing ({len(unstable)} row(s)): left out of the geomeans, never a layer's winner; "
                     "reasons in the 'warning:' lines and the results file (unstable_reason)")
    reasons = results[results.metric == "skipped"].reason
    if not reasons.empty:
        lines.append(f"{len(reasons)} case(s) skipped; reasons in the results file (metric 'skipped'). First ones:")
        lines += [f"  - {reason}" for reason in reasons.drop_duplicates().head(5)]
    return "\n".join(lines)
