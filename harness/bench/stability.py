"""The one rule that decides whether a timing can be trusted, used by bench, run and the report.

A measured (backend, layer) row is **unstable** when any of these holds:

* fewer than :data:`MIN_ROUNDS` interleaved rounds ran (too few to bound the ratio);
* the 95% interval of its ratio to the baseline is wide: ``(hi - lo) / ratio >`` :data:`MAX_INTERVAL_WIDTH`
  (20%): the paired rounds disagree, so the ratio could be far from what is printed;
* its own times spread: IQR / median of its samples ``>`` :data:`MAX_REL_SPREAD` (20%);
* the machine was oversubscribed while the layer ran (other processes' busy cores + our
  threads > usable cores, see :mod:`harness.support.machine_state`), or the hypervisor stole more than
  :data:`MAX_STEAL_PCT` % of the CPU time;
* a core ran contended when probed before or after the layer (:mod:`harness.support.core_speed`:
  below 85% of its fastest speed in the process): another guest on its physical core or the host,
  which load and steal do not show, and which slowed a 2-thread layer 1.65x on the project machine.

Unstable rows are kept, flagged (``stable`` False, ``unstable_reason`` saying why), and never
used for a headline claim. A layer still names its fastest backend (:func:`unranked_layers`) when
that backend is stable and every unstable one took at least :data:`CLEARLY_SLOWER` times as long
in its best round: noise on a backend that far behind cannot change who is fastest. The thresholds are deliberately coarse: they are there to catch
the measurements that are wrong by tens of percent or more (a busy machine gave 5018x torch
on a layer that is 0.5-1.5x on a quiet one), not to certify small differences.
"""

from __future__ import annotations

import math

import pandas as pd

from harness.bench.paired import MIN_ROUNDS

MAX_INTERVAL_WIDTH = 0.20
MAX_REL_SPREAD = 0.20
MAX_STEAL_PCT = 10.0
#: An unstable backend whose best time is at least this many times the fastest backend's does not
#: stop the layer from being ranked (in the main job FFT, 10-30x slower and noisy, left 16 of 16
#: representative layers unranked, 2026-12-02).
CLEARLY_SLOWER = 2.0


def verdict(*, rounds: int, rel_spread: float, ratio: float | None = None, lo: float | None = None,
            hi: float | None = None, oversubscribed: str | None = None,
            steal_pct: float | None = None, contended: str | None = None) -> tuple[bool, str]:
    """``(stable, reason)`` for one measured row; ``reason`` is "" when stable.

    ``ratio``, ``lo`` and ``hi`` are None when there was no baseline to compare with;
    ``oversubscribed`` is the reason :func:`harness.support.machine_state.oversubscription` gave, or None;
    ``contended`` the one :func:`harness.support.core_speed.contention` gave, or None.
    """
    reasons = []
    if oversubscribed:
        reasons.append(oversubscribed)
    if contended:
        reasons.append(contended)
    if steal_pct is not None and steal_pct > MAX_STEAL_PCT:
        reasons.append(f"CPU steal {steal_pct:.0f}% (> {MAX_STEAL_PCT:g}%)")
    if rounds < MIN_ROUNDS:
        reasons.append(f"only {rounds} round(s) (< {MIN_ROUNDS})")
    if ratio is not None and lo is not None and hi is not None and ratio > 0 and math.isfinite(ratio):
        width = (hi - lo) / ratio
        if width > MAX_INTERVAL_WIDTH:
            reasons.append(f"ratio interval [{lo:.2f}, {hi:.2f}] is {100 * width:.0f}% wide "
                           f"(> {100 * MAX_INTERVAL_WIDTH:.0f}%)")
    if not math.isfinite(rel_spread) or rel_spread > MAX_REL_SPREAD:
        reasons.append(f"times spread {100 * rel_spread:.0f}% (IQR/median > {100 * MAX_REL_SPREAD:.0f}%)")
    return not reasons, "; ".join(reasons)


def timed_flags(results: pd.DataFrame) -> pd.DataFrame:
    """One row per timed (suite, layer, batch, dtype, backend) with its ``stable`` and reason.

    Results without a ``stable`` column (written before the flags existed) come out unstable,
    with a reason saying so: nothing vouches for them.
    """
    keys = ["suite", "layer", "batch", "dtype", "backend"]
    timed = results[results.metric == "time_min"]
    if "stable" not in timed:
        timed = timed.assign(stable=False, unstable_reason="measured without stability flags (re-run the benchmark)")
    flags = timed[keys + ["stable", "unstable_reason"]].drop_duplicates(keys)
    flags = flags.assign(stable=flags.stable.map(_as_bool),
                         unstable_reason=flags.unstable_reason.fillna("").astype(str))
    return flags.reset_index(drop=True)


def _as_bool(value) -> bool:
    """``stable`` as read back from a CSV (True/False, 'True'/'False', 1.0/0.0, NaN = False)."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "1.0", "yes")
    try:
        return bool(value) and not (isinstance(value, float) and math.isnan(value))
    except (TypeError, ValueError):
        return False


def stable_rows(results: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``results`` whose (layer, backend) measurement is stable."""
    flags = timed_flags(results)
    keys = ["suite", "layer", "batch", "dtype", "backend"]
    good = set(map(tuple, flags[flags.stable][keys].values))
    mask = [tuple(k) in good for k in results[keys].values]
    return results[mask]


def unranked_layers(results: pd.DataFrame) -> set[tuple]:
    """``(suite, layer, batch, dtype)`` of the layers that name no fastest backend: the fastest single
    backend (``auto`` aside) is unstable, or an unstable one's best time is within
    :data:`CLEARLY_SLOWER` times the fastest's (its noise could hide that it is the fastest)."""
    keys = ["suite", "layer", "batch", "dtype"]
    flags = timed_flags(results)
    flags = flags[~flags.backend.str.startswith("auto")]
    times = results[(results.metric == "time_min") & ~results.backend.str.startswith("auto")]
    best = times.drop_duplicates(keys + ["backend"]).set_index(keys + ["backend"]).value
    out = set()
    for key, part in flags.groupby(keys, sort=False):
        seconds = {b: best.get((*key, b), math.nan) for b in part.backend}
        fastest = min(seconds, key=lambda b: seconds[b] if math.isfinite(seconds[b]) else math.inf)
        stable = dict(zip(part.backend, part.stable))
        if not stable[fastest] or any(not stable[b] and not seconds[b] >= CLEARLY_SLOWER * seconds[fastest]
                                      for b in seconds):
            out.add(tuple(key))
    return out


def warning_lines(results: pd.DataFrame) -> list[str]:
    """One ``warning:`` line per unstable layer (suite, layer, batch, dtype): which backends, why,
    and whether the layer is still ranked (:func:`unranked_layers`)."""
    flags = timed_flags(results)
    bad = flags[~flags.stable]
    unranked = unranked_layers(results)
    lines = []
    for (suite, layer, batch, dtype), part in bad.groupby(["suite", "layer", "batch", "dtype"], sort=False):
        reasons = part.groupby("unstable_reason", sort=False).backend.apply(lambda b: ", ".join(b))
        why = "; ".join(f"{backends}: {reason}" for reason, backends in reasons.items())
        verdict = ("not ranked" if (suite, layer, batch, dtype) in unranked
                   else f"still ranked: each unstable backend took over {CLEARLY_SLOWER:g}x the fastest's time")
        lines.append(f"warning: {layer} N={batch} {dtype}: unstable timing, {verdict} ({why})")
    return lines
