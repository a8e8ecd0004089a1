"""Calibrating ``auto`` on this machine, and judging it on layers it was not fitted on.

* :func:`calibrate` times the modelled backends (every available backend with a
  ``CostModel``, plug-ins included, the reference left out) on a set of layers
  (:func:`time_probes`), fits each backend's constants (:func:`harness.autoselect.fit`),
  evaluates the fit leave-one-suite-out (:func:`held_out`) on the same measured times, and saves
  it all as this machine's calibration (:func:`harness.autoselect.save_calibration`).
* :data:`PROBE` is the small, diverse default set that ``convbench run`` uses when the
  machine has no calibration yet: stems, 3x3 at batch 1 and 8, 1x1, strided, grouped,
  depthwise and large kernels from nine suites.
* :func:`time_probes` keeps it to about a minute: each (backend, layer) is timed once, best of
  a few calls within :data:`MEASURE_S` after the thread pools settle, not in interleaved rounds
  (a calibration ranks backends that differ by tens of percent or more); a candidate that the
  shipped constants predict :data:`RULED_OUT` times slower than the fastest is not timed (unless it
  has fewer than :data:`REGIME_MIN` layers of that regime so far), and one whose
  first call is :data:`SLOW_FIRST` times the best so far keeps that one call as its time; the
  samples furthest above the first fit are timed once more (:func:`retime_outliers`). The cores'
  speed is probed before and after every sample (:mod:`harness.support.core_speed`); a sample timed
  on a contended core is timed again until one timing runs free, at most :data:`CONTENDED_RETRIES`
  more times (:func:`retime_contended`), and one that never did stays marked ``contended``.
* :func:`held_out`: for each suite, fit on every other suite's layers and let the estimate
  pick among the candidates on the held-out suite's layers; per layer, the pick's measured
  time over the measured best candidate's. A layer whose samples or tie-break ran on a contended
  core is shown and counted, but its ratio is left out of the summary's figures (:func:`summary`).
"""

from __future__ import annotations

import math
import sys
import time
from typing import NamedTuple

import numpy as np

from harness import autoselect
from harness.backend import dispatch
from harness.backend.registry import backends, get_backend
from harness.bench import runner as bench
from harness import suites
from harness.errors import Unsupported
from harness.support import core_speed
from harness.support.allocator import steady_heap
from harness.support.timing import pinned_threads, set_threads, time_call, time_once

#: ``suite.layer@batch`` of the default probe set: every algorithm's regime (stems, 3x3
#: stride 1 shallow and deep at batch 1 and 8, 1x1, strided, grouped at group widths 4 to 16,
#: depthwise 3x3 / 5x5 / 7x7, large dense and depthwise kernels) from nine suites, so that each
#: leave-one-suite-out fold still sees every regime (grouped layers in two suites, depthwise in
#: three). The largest layers of earlier sets (VGG's 224x224 convolutions, a batch-8 stem) are
#: left out: they cost most of the time and add no regime.
PROBE = (
    "resnet50.conv1@1", "resnet50.res2_3x3@1", "resnet50.res4_3x3@1", "resnet50.res3_3x3@8",
    "resnet50.res3_1x1_expand@1", "resnet50.res5_1x1_reduce@1", "resnet50.res4_3x3_s2@1",
    "vgg16.conv3_2@1", "vgg16.conv5_1@1",
    "mobilenetv2.b2_dw@1", "mobilenetv2.b4_dw@1", "mobilenetv2.b2_expand@1", "mobilenetv2.b3_dw_s2@1",
    "large_kernels.convnext_s1_dw7@1", "large_kernels.dense_11x11@1", "large_kernels.replknet_s3_dw27@1",
    "alexnet.conv1@1", "alexnet.conv3@1",
    "resnet34.layer2_3x3_s2@1", "resnet34.layer4_3x3@8",
    "regnetx_400mf.s2_3x3@1", "regnetx_400mf.s4_3x3@1", "regnetx_400mf.s3_3x3_s2@1", "regnetx_400mf.s4_1x1@1",
    "resnext.x50_conv2_3x3@1", "resnext.x50_conv4_3x3@1",
    "efficientnet_b0.stem@1", "efficientnet_b0.s3_dw5@1", "efficientnet_b0.s6_expand@1",
    # more of the regimes whose picks are close calls: 3x3 stride 1 (winograd against im2col and
    # numba_cpu), a 3-channel 3x3, two-group and 32-group 3x3, and dense kernels where im2col's
    # weight packing grows (7x7, 15x15)
    "resnet34.layer1_3x3@1", "resnet34.layer3_3x3@1", "vgg16.conv1_1@1", "alexnet.conv5@1",
    "resnext.x50_conv3_3x3@1", "large_kernels.dense_7x7@1", "large_kernels.dense_15x15@1",
)

#: Timed seconds per (backend, layer) after the pools settle (best of at least 3 calls).
MEASURE_S = 0.03
#: Untimed calls before timing last this long: the previous backend's thread pool (OpenBLAS,
#: OpenMP) keeps spinning about 0.1 s after its last call and would slow this one.
SETTLE_S = 0.1
#: A candidate that the shipped constants predict this many times slower than the fastest is not
#: timed (they fit the machine they came from within 1.1-1.5x, median: 8x leaves room for another).
RULED_OUT = 8.0
#: A backend is timed on its first this many layers of each regime (dense, grouped, depthwise:
#: :func:`harness.autoselect.regime`)
#: even when predicted over :data:`RULED_OUT`: with fewer, a leave-one-suite-out fold can lack the
#: regime's samples and fit its constants as zero (winograd then picked on a grouped layer 1.6x slower).
REGIME_MIN = 2
#: A candidate whose first call takes this many times the best time so far is not timed further.
SLOW_FIRST = 4.0

#: The main job's automatic calibration starts no probe layer after this many seconds (about a
#: minute is expected; a far slower or busier machine gets a calibration on fewer layers, in time).
ENSURE_TOTAL_S = 120.0

#: A pick within this factor of the measured best candidate counts as right.
WITHIN = 1.10


class Sample(NamedTuple):
    """One measured time: ``backend`` on ``layer`` (of ``suite``) at ``batch``."""

    suite: str
    layer: str
    batch: int
    backend: str
    op: str
    spec: object
    seconds: float
    contended: str = ""  # why a core ran contended while it was timed (harness.support.core_speed); "" when none did


def modelled() -> list[str]:
    """Available backends with a cost model, the reference excluded (it is never chosen)."""
    return [b.name for b in backends() if b.cost is not None and b.role != "reference" and b.available]


def probe_cases(probe=None) -> list:
    """``(suite, Layer)`` pairs for ``suite.layer@batch`` strings (default :data:`PROBE`);
    ValueError names an unknown one."""
    out = []
    for item in PROBE if probe is None else probe:
        label, _, batch = item.partition("@")
        suite = label.split(".")[0]
        found = [l for l in suites.layers(suite, int(batch or 1)) if l.label == label]
        if not found:
            raise ValueError(f"probe layer {item!r}: no layer {label!r} in suite {suite!r}")
        out.append((suite, found[0]))
    return out


def time_probes(cases, names, threads: int | None = None, budget_s: float = MEASURE_S, limit_s: float = 2.0,
                progress: bool = False, seed: int = 0, total_s: float | None = None) -> tuple[list[Sample], list[dict]]:
    """Time ``names`` on ``cases`` for a calibration (see the module docstring for the rules).

    Parameters
    ----------
    cases : list of (suite, Layer)
        Layers to time.
    names : list of str
        Backends to time (each needs a ``CostModel``).
    threads : int, optional
        Threads while timing (default: as set).
    budget_s : float
        Timed seconds per (backend, layer) after settling; at least 3 calls (2 when one call
        takes over :data:`SETTLE_S`).
    limit_s : float
        A case predicted or first measured above this many seconds is not timed.
    total_s : float, optional
        Start no layer after this many seconds (a machine far slower or busier than expected);
        the layers are taken one suite after another in turn, so the ones left out are spread
        over the suites rather than being the last suites' all.

    Returns
    -------
    (samples, skipped)
        One :class:`Sample` per timed (backend, layer); ``skipped``: ``{"layer", "batch",
        "backend", "reason"}`` per case not timed.
    """
    steady_heap()  # the heap the benchmarks time in (harness.support.allocator)
    samples, skipped = [], []
    shipped = autoselect.default_constants()
    seen: dict = {}  # (backend, regime) -> layers timed
    cases = _round_robin(cases)
    stop_at = time.monotonic() + total_s if total_s is not None else math.inf
    with pinned_threads(threads):
        for i, (suite, layer) in enumerate(cases):
            if time.monotonic() > stop_at:
                skipped += [{"layer": layer.label, "batch": layer.spec.N, "backend": name,
                             "reason": f"calibration time limit of {total_s:g} s reached"} for name in names]
                continue
            spec = bench.op_spec(layer.op, layer.spec)
            # the shipped constants, not the model in force: a calibration skewed by a loaded
            # machine must not keep a backend it misjudged from ever being timed again
            predicted = {n: autoselect.predict(n, layer.op, spec, shipped) for n in names}
            fastest = min((t for t in predicted.values() if t), default=math.inf)
            # the likely fastest first, so that the first-call guard has a good time to compare with
            order = sorted(names, key=lambda n: (predicted[n] is None, predicted[n] or 0.0))
            best = math.inf
            for name in order:
                if progress:
                    print(f"calibrating [{i + 1}/{len(cases)}] {layer.label} N={layer.spec.N} {name}".ljust(79),
                          end="\r", file=sys.stderr, flush=True)
                # a regime's first few layers are timed whatever the prediction: a backend never timed on
                # grouped (or depthwise) layers would get zero for their constants, and be picked there
                kind = (name, autoselect.regime(spec))
                needed = seen.get(kind, 0) < REGIME_MIN
                seconds, reason, contended = _time_probed(name, layer.op, spec, None if needed else predicted[name],
                                                          fastest, best, budget_s, limit_s, seed)
                if seconds is not None:
                    seen[kind] = seen.get(kind, 0) + 1
                if seconds is None:
                    skipped.append({"layer": layer.label, "batch": layer.spec.N, "backend": name, "reason": reason})
                    continue
                best = min(best, seconds)
                samples.append(Sample(suite, layer.label, layer.spec.N, name, layer.op, spec, seconds, contended))
    if progress:
        print(" " * 79, end="\r", file=sys.stderr)
    return samples, skipped


def _round_robin(cases) -> list:
    """``cases`` reordered one suite after another in turn (each suite's own order kept)."""
    by_suite: dict = {}
    for suite, layer in cases:
        by_suite.setdefault(suite, []).append((suite, layer))
    queues = list(by_suite.values())
    return [queue[i] for i in range(max(map(len, queues), default=0)) for queue in queues if i < len(queue)]


def _time_probed(name, op, spec, predicted, fastest, best, budget_s, limit_s, seed):
    """:func:`_time_one` watched (:class:`harness.support.core_speed.FreeWatch`: the cores probed before
    and after, each probe once this process's pools went idle, and other processes' use of the cores):
    ``(seconds, reason, contended)``, ``contended`` saying why the machine was not free ("" if it was)."""
    watch = core_speed.FreeWatch()
    watch.start()
    seconds, reason = _time_one(name, op, spec, predicted, fastest, best, budget_s, limit_s, seed)
    if seconds is None:
        return None, reason, ""
    return seconds, None, watch.reason() or ""


#: Samples timed while a core ran contended are timed again, up to this many more times each
#: (:func:`retime_contended`), and at most this many samples in all.
CONTENDED_RETRIES = 2
CONTENDED_MOST = 60


def retime_contended(samples, threads: int | None = None, budget_s: float = MEASURE_S,
                     limit_s: float = 2.0, retries: int = CONTENDED_RETRIES, most: int = CONTENDED_MOST) -> list[Sample]:
    """``samples`` with those timed on a contended core (``Sample.contended``) timed again until a
    timing runs free, at most ``retries`` more times each (``most`` samples in all); each keeps its
    best time (contention only adds time) and is marked free once one of its timings was."""
    out = list(samples)
    todo = [i for i, s in enumerate(out) if s.contended][:most]
    if not todo:
        return out
    with pinned_threads(threads):
        for _ in range(retries):
            for i in todo:
                s = out[i]
                again, _, contended = _time_probed(s.backend, s.op, s.spec, None, math.inf, math.inf, budget_s,
                                                   limit_s, seed=0)
                if again is not None:
                    out[i] = s._replace(seconds=min(s.seconds, again), contended=contended)
            todo = [i for i in todo if out[i].contended]
            if not todo:
                break
    return out


def _time_one(name, op, spec, predicted, fastest, best, budget_s, limit_s, seed):
    """``(seconds, None)`` for one (backend, layer), or ``(None, reason)`` when it is not timed."""
    if predicted is not None and predicted > RULED_OUT * fastest:
        return None, f"predicted {predicted / fastest:.0f}x the fastest candidate's time"
    try:
        case = bench.prepare(name, op, spec, seed=seed, limit_s=limit_s)
        time_once(case.fn, case.args, case.sync)  # compilation, first touch, weight caches: never counted
        first = time_once(case.fn, case.args, case.sync)
    except Unsupported as exc:
        return None, str(exc)
    except Exception as exc:  # a crashing backend leaves the calibration to the others
        return None, f"error: {type(exc).__name__}: {exc}"
    if first > limit_s:
        dispatch.release(case)
        return None, f"first call took {first:.1f} s, over the limit of {limit_s:g} s"
    if first > SLOW_FIRST * best:
        first = min(first, time_once(case.fn, case.args, case.sync))  # one call can be slowed by a burst
        if first > SLOW_FIRST * best:
            dispatch.release(case)
            return first, None  # clearly slower than a candidate already timed: two calls tell enough
    slow = first >= SETTLE_S  # a call that long has let the other pools stop spinning by itself
    timing = time_call(case.fn, case.args, sync=case.sync, budget_s=budget_s, min_runs=2 if slow else 3,
                       warmup=0 if slow else 1, settle_s=0.0 if slow else SETTLE_S, first_call_s=first)
    dispatch.release(case)  # seeded inputs: nothing the backend kept from them (winograd's weights) is wanted again
    return timing.min, None


#: A sample measured this many times its fit's prediction is timed again (:func:`retime_outliers`).
OUTLIER = 2.0
#: At most this many samples are timed again.
RETIME_MOST = 8


def retime_outliers(samples, constants, threads: int | None = None, budget_s: float = MEASURE_S,
                    limit_s: float = 2.0, factor: float = OUTLIER, most: int = RETIME_MOST) -> list[Sample]:
    """``samples`` with the ones measured over ``factor`` x their fitted prediction timed again
    (the ``most`` worst), each keeping the smaller of its two times.

    Load from other processes only ever adds time, and in bursts: one burst over a sample makes
    it an outlier of the fit, which drags the backend's constants and the picks with it. A sample
    the model truly cannot explain measures the same again and stays as it was.
    """
    worst = sorted(((s.seconds / p, i) for i, s in enumerate(samples)
                    if (p := autoselect.predict(s.backend, s.op, s.spec, constants)) and s.seconds > factor * p),
                   reverse=True)[:most]
    if not worst:
        return list(samples)
    out = list(samples)
    with pinned_threads(threads):
        for _, i in worst:
            s = out[i]
            again, _, contended = _time_probed(s.backend, s.op, s.spec, None, math.inf, math.inf, budget_s, limit_s,
                                               seed=0)
            if again is not None and again < s.seconds:
                out[i] = s._replace(seconds=again, contended=contended)
    return out


def samples_from(results) -> list[Sample]:
    """Every timed (``time_min``) row of a bench results table whose layer a known suite holds and
    whose backend is registered (``auto``'s rows, its pick's time again, are left out)."""
    specs = {}
    for suite, batch, dtype in results[["suite", "batch", "dtype"]].drop_duplicates().itertuples(index=False):
        if suite in suites.names():
            for layer in suites.layers(suite, int(batch), dtype):
                specs[(layer.label, int(batch), dtype)] = (layer.op, bench.op_spec(layer.op, layer.spec))
    out = []
    known = {b.name for b in backends()}  # not 'auto' (timed as its pick) nor a plug-in not loaded now
    for row in results[results.metric == "time_min"].itertuples(index=False):
        found = specs.get((row.layer, int(row.batch), row.dtype))
        if (found is not None and found[0] == row.op and row.backend in known and math.isfinite(row.value)
                and row.value > 0):
            out.append(Sample(row.suite, row.layer, int(row.batch), row.backend, row.op, found[1], float(row.value)))
    return out


def fit(samples) -> dict:
    """:func:`harness.autoselect.fit` on :class:`Sample` s."""
    return autoselect.fit((s.backend, s.op, s.spec, s.seconds) for s in samples)


def judge(samples, constants: dict, tie_break: bool = False) -> list[dict]:
    """Per layer: what the estimate with ``constants`` picks among the measured candidates, the
    measured best candidate, and ``ratio`` = the pick's measured time / the best's.

    With ``tie_break``, the pick is ``auto``'s as it runs (:func:`harness.autoselect.choose`): where the
    estimate puts other candidates within ``TIE_MARGIN`` of its pick, those are timed again here, as a
    tie-break times them (:func:`harness.autoselect.time_close_calls`: a measurement of its own, not the
    samples'), and the fastest of that timing is the pick; its ``ratio`` is still read from the samples.
    Each row then also has ``estimate_picked`` / ``estimate_ratio`` (the model alone) and ``timed``
    (the candidates the tie-break timed; empty when there was no tie) with ``timed_seconds``, their
    times in the tie-break. Where the pick (auto's or the estimate's) is more than :data:`WITHIN` off
    the best on the samples, the picks and the best are timed again (:func:`retime_disputed`) and each
    keeps its best time: ``retimed`` names them. ``contended`` says why a core ran contended while
    the layer's samples, its tie-break or its re-timing ran ("" when none did): such a row's ratio
    compares timings that the machine, not the backends, may have decided.
    """
    by_layer: dict = {}
    for s in samples:
        if get_backend(s.backend).role == "candidate":
            by_layer.setdefault((s.suite, s.layer, s.batch), []).append(s)
    rows = []
    for (suite, layer, batch), measured in by_layer.items():
        predicted = {s.backend: autoselect.predict(s.backend, s.op, s.spec, constants) for s in measured}
        predicted = {b: t for b, t in predicted.items() if t is not None}
        if not predicted:
            continue
        times = {s.backend: s.seconds for s in measured}
        picked = min(predicted, key=predicted.get)
        best = min(times, key=times.get)
        row = {"suite": suite, "layer": layer, "batch": batch, "picked": picked, "best": best,
               "ratio": times[picked] / times[best]}
        contended = sorted({s.contended for s in measured if s.contended})
        if tie_break:
            close = autoselect.tie_to_break(autoselect.Choice(picked, predicted))
            tie = autoselect.time_close_calls(measured[0].op, measured[0].spec, close) if close else None
            timed = tie.seconds if tie else {}
            row.update(estimate_picked=picked, estimate_ratio=row["ratio"], timed=sorted(timed),
                       timed_seconds={n: timed[n] for n in sorted(timed)})
            if timed:
                fastest = min(timed, key=timed.get)
                row.update(picked=fastest, ratio=times[fastest] / times[best])
            if tie and tie.contended:
                contended.append("tie-break: " + tie.contended)
            disputed = sorted({row["picked"], picked, best})
            if max(times[n] for n in disputed) > WITHIN * times[best]:
                # a pick more than 10% off, on one sample each: the picks and the best are timed again
                # (twice each, in turn) and keep their best times, so that one slowed sample decides nothing
                retimed, busy = retime_disputed(measured[0].op, measured[0].spec, disputed)
                for n, t in retimed.items():
                    times[n] = min(times[n], t)
                best = min(times, key=times.get)
                row.update(best=best, ratio=times[row["picked"]] / times[best],
                           estimate_ratio=times[picked] / times[best], retimed=sorted(retimed))
                if busy:
                    contended.append("re-timing: " + busy)
        row["contended"] = "; ".join(contended)
        rows.append(row)
    return rows


#: A held-out row whose pick is more than :data:`WITHIN` off the best is settled by timing the
#: candidates in dispute this many times each, in turn (:func:`retime_disputed`).
DISPUTE_TIMINGS = 2


def retime_disputed(op: str, spec, names, budget_s: float = MEASURE_S, limit_s: float = 2.0,
                    timings: int = DISPUTE_TIMINGS) -> tuple[dict, str]:
    """Best times of ``names`` on ``spec`` over ``timings`` calibration timings each, taken in turn
    (``a b a b``), and why a core ran contended meanwhile ("" when none did)."""
    best: dict = {}
    busy = []
    for _ in range(timings):
        for name in names:
            seconds, _, contended = _time_probed(name, op, spec, None, math.inf, math.inf, budget_s, limit_s, seed=0)
            if seconds is not None:
                best[name] = min(seconds, best.get(name, math.inf))
            if contended:
                busy.append(contended)
    return best, busy[0] if busy else ""


def held_out(samples, tie_break: bool = False, threads: int | None = None) -> list[dict]:
    """Leave-one-suite-out: for each suite, fit on the others' samples (backends they lack keep
    their shipped constants) and :func:`judge` the held-out suite's layers (with ``tie_break``: as
    ``auto`` runs, close calls timed again with ``threads``). Needs at least two suites; returns
    ``judge``'s rows, each with ``within`` (ratio <= :data:`WITHIN`)."""
    samples = list(samples)
    names = sorted({s.suite for s in samples})
    if len(names) < 2:
        return []
    defaults = autoselect.default_constants()
    rows = []
    with pinned_threads(threads):
        for suite in names:
            constants = {**defaults, **fit([s for s in samples if s.suite != suite])}
            rows += judge([s for s in samples if s.suite == suite], constants, tie_break=tie_break)
    return [dict(r, within=bool(r["ratio"] <= WITHIN)) for r in rows]


def summary(rows) -> dict:
    """Layers judged, share within :data:`WITHIN` of the best, worst and geomean ratio, over the rows
    timed on free cores (``contended`` empty); ``contended`` counts the others, and the ``*_all`` keys
    give the figures over every row. A row whose timings a contended core may have decided is no
    figure (the project's rule for busy machines), but it is counted, not hidden."""
    free = [r for r in rows if not r.get("contended")]
    out = _figures(free)
    everything = _figures(rows)
    out.update(contended=len(rows) - len(free), **{f"{k}_all": v for k, v in everything.items()})
    return out


def _figures(rows) -> dict:
    ratios = np.array([r["ratio"] for r in rows], dtype=float)
    if not ratios.size:
        return {"layers": 0, "within": 0, "share_within": math.nan, "worst": math.nan, "geomean": math.nan}
    within = int(sum(r["ratio"] <= WITHIN for r in rows))
    return {"layers": int(ratios.size), "within": within, "share_within": within / ratios.size,
            "worst": float(ratios.max()), "geomean": float(np.exp(np.log(ratios).mean()))}


def table(rows) -> str:
    """The held-out rows as text, one line per layer, then the summary line (and with a tie-break,
    the estimate's own pick and ratio, and the summary of the estimate alone); a row timed on a
    contended core is marked, and the summaries leave it out (:func:`summary`)."""
    ties = any("estimate_picked" in r for r in rows)
    lines = [f"{'held-out layer':<40} {'N':>3} {'auto picks':<11} {'best':<11} {'ratio':>6}"
             + (f"  {'estimate':<11} {'ratio':>6}  timed" if ties else "")]
    for r in rows:
        flag = "" if r["ratio"] <= WITHIN else "  > 10% off"
        flag += "  (contended core)" if r.get("contended") else ""
        line = f"{r['layer']:<40} {r['batch']:>3} {r['picked']:<11} {r['best']:<11} {r['ratio']:>6.2f}"
        if ties:
            line += f"  {r.get('estimate_picked', ''):<11} {r.get('estimate_ratio', r['ratio']):>6.2f}  " + \
                ",".join(r.get("timed", []))
        lines.append(line + flag)
    lines.append(_summary_line("auto", summary(rows)))
    if ties:
        lines.append(_summary_line("the estimate alone (no tie-break)", summary(estimate_rows(rows))))
    return "\n".join(lines)


def estimate_rows(rows) -> list[dict]:
    """``judge``'s rows as the estimate alone would have them: its own pick's ratio."""
    return [dict(r, ratio=r.get("estimate_ratio", r["ratio"])) for r in rows]


def _summary_line(who: str, s: dict) -> str:
    line = (f"{who}: within {WITHIN - 1:.0%} of the best candidate on {s['within']}/{s['layers']} held-out layers; "
            f"worst {s['worst']:.2f}x, geomean {s['geomean']:.3f}x")
    if s.get("contended"):
        line += (f" ({s['contended']} more timed on a contended core, left out; with them "
                 f"{s['within_all']}/{s['layers_all']}, worst {s['worst_all']:.2f}x)")
    return line


def quality(samples, constants) -> dict:
    """How well ``constants`` predict the samples they were fitted on: per backend the median
    and worst ``max(pred/meas, meas/pred)``."""
    errors: dict = {}
    for s in samples:
        predicted = autoselect.predict(s.backend, s.op, s.spec, constants)
        if predicted is not None:
            errors.setdefault(s.backend, []).append(abs(math.log(max(predicted, 1e-12) / s.seconds)))
    return {b: {"median_ratio": float(math.exp(np.median(v))), "worst_ratio": float(math.exp(max(v))),
                "layers": len(v)} for b, v in errors.items()}


def calibrate(cases=None, threads: int | None = None, budget_s: float = MEASURE_S, limit_s: float = 2.0,
              machine: dict | None = None, progress: bool = False, results=None, out=None,
              command=None, total_s: float | None = None) -> dict:
    """Time, fit, judge leave-one-suite-out, save; returns the saved calibration.

    Parameters
    ----------
    cases : list of (suite, Layer), optional
        Layers to time; default :data:`PROBE`.
    threads : int, optional
        Threads while timing (default: as set).
    budget_s, limit_s, total_s : float
        Timed seconds per (backend, layer); cases predicted or first measured above ``limit_s``
        are skipped; no layer is started after ``total_s`` (see :func:`time_probes`).
    machine : dict, optional
        Unused; kept for callers that pass the machine record.
    results : DataFrame, optional
        A ``convbench bench`` results table to fit instead of timing.
    out : path, optional
        Where to save (default :func:`harness.autoselect.calibration_path`).

    Raises
    ------
    ValueError
        When nothing modelled was timed.
    """
    started = time.time()
    skipped = []
    if results is None:
        cases = cases if cases is not None else probe_cases()
        samples, skipped = time_probes(cases, modelled(), threads=threads, budget_s=budget_s, limit_s=limit_s,
                                       progress=progress, total_s=total_s)
        samples = retime_outliers(samples, fit(samples), threads=threads, budget_s=budget_s, limit_s=limit_s)
        samples = retime_contended(samples, threads=threads, budget_s=budget_s, limit_s=limit_s)
        used = [threads] if threads else [set_threads(None)[0].get("torch") or 1]
    else:
        samples = samples_from(results)
        used = sorted(set(results.threads.dropna().astype(int))) if "threads" in results else None
    if not samples:
        raise ValueError("no timed suite layer of a modelled backend to fit")
    constants = fit(samples)
    rows = held_out(samples, tie_break=results is None, threads=threads)
    saved = {
        "calibrated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": command if command is not None else sys.argv,
        "threads": used,
        "layers": len({(s.layer, s.batch) for s in samples}),
        "seconds": round(time.time() - started, 1),
        "constants": constants,
        "fit": quality(samples, constants),
        "choice": summary(judge(samples, {**autoselect.default_constants(), **constants})),
        "held_out": rows,
        "held_out_summary": summary(rows),
        "held_out_estimate_summary": summary(estimate_rows(rows)),
        "not_timed": skipped,
        "samples": [{"suite": x.suite, "layer": x.layer, "batch": x.batch, "backend": x.backend,
                     "seconds": x.seconds, "contended": x.contended} for x in samples],
    }
    saved["path"] = str(autoselect.save_calibration(saved, out))
    return saved


def ensure(threads: int | None = None, progress: bool = False, log=print) -> dict | None:
    """Calibrate on :data:`PROBE` when this machine has no calibration yet; None when it has one."""
    if not autoselect.needs_calibration():
        return None
    log("no cost-model calibration for this machine yet: calibrating 'auto' on "
        f"{len(PROBE)} probe layers (about a minute; `convbench calibrate` redoes it) ...")
    try:
        saved = calibrate(threads=threads, progress=progress, total_s=ENSURE_TOTAL_S)
    except (OSError, ValueError) as exc:  # an unwritable cache or nothing timed: the defaults apply
        log(f"calibration not saved ({exc}); 'auto' uses the backends' shipped constants")
        return None
    log(f"calibration: {saved['path']} ({saved['seconds']:.0f} s); held out, "
        + _summary_line("auto", saved["held_out_summary"]))
    return saved


def saved_held_out() -> list[dict]:
    """The leave-one-suite-out rows of this machine's calibration (empty when there is none, it
    is another machine's, or its rows are malformed), for the report."""
    import json

    if autoselect.needs_calibration():
        return []
    try:
        rows = json.loads(autoselect.calibration_path().read_text()).get("held_out")
    except (OSError, ValueError, AttributeError):
        return []
    keys = {"suite": str, "layer": str, "batch": int, "picked": str, "best": str, "ratio": (int, float)}
    if not isinstance(rows, list) or not all(
            isinstance(r, dict) and all(isinstance(r.get(k), t) for k, t in keys.items()) for r in rows):
        return []
    return rows
