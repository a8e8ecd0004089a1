"""Interleaved, paired timing of several backends on one case, and the ratio's interval.

Timing one backend after the other lets a disturbance of a few seconds (another process, a
frequency change) land on one backend only, and the ratio between them then says nothing.
Here the backends take turns instead:

* a **round** times every backend once, in an order shuffled per round (a seeded generator),
  so drift and interference are spread over all of them;
* within a round, each backend first **settles** (untimed calls for at least ``settle_s``: the
  previous backend's thread pools, OpenBLAS or OpenMP, keep spinning for about 0.1 s after its
  last call and would slow this one; with one thread there is no pool, and 0.01 s brings the
  backend's data back into cache), then makes ``number`` timed calls whose mean is the
  round's **sample**; ``number`` is fixed once per case so that a sample lasts about
  ``budget_s / TARGET_ROUNDS`` (short calls are averaged, which keeps timer noise out);
* rounds go on until every backend has spent ``budget_s`` in timed calls and at least
  ``min_rounds`` rounds ran, or ``max_rounds`` is reached.

The ratio to the baseline is taken **per round** (baseline sample / backend sample, both from
the same round, so both saw the same machine), and reported as the median over rounds with a
95% percentile-bootstrap interval over rounds (:func:`ratio_interval`; a fixed-seed generator,
so the same samples always give the same interval). The median of per-round ratios, not the
ratio of minima, is the estimate: it is the figure the interval belongs to.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from harness.support.timing import CACHE_MODES, Timing, call_for, fresh_copies

#: Rounds a case aims at when the budget allows (a sample lasts about budget / TARGET_ROUNDS).
TARGET_ROUNDS = 8
#: Fewest rounds a verdict is drawn from (see :mod:`harness.bench.stability`).
MIN_ROUNDS = 5
MAX_ROUNDS = 200
#: Untimed calls before each backend's sample in each round (see the module docstring).
SETTLE_S = 0.1
#: With one thread there is no pool left spinning (BLAS, torch and numba run in the calling
#: thread), so settling only has to bring the backend's own data back into cache.
SETTLE_ONE_THREAD_S = 0.01
#: A backend whose last sample took at least this long per call settles by sleeping instead of
#: calling: the other pools stop spinning all the same, and a call this long gains nothing from
#: a warm cache (an untimed call of several seconds per round would double the layer's cost).
SLOW_CALL_S = 1.0
BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Contender:
    """One backend's case, ready to time: ``fn(*args)``, ``sync()``, and its first call's time."""

    fn: object
    args: tuple
    sync: object
    first_call_s: float
    release: object = None  # forgets what the backend derived from these inputs (Backend.release); None: nothing


@dataclass
class Samples:
    """Per backend: one sample (seconds per call, mean of ``number`` calls) per round."""

    order: list = field(default_factory=list)    # the order each round ran in
    times: dict = field(default_factory=dict)    # name -> list of samples
    number: dict = field(default_factory=dict)   # name -> timed calls per sample
    calls: dict = field(default_factory=dict)    # name -> timed calls in all

    @property
    def rounds(self) -> int:
        return len(self.order)


def measure(contenders: dict, *, budget_s: float = 0.3, min_rounds: int = MIN_ROUNDS,
            max_rounds: int = MAX_ROUNDS, settle_s: float = SETTLE_S, cache: str = "hot",
            seed: int = 0, on_round=None) -> Samples:
    """Time ``contenders`` (name -> :class:`Contender`) in interleaved rounds.

    Parameters
    ----------
    contenders : dict
        Backends to time against each other on one case.
    budget_s : float
        Timed seconds each backend should accumulate (settling not counted).
    min_rounds, max_rounds : int
        Bounds on the number of rounds, whatever the budget.
    settle_s : float
        Untimed calls of a backend before its sample in every round last at least this long.
    cache : {'hot', 'cold'}
        ``cold`` gives every timed call fresh copies of the array arguments (copied untimed).
    seed : int
        Seeds the per-round shuffle.
    on_round : callable, optional
        Called (untimed) after every round, e.g. to sample the machine's state.
    """
    if cache not in CACHE_MODES:
        raise ValueError(f"cache must be one of {CACHE_MODES}, got {cache!r}")
    if min_rounds < 1 or max_rounds < min_rounds:
        raise ValueError(f"need 1 <= min_rounds <= max_rounds, got min_rounds={min_rounds}, max_rounds={max_rounds}")
    if budget_s < 0 or settle_s < 0:
        raise ValueError(f"budget_s and settle_s must be >= 0, got {budget_s} and {settle_s}")
    names = list(contenders)
    rng = np.random.default_rng(seed)
    out = Samples(times={n: [] for n in names}, calls={n: 0 for n in names})
    spent = dict.fromkeys(names, 0.0)
    while out.rounds < max_rounds and (out.rounds < min_rounds or min(spent.values(), default=0) < budget_s):
        order = [names[i] for i in rng.permutation(len(names))]
        for name in order:
            c = contenders[name]
            done = out.times[name]
            if done and done[-1] >= SLOW_CALL_S:
                time.sleep(settle_s)
                per_call = done[-1]
            else:
                per_call = _settle(c, settle_s)
            if name not in out.number:
                target = budget_s / TARGET_ROUNDS
                out.number[name] = max(1, int(target / per_call)) if per_call > 0 else 1
            elapsed = _sample(c, out.number[name], cache)
            out.times[name].append(elapsed / out.number[name])
            out.calls[name] += out.number[name]
            spent[name] += elapsed
        out.order.append(order)
        if on_round is not None:
            on_round()
    return out


def settle_seconds(threads: int) -> float:
    """Settling time per backend and round for ``threads`` threads (see the module docstring)."""
    return SETTLE_S if threads > 1 else SETTLE_ONE_THREAD_S


def _settle(c: Contender, settle_s: float) -> float:
    """Untimed calls for at least ``settle_s`` (one at least); returns seconds per call."""
    spent, calls = call_for(c.fn, c.args, c.sync, settle_s)
    return spent / calls


def _sample(c: Contender, number: int, cache: str) -> float:
    """Seconds spent in ``number`` timed calls (argument copies for ``cold`` not counted)."""
    total = 0.0
    for _ in range(number):
        args = fresh_copies(c.args) if cache == "cold" else c.args
        start = time.perf_counter()
        c.fn(*args)
        c.sync()
        total += time.perf_counter() - start
    return total


def timing_of(samples: list, calls: int, first_call_s: float, cache: str) -> Timing:
    """A :class:`~harness.support.timing.Timing` from one backend's samples (min, median, IQR)."""
    t = np.asarray(samples, dtype=float)
    q1, median, q3 = np.percentile(t, [25, 50, 75])
    return Timing(min=float(t.min()), median=float(median), iqr=float(q3 - q1), runs=int(calls),
                  first_call=first_call_s, compile=max(0.0, first_call_s - float(median)), cache=cache)


def free_indices(free, rounds: int) -> list[int]:
    """The rounds to keep, by index: those whose ``free`` flag is set (rounds that ran on a free
    machine, ``harness.support.core_speed.FreeWatch``), or all ``rounds`` when none was (or there are
    no flags): the caller then marks its figure as taken on a busy machine."""
    flags = list(free) if free else [True] * rounds
    return [i for i, ok in enumerate(flags) if ok] or list(range(rounds))


def rel_spread(samples) -> float:
    """The backend's own dispersion: IQR / median of its samples (0 for a single sample)."""
    t = np.asarray(samples, dtype=float)
    if t.size < 2:
        return 0.0
    q1, median, q3 = np.percentile(t, [25, 50, 75])
    return float((q3 - q1) / median) if median > 0 else float("nan")


def ratio_interval(baseline, other, seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES,
                   confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """``(ratio, lo, hi)``: median over rounds of baseline / other, and its bootstrap interval.

    ``baseline`` and ``other`` are per-round samples of the same rounds (paired). Rounds are
    resampled with replacement ``resamples`` times (a generator seeded with ``seed``); the
    interval is the central ``confidence`` part of the resampled medians. > 1: ``other`` is
    faster than the baseline.
    """
    base, mine = np.asarray(baseline, dtype=float), np.asarray(other, dtype=float)
    if base.shape != mine.shape or base.size == 0:
        raise ValueError(f"need paired samples of equal, non-zero length; got {base.size} and {mine.size}")
    ratios = base / mine
    ratio = float(np.median(ratios))
    if ratios.size == 1:
        return ratio, ratio, ratio
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, ratios.size, size=(resamples, ratios.size))
    medians = np.median(ratios[picks], axis=1)
    tail = (1.0 - confidence) / 2
    lo, hi = np.quantile(medians, [tail, 1.0 - tail])
    return ratio, float(lo), float(hi)


def format_ratio(ratio: float, lo: float, hi: float) -> str:
    """``1.31x [1.22, 1.40]``: a ratio always printed with its interval."""
    if not np.isfinite(ratio):
        return "n/a"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{ratio:.2f}x [?]"
    return f"{ratio:.2f}x [{lo:.2f}, {hi:.2f}]"


def geomean(values) -> float:
    """Geometric mean of the finite, positive values (None and NaN skipped); NaN when there are none."""
    v = np.asarray([np.nan if x is None else x for x in values], dtype=float) if values is not None else np.array([])
    v = v[np.isfinite(v) & (v > 0)]
    return float(np.exp(np.log(v).mean())) if v.size else float("nan")


def geomean_interval(ratios, los, his, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """``(geomean, lo, hi)`` of per-layer ratios, with an approximate interval.

    Each layer's interval is read as a normal one in log space (half-width = z * standard
    error) and layers as independent, so the geomean's log has standard error
    ``sqrt(sum(se_i^2)) / n``. NaN when no layer has a finite ratio and interval.
    """
    r, lo, hi = (np.asarray(v, dtype=float) for v in (ratios, los, his))
    ok = np.isfinite(r) & np.isfinite(lo) & np.isfinite(hi) & (r > 0) & (lo > 0) & (hi > 0)
    if not ok.any():
        return float("nan"), float("nan"), float("nan")
    r, lo, hi = r[ok], lo[ok], hi[ok]
    z = _normal_quantile(0.5 + confidence / 2)
    se = (np.log(hi) - np.log(lo)) / (2 * z)
    centre = float(np.log(r).mean())
    half = z * float(np.sqrt((se ** 2).sum())) / r.size
    return float(np.exp(centre)), float(np.exp(centre - half)), float(np.exp(centre + half))


def _normal_quantile(p: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(p)
