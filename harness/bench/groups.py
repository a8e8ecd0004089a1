"""``python -m harness.bench.groups``: every candidate against torch, per layer group, and what
``auto`` picks.

Groups of real layers (from :mod:`harness.suites`, identical shapes kept once):
stride-1 3x3 (ResNet-18/34/50, VGG-16, RegNetX; batch 1 and 8), 1x1, depthwise, large
kernels, and the 7x7 stride-2 stem. Per layer, torch and every candidate backend are timed
*paired*: in each of ``--rounds`` rounds every backend runs (best of a few calls, after 0.1 s of
untimed calls so that the previous backend's thread pool has gone quiet: :data:`ROUND_SETTLE_S`) in
turn, so load that comes and goes hits them alike; a backend's time is its best round. Printed per
layer: torch's GFLOP/s, the best candidate's GFLOP/s, ratio to torch with the range of the
per-round paired ratios (``[lo-hi]``), % of
the measured SGEMM peak (``convbench env``), and ``auto``'s pick (:func:`harness.autoselect.choose`,
the path ``backend="auto"`` takes: the estimate, close calls timed once per layer) with its time over the best candidate's. Per group: geomeans,
and per batch with an approximate 95% interval (each layer's paired range taken as its interval).

A busy machine: each round is watched (:class:`harness.support.core_speed.FreeWatch`: the cores'
speed probed at its ends, :mod:`harness.support.core_speed`, and other processes' use of the cores);
the times, ratios and ranges use the rounds that ran free. A layer with no such round is printed,
marked, and left out of its group's figures (counted on the geomean line): on the project machine
a vCPU was slowed by other guests a third of the time, which load and steal do not show.

Weights: by default every call sees the same weights (inference: a backend may keep work
derived from them, e.g. transformed weights, between calls). ``--fresh-weights`` changes one
weight before every call (outside the timed region), so such caches miss every time.

``--decision-cost`` instead prints, per layer above 1 MFLOP, the time ``auto``'s decision
takes inside ``harness.conv2d`` (memory check, NaN scan, remembered choice) against the call.

FLOPs are the op record's ``flops_dense`` (:mod:`harness.ops.metrics`), as in ``convbench bench``,
so GFLOP/s and % of peak of Winograd and FFT are *effective* figures (they do fewer operations than
counted, and can pass the SGEMM peak: only a direct backend above it means the peak is wrong).
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

from harness import autoselect
from harness.backend import dispatch
from harness.backend.registry import get_backend
from harness.bench import paired
from harness.bench import runner as bench
from harness import suites
from harness.errors import Unsupported
from harness.ops.table import op_info
from harness.support import core_speed
from harness.support.allocator import steady_heap
from harness.support.machine import peak_gflops, peak_is_trusted, record
from harness.support.timing import call_for, pinned_threads, time_once


def _is_3x3_s1(s):
    return (s.KH, s.KW) == (3, 3) and s.stride == (1, 1) and s.dilation == (1, 1) and s.groups < s.C


def _is_1x1(s):
    return (s.KH, s.KW) == (1, 1) and s.groups == 1


def _is_depthwise(s):
    return s.groups == s.C == s.O and s.C > 1 and s.KH <= 5


def _is_large(s):
    return s.KH >= 7 and s.stride == (1, 1)


def _is_stem(s):
    return (s.KH, s.KW) == (7, 7) and s.stride == (2, 2) and s.C == 3


#: name -> (suites, batches, which layers); each layer in the first group that takes it.
GROUPS = {
    "3x3 s1": (("resnet34", "resnet50", "vgg16", "regnetx_400mf"), (1, 8), _is_3x3_s1),
    "1x1": (("resnet50", "efficientnet_b0", "regnetx_400mf"), (1,), _is_1x1),
    "depthwise": (("efficientnet_b0", "mobilenetv2"), (1,), _is_depthwise),
    "large kernel": (("large_kernels",), (1,), _is_large),
    "stem 7x7 s2": (("resnet50",), (1, 8), _is_stem),
}

#: Layers of the large-kernel group left out of the default table (minutes per call direct).
_SLOW = ("replknet_s1_dw31", "replknet_s2_dw29")


def group_layers(names=None, quick: bool = False) -> list[tuple[str, object]]:
    """``(group, Layer)`` for every layer of the chosen groups, identical specs once."""
    out, seen = [], set()
    for group, (suite_names, batches, take) in GROUPS.items():
        if names and group not in names:
            continue
        for batch in batches[:1] if quick else batches:
            for suite in suite_names:
                for layer in suites.layers(suite, batch):
                    if layer.op != "conv2d" or not take(layer.spec) or layer.label.split(".")[1] in _SLOW:
                        continue
                    if layer.spec in seen:
                        continue
                    seen.add(layer.spec)
                    out.append((group, layer))
    return out


def _best_of(fn, args, sync, calls: int, before=None) -> float:
    best = math.inf
    for _ in range(calls):
        if before is not None:
            before()
        best = min(best, time_once(fn, args, sync))
    return best


#: Warm-up per backend and layer: calls until this many seconds have passed (at least 2, at most
#: :data:`WARM_CALLS`). torch's first three calls on a new shape took 47, 28 and 28 ms where the
#: fourth took 0.9 (ResNet-34 layer2 3x3, batch 1, 2 threads, quiet machine, 2026-12-02): with one
#: warm-up call, torch was timed in that phase on some layers (100-300x "slower" than im2col on 1x1s).
WARM_S = 0.15
WARM_CALLS = 20


def warm_up(fn, args, sync, before=None) -> None:
    """Calls of ``fn`` until :data:`WARM_S` seconds and 2 calls have passed (at most :data:`WARM_CALLS`):
    compilation, first touch, weight caches, a library's per-shape set-up."""
    call_for(fn, args, sync, WARM_S, before=before, min_calls=2, max_calls=WARM_CALLS)


def time_paired(spec, names, rounds: int = 5, round_s: float = 0.03, fresh_weights: bool = False,
                slow_factor: float = 4.0, keep=(), probe: bool = True) -> dict:
    """Per backend: ``{"rounds": [seconds per round], "free": [bool per round], "first": s}``, after
    :func:`warm_up`. ``first`` is the best of two calls; a backend whose ``first`` is ``slow_factor`` x
    the fastest one (and over 5 ms) gets only that, unless it is in ``keep`` (the baseline every ratio is
    taken against). Two calls, not one: one call slowed by another process (or by the pools of the
    backend timed just before) made a backend 18-57x "slower" than it is on some layers, and ``auto``
    look wrong there. With ``probe``, ``free`` says which rounds ran on a free machine
    (:class:`harness.support.core_speed.FreeWatch`: no core contended, no other process crowding ours;
    all True without probes)."""
    prepared, first = {}, {}
    for name in names:
        try:
            case = bench.prepare(name, "conv2d", spec, seed=0, limit_s=None)
            time_once(case.fn, case.args, case.sync)  # a call that raises Unsupported does so here
        except Unsupported:
            continue
        args, before = case.args, None
        if fresh_weights:  # a writable weight whose first value moves every call: caches keyed by content miss
            w = np.array(case.args[1])
            args = (case.args[0], w) + tuple(case.args[2:])

            def before(w=w):
                w.flat[0] = np.nextafter(w.flat[0], np.inf)
        prepared[name] = (case, args, before)
        warm_up(case.fn, args, case.sync, before)
        first[name] = _best_of(case.fn, args, case.sync, 2, before)
    fastest = min(first.values(), default=math.inf)
    out = {name: {"first": t, "rounds": [t], "free": [True]} for name, t in first.items()
           if t > slow_factor * fastest and t > 5e-3 and name not in keep}
    timed = [n for n in prepared if n not in out]
    calls = {n: max(1, min(20, int(round_s / max(first[n], 1e-6)))) for n in timed}
    for n in timed:
        out[n] = {"first": first[n], "rounds": [], "free": []}
    watch = core_speed.FreeWatch(enabled=probe and bool(timed))
    watch.start()
    for r in range(rounds):
        order = timed[r % len(timed):] + timed[:r % len(timed)] if timed else []
        for n in order:  # rotated each round: no backend always runs right after the same one
            case, args, before = prepared[n]
            call_for(case.fn, args, case.sync, ROUND_SETTLE_S, before=before)
            out[n]["rounds"].append(_best_of(case.fn, args, case.sync, calls[n], before))
        free = watch.reason() is None
        for n in order:
            out[n]["free"].append(free)
    for case, _, _ in prepared.values():  # seeded inputs: what a backend kept from them is not wanted again
        dispatch.release(case)
    return out


def free_rounds(entry) -> list[float]:
    """A backend's round times that ran on free cores (:func:`time_paired`'s ``free``); all of them
    when none did (the layer is then marked contended: :func:`measure_layer`)."""
    return [entry["rounds"][i] for i in paired.free_indices(entry.get("free"), len(entry["rounds"]))]


#: Untimed calls of a backend, this many seconds (at least one call), before each of its rounds: the
#: backend timed before it leaves its thread pool spinning for about 0.1 s, and whatever runs next on
#: the 2 cores runs slower meanwhile (numba_cpu on a dense 7x7 layer: 7.8 ms within 0.1 s of an im2col
#: call, 3.7-4.7 ms after; ``python -m harness.bench.network`` measures what that costs in a pass).
ROUND_SETTLE_S = 0.1
#: A layer is called faster than the stored SGEMM peak (so the peak is stale) only past this factor:
#: a GEMM-bound layer runs at the peak, and the two timings' noise puts it a few percent either side
#: (an im2col 1x1 layer at 101% of a peak measured on a quiet machine, 2026-12-02).
PEAK_NOISE = 1.05


def measure_layer(layer, rounds: int, fresh_weights: bool) -> dict:
    """Times of torch and every candidate on one layer, the best candidate, and auto's pick."""
    spec = bench.op_spec(layer.op, layer.spec)
    baseline = bench.baseline_name()
    cands = autoselect.candidates(layer.op, spec)
    times = time_paired(spec, ([baseline] if baseline else []) + cands, rounds, fresh_weights=fresh_weights,
                        keep=(baseline,))
    best_time = {n: min(free_rounds(t)) for n, t in times.items()}
    measured = [n for n in cands if n in best_time]
    choice = autoselect.choose(layer.op, spec)  # what harness.conv2d(backend="auto") runs
    free = [ok for t in times.values() for ok in t.get("free", [])]
    return {"spec": spec, "times": times, "best_time": best_time, "baseline": baseline,
            "best": min(measured, key=best_time.get) if measured else None,
            "picked": choice.backend if choice is not None else None,
            "contended": bool(free) and not any(free)}


def _ratio_range(times, base, name) -> tuple[float, float]:
    """Min and max over rounds of the paired ratio torch / backend (same round), over the rounds both
    ran on free cores where there are any."""
    a, b = times[base], times[name]
    if len(a["rounds"]) != len(b["rounds"]):
        return (min(free_rounds(a)) / min(free_rounds(b)),) * 2
    pairs = list(zip(a["rounds"], b["rounds"]))
    free = [x and y for x, y in zip(a.get("free") or [True] * len(pairs), b.get("free") or [True] * len(pairs))]
    ratios = [pairs[i][0] / pairs[i][1] for i in paired.free_indices(free, len(pairs))]
    return min(ratios), max(ratios)



def report(rows, peak: float) -> str:
    """The per-layer and per-group table (see the module docstring)."""
    head = (f"{'group / layer':<38} {'N':>2} {'torch GF/s':>10} {'best':<10} {'GF/s':>7} {'x torch [paired range]':>22} "
            f"{'%peak':>5}  {'auto picks':<10} {'x torch':>7} {'/best':>5}")
    lines = [head, "-" * len(head)]
    by_group: dict = {}
    above_peak = []
    for group, layer, m in rows:
        by_group.setdefault(group, []).append((layer, m))
    for group, items in by_group.items():
        lines.append(f"[{group}]")
        summary = {"best": [], "auto": [], "within": 0, "n": 0, "lo": [], "hi": [], "auto_lo": [], "auto_hi": [],
                   "batch": [], "contended": 0}
        for layer, m in items:
            flops = op_info(layer.op).counts(m["spec"])["flops_dense"]
            base, best, picked, t = m["baseline"], m["best"], m["picked"], m["best_time"]
            torch_gf = flops / t[base] / 1e9 if base in t else math.nan
            if best is None:
                lines.append(f"  {layer.label:<36} {layer.spec.N:>2} {torch_gf:>10.1f}  no candidate ran")
                continue
            gf = flops / t[best] / 1e9
            if m.get("contended"):  # shown, but no figure: every round ran with a core slowed by others' work
                summary["contended"] += 1
                lines.append(f"  {layer.label:<36} {layer.spec.N:>2} {torch_gf:>10.1f} {best:<10} {gf:>7.1f}  "
                             f"(contended core in every round: left out)")
                continue
            if gf > PEAK_NOISE * peak and get_backend(best).exact:  # Winograd and FFT do fewer operations than counted
                above_peak.append(f"{layer.label} N={layer.spec.N}")
            ratio = t[base] / t[best] if base in t else math.nan
            lo, hi = _ratio_range(m["times"], base, best) if base in t else (math.nan, math.nan)
            auto_ratio = t[base] / t[picked] if base in t and picked in t else math.nan
            vs_best = t[picked] / t[best] if picked in t else math.nan
            auto_lo, auto_hi = (_ratio_range(m["times"], base, picked) if base in t and picked in t
                                else (math.nan, math.nan))
            summary["best"].append(ratio)
            summary["auto"].append(auto_ratio)
            summary["lo"].append(lo)
            summary["hi"].append(hi)
            summary["auto_lo"].append(auto_lo)
            summary["auto_hi"].append(auto_hi)
            summary["batch"].append(layer.spec.N)
            summary["n"] += 1
            summary["within"] += int(vs_best <= 1.10)
            lines.append(f"  {layer.label:<36} {layer.spec.N:>2} {torch_gf:>10.1f} {best:<10} {gf:>7.1f} "
                         f"{ratio:>7.2f} [{lo:>5.2f}-{hi:>5.2f}]     {100 * gf / peak:>5.0f}  {picked or '-':<10} "
                         f"{auto_ratio:>7.2f} {vs_best:>5.2f}")
        lines.append(f"  geomean x torch: best candidate {paired.geomean(summary['best']):.2f}, auto {paired.geomean(summary['auto']):.2f}; "
                     f"auto within 10% of the best on {summary['within']}/{summary['n']} layers"
                     + (f" ({summary['contended']} more timed only on contended cores, left out)"
                        if summary["contended"] else ""))
        lines += _batch_geomeans(summary)
        lines.append("")
    if above_peak:
        lines.append(f"%peak is wrong: {len(above_peak)} layer(s) ran faster than the stored SGEMM peak "
                     f"({', '.join(above_peak[:3])}{', ...' if len(above_peak) > 3 else ''}); the peak was "
                     "measured while the machine was busy: rerun 'convbench env --remeasure' or --remeasure here")
    return "\n".join(lines)


def _batch_geomeans(summary) -> list[str]:
    """Per batch: geomean x torch of the best candidate and of auto, each with an approximate 95%
    interval (:func:`harness.bench.paired.geomean_interval`, each layer's paired range read as its interval)."""
    out = []
    for n in sorted(set(summary["batch"])):
        pick = [i for i, b in enumerate(summary["batch"]) if b == n]

        def part(key, lo, hi):
            g, g_lo, g_hi = paired.geomean_interval([summary[key][i] for i in pick], [summary[lo][i] for i in pick],
                                                    [summary[hi][i] for i in pick])
            return paired.format_ratio(g, g_lo, g_hi)

        out.append(f"  batch {n} ({len(pick)} layers): best candidate {part('best', 'lo', 'hi')}, "
                   f"auto {part('auto', 'auto_lo', 'auto_hi')}")
    return out


def decision_cost(layers, repeats: int = 2000) -> str:
    """Per layer above 1 MFLOP: seconds of auto's decision in ``harness.conv2d`` against the call."""
    from harness.api.conv import conv2d
    from harness.api.resolve import auto_backend

    lines = [f"{'layer':<38} {'N':>2} {'MFLOP':>8} {'call us':>9} {'decide us':>9} {'share':>7}"]
    worst = 0.0
    for _, layer in layers:
        spec = bench.op_spec(layer.op, layer.spec)
        flops = op_info(layer.op).counts(spec)["flops_dense"]
        if flops <= 1e6:
            continue
        x, w = op_info(layer.op).bench_inputs(spec, np.random.default_rng(0))[:2]
        kwargs = dict(stride=spec.stride, padding=(spec.padding[0], spec.padding[2]), dilation=spec.dilation,
                      groups=spec.groups)  # suite layers pad symmetrically

        def call():
            return conv2d(x, w, backend="auto", **kwargs)

        def decide():  # what harness.conv2d does before running the backend it picks
            return auto_backend(layer.op, spec, x, w)

        call()
        call_s = min(time_once(call) for _ in range(5))
        n = max(10, min(repeats, int(0.05 / max(call_s, 1e-6))))
        decide()
        decide_s = math.inf
        for _ in range(5):  # best of 5 batches, as timeit: other load only ever adds time
            started = time.perf_counter()
            for _ in range(n):
                decide()
            decide_s = min(decide_s, (time.perf_counter() - started) / n)
        worst = max(worst, decide_s / call_s)
        lines.append(f"{layer.label:<38} {layer.spec.N:>2} {flops / 1e6:>8.1f} {call_s * 1e6:>9.1f} "
                     f"{decide_s * 1e6:>9.2f} {100 * decide_s / call_s:>6.2f}%")
    lines.append(f"worst share of the call: {100 * worst:.2f}%")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.bench.groups", description=__doc__.split("\n")[0])
    parser.add_argument("--group", action="append", choices=list(GROUPS), help="only these groups (repeatable)")
    parser.add_argument("--threads", type=int, default=2, help="threads for every library (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="paired rounds per layer (default 3)")
    parser.add_argument("--quick", action="store_true", help="batch 1 only, 2 rounds")
    parser.add_argument("--fresh-weights", action="store_true", help="change the weights before every call")
    parser.add_argument("--decision-cost", action="store_true", help="time auto's decision against the call instead")
    parser.add_argument("--remeasure", action="store_true",
                        help="measure the SGEMM peak again (else the one `convbench env` stored)")
    args = parser.parse_args(argv)
    steady_heap()  # the same heap for every backend (harness.support.allocator)
    layers = group_layers(args.group, args.quick)
    rounds = 2 if args.quick else args.rounds
    machine = record(remeasure=args.remeasure)
    started = time.time()
    with pinned_threads(args.threads):
        if args.decision_cost:
            print(decision_cost(layers))
            return 0
        peak = peak_gflops(machine, "float32", args.threads)
        rows = []
        for i, (group, layer) in enumerate(layers):
            print(f"[{i + 1}/{len(layers)}] {layer.label} N={layer.spec.N}".ljust(70), end="\r", file=sys.stderr, flush=True)
            rows.append((group, layer, measure_layer(layer, rounds, args.fresh_weights)))
    print(" " * 70, end="\r", file=sys.stderr)
    trust = "" if peak_is_trusted(machine) else f", NOT TRUSTED: {machine['peak'].get('busy') or 'not checked for load'}"
    print(f"threads {args.threads}; SGEMM peak {peak:.0f} GFLOP/s (convbench env{trust}); weights "
          f"{'changed before every call' if args.fresh_weights else 'the same every call (caches warm)'}; "
          f"auto = the cost-model estimate ({autoselect.model()['source']})"
          + (f", candidates predicted within {autoselect.TIE_MARGIN:g}x of its pick timed as a tie-break"
             if autoselect.TIE_BREAK else ", no tie-break (CONVBENCH_AUTO_TIE_BREAK=0)"))
    if autoselect.needs_calibration():
        # a calibration is keyed by the backends' code: one edit of impls/ (or another BLAS kernel)
        # and the shipped constants apply, which is what made one earlier long run's picks look wrong
        print("warning: no calibration matches this machine and this backend code, so auto used the shipped "
              "constants; run `convbench calibrate` first to judge auto on this machine")
    print(report(rows, peak))
    print(f"{len(rows)} layers in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
