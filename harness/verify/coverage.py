"""Which feature combinations and sizes a verification budget reaches.

A bug can hide in an interaction (reflect padding *with* dilation); so besides each feature
alone, the report counts every pair of features that the random cases exercise together.
A bug can also hide past a size (a channel block, a tile, a batch split): :func:`sizes_line`
names the largest sizes a verification checked and the size tiers it skipped.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
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


#: Statuses of cases whose values were checked (their sizes count as reached).
_CHECKED = ("passed", "failed", "mistrusted")


def sizes_line(report: pd.DataFrame) -> str:
    """The sizes a verification reached, and the size tiers skipped for time or memory.

    ``report`` is :func:`harness.verify`'s result for one backend and op (columns ``reach_*``,
    ``source``, ``status``, ``message``): the largest batch N, channels per group, groups,
    input plane and reduction length among the cases whose values were checked, then how many
    cases of each tier (table, random, scale) were skipped for time or refused for memory.
    """
    checked = report[report.status.isin(_CHECKED)]
    if checked.empty:
        line = "sizes reached: none"
    else:
        areas = checked.reach_plane.map(lambda p: int(np.prod([int(v) for v in str(p).split("x")])))  # any rank
        line = (f"sizes reached: N {int(checked.reach_N.max())}, C/groups {int(checked.reach_C_per_group.max())}, "
                f"groups {int(checked.reach_groups.max())}, plane {checked.reach_plane[areas.idxmax()]}, "
                f"reduction {int(checked.reach_n_acc.max())}")
    memory = report.status.eq("unsupported") & report.message.str.contains("GiB is available", regex=False)
    skipped = []
    for why, mask in (("time", report.status.eq("skipped")), ("memory", memory)):
        for source, part in report[mask].groupby("source", sort=False):
            biggest = part.loc[(part.reach_N * part.reach_C_per_group * part.reach_n_acc.clip(lower=1)).idxmax()]
            skipped.append(f"{len(part)} {source} case(s) for {why} (e.g. N {biggest.reach_N}, "
                           f"C/groups {biggest.reach_C_per_group}, plane {biggest.reach_plane})")
    if "scale" not in set(report.source):
        skipped.append("the scale tier (not run: a budget below the default)")
    return line + ("; skipped: " + ", ".join(skipped) if skipped else "")
