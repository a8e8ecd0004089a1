"""Which feature combinations a verification budget reaches.

A bug can hide in an interaction (reflect padding *with* dilation); so besides each feature
alone, the report counts every pair of features that the random cases exercise together.
"""

from __future__ import annotations

from itertools import combinations

import pandas as pd

from harness.ops.table import op_info

#: Pairs no call can have: 'same' (the only source of asymmetric padding) needs stride 1;
#: a call is depthwise or grouped, not both; one padding mode per call.
IMPOSSIBLE_PAIRS = frozenset(
    frozenset(p) for p in [
        ("asymmetric_padding", "stride"),
        ("depthwise", "groups"),
        ("padding_mode=reflect", "padding_mode=replicate"),
        ("padding_mode=reflect", "padding_mode=circular"),
        ("padding_mode=replicate", "padding_mode=circular"),
    ]
)


def coverage(features, dtypes, cases: int, seed: int = 0, op: str = "conv2d") -> pd.DataFrame:
    """One row per feature and per possible pair: how many random cases exercise it."""
    drawn = op_info(op).random_cases(features, dtypes, cases, seed)
    used = [case.spec.features for case in drawn]
    rows = [{"combination": f, "size": 1, "cases": sum(f in u for u in used)} for f in sorted(features)]
    for a, b in combinations(sorted(features), 2):
        if frozenset((a, b)) not in IMPOSSIBLE_PAIRS:
            rows.append({"combination": f"{a} + {b}", "size": 2, "cases": sum(a in u and b in u for u in used)})
    return pd.DataFrame(rows, columns=["combination", "size", "cases"])  # columns even with no features


def coverage_line(report: pd.DataFrame) -> str:
    singles, pairs = report[report["size"] == 1], report[report["size"] == 2]
    missing = pairs[pairs.cases == 0].combination.tolist()
    line = (f"features reached: {int((singles.cases > 0).sum())}/{len(singles)} "
            f"(fewest cases: {int(singles.cases.min()) if len(singles) else 0}); "
            f"feature pairs reached: {int((pairs.cases > 0).sum())}/{len(pairs)}")
    return line + (f"; never together: {', '.join(missing)}" if missing else "")
