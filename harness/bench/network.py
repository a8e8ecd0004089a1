"""``python -m harness.bench.network``: a network's convolutions run in sequence, per backend policy.

The groups table (:mod:`harness.bench.groups`) times each backend on one layer at a time, warmed
up on that layer. A forward pass runs layer after layer, and whichever backend ran the previous
layer leaves its thread pool spinning for the next one: numba_cpu ran at about half speed for
0.1 s after an OpenBLAS call (ResNet-50's stem 16 ms against 0.8 ms, a dense 7x7 layer 7.8 ms
against 4.2 ms; 2 threads, 2-core AMD EPYC). A policy that mixes backends, as ``auto`` does, can
then lose what its per-layer picks won. This times what a user of ``auto`` gets.

A *pass* is every convolution of the network's forward pass (:func:`harness.suites.networks.network`:
in order, repeats and projection shortcuts included; pooling, activations, biases, additions and the
fully connected layer left out), each on its own seeded input (the same for every policy),
through ``harness.conv2d`` with the policy's backend. Policies: ``torch`` (the baseline), ``auto`` (the library's: estimate, close
calls timed), ``auto:estimate`` (the cost model's pick per layer, no timing), ``auto:plan``
(:func:`harness.autoselect.plan`: the whole pass planned at once, a switch of backend charged
:data:`harness.autoselect.PLAN_SWITCH_S`) and each backend named with ``--backends`` (default:
the candidates that support every layer).

Each policy first runs one pass untimed (``auto`` makes its decisions there: that pass's time is
printed as the first pass), then ``--rounds`` rounds each run two passes of every policy, the
first untimed (so the timed one follows its own policy's pass, not another's), the order
rotated from round to round; a policy's pass time is its best round, its ratio to torch
the median over rounds of the paired ratio with a bootstrap 95% interval
(:func:`harness.bench.paired.ratio_interval`). For ``auto``, the backends it ran and on how many
layers. Each round is watched (:class:`harness.support.core_speed.FreeWatch`: contended cores, other
processes): rounds that did not run free are left out, and the table's first line says how many did.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

import numpy as np

from harness import autoselect
from harness.api import resolve
from harness.api.conv import conv2d
from harness.backend.registry import get_backend
from harness.bench import paired
from harness.bench import runner as bench
from harness.ops.table import op_info
from harness.suites import networks
from harness.support import core_speed
from harness.support.allocator import steady_heap
from harness.support.timing import pinned_threads


def conv_layers(name: str, batch: int) -> list:
    """The convolutions of network ``name``'s forward pass, in order (``NetLayer`` s of kind conv)."""
    return [layer for layer in networks.network(name, batch) if layer.kind == "conv"]


def _specs(layers) -> list:
    return [bench.op_spec("conv2d", layer.spec) for layer in layers]


def _runs_all(name: str, specs) -> bool:
    return all(get_backend(name).unsupported_reason("conv2d", s) is None for s in specs)


def _call(spec, x, w, backend: str):
    """``fn()`` running ``spec`` on ``x``, ``w`` through ``harness.conv2d`` with ``backend``."""
    top, bottom, left, right = spec.padding
    if top != bottom or left != right:
        raise ValueError(f"{spec}: asymmetric padding is not a network layer here")
    kwargs = dict(stride=spec.stride, padding=(top, left), dilation=spec.dilation, groups=spec.groups,
                  padding_mode=spec.padding_mode, backend=backend)
    return lambda: conv2d(x, w, **kwargs)


def policies(layers, names, route=None) -> dict:
    """``{policy: [one call per layer]}``: the baseline (torch) first, auto, auto:estimate, auto:plan
    (``route``: :func:`harness.autoselect.plan`'s backend per layer, planned here when None) and each
    of ``names`` that runs every layer. Every policy calls a layer on the same seeded inputs (the op
    record's benchmark inputs; biases, like activations, are left out)."""
    specs = _specs(layers)
    inputs = [op_info("conv2d").bench_inputs(s, np.random.default_rng(0))[:2] for s in specs]

    def calls(backend_of):
        return [_call(s, x, w, backend_of(s)) for s, (x, w) in zip(specs, inputs)]

    def estimated(s):
        choice = autoselect.estimate("conv2d", s)
        return choice.backend if choice is not None else "auto"

    baseline = bench.baseline_name()
    out = {baseline: calls(lambda s: baseline)} if baseline else {}
    out["auto"] = calls(lambda s: "auto")
    out["auto:estimate"] = calls(estimated)
    route = autoselect.plan("conv2d", specs) if route is None else route
    out["auto:plan"] = [_call(s, x, w, b) for s, (x, w), b in zip(specs, inputs, route)]
    for name in names:
        if _runs_all(name, specs):
            out[name] = calls(lambda s, name=name: name)
    return out


def supporting_candidates(layers) -> list[str]:
    """Candidates that run every layer (the default ``--backends``)."""
    specs = _specs(layers)
    return [n for n in autoselect.candidates("conv2d", specs[0]) if _runs_all(n, specs)]


def run_pass(calls) -> float:
    """Seconds for one pass: every call in order."""
    started = time.perf_counter()
    for call in calls:
        call()
    return time.perf_counter() - started


def measure(passes: dict, rounds: int, probe: bool = True) -> dict:
    """Per policy: ``{"first": s, "rounds": [s, ...], "free": [bool, ...]}`` (see the module docstring).
    In a round, each policy runs one untimed pass before its timed one, so that a timed pass follows a
    pass of its own policy (its own thread pools awake), never another policy's. With ``probe``, ``free``
    says which rounds ran on a free machine (:class:`harness.support.core_speed.FreeWatch`)."""
    out = {name: {"first": run_pass(calls), "rounds": [], "free": []} for name, calls in passes.items()}
    names = list(passes)
    watch = core_speed.FreeWatch(enabled=probe)
    watch.start()
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            run_pass(passes[name])
            out[name]["rounds"].append(run_pass(passes[name]))
        free = watch.reason() is None
        for name in names:
            out[name]["free"].append(free)
    return out


def auto_mix(calls) -> Counter:
    """The backends one pass of ``auto`` ``calls`` runs (after its decisions), and on how many layers."""
    ran = Counter()
    for call in calls:
        call()
        ran[resolve.last_auto_backend()] += 1
    return ran


def report(name: str, batch: int, layers, times: dict, mix: Counter, planned: Counter | None = None) -> str:
    """The per-policy table: best pass, first pass, ratio to the first policy (the baseline) with its interval."""
    first = next(iter(times.values()))  # every policy ran in every round: one set of flags
    rounds = len(first["rounds"])
    free = sum(first.get("free") or [True] * rounds)
    keep = paired.free_indices(first.get("free"), rounds)
    base = [first["rounds"][i] for i in keep]
    flops = sum(op_info("conv2d").counts(s)["flops_dense"] for s in _specs(layers))
    lines = [f"{name}, batch {batch}: {len(layers)} convolutions, {flops / 1e9:.2f} GFLOP a pass; "
             + (f"{free} of {rounds} rounds ran on free cores, the others are left out" if free else
                f"no round of {rounds} ran on free cores (a core was contended in each): no figure"),
             f"{'policy':<14} {'best pass ms':>12} {'GFLOP/s':>8} {'x torch [95% interval]':>24} {'first pass ms':>14}"]
    for policy, t in times.items():
        kept = [t["rounds"][i] for i in keep]
        best = min(kept)
        ratio = paired.format_ratio(*paired.ratio_interval(base, kept))
        lines.append(f"{policy:<14} {best * 1e3:>12.2f} {flops / best / 1e9:>8.1f} {ratio:>24} {t['first'] * 1e3:>14.1f}")
    lines.append("auto ran: " + ", ".join(f"{b} on {n}" for b, n in mix.most_common()))
    if planned:
        lines.append(f"auto:plan ran ({autoselect.PLAN_SWITCH_S * 1e3:g} ms a switch): "
                     + ", ".join(f"{b} on {n}" for b, n in planned.most_common()))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.bench.network", description=__doc__.split("\n")[0])
    parser.add_argument("--network", default="resnet50", choices=list(networks.NETWORKS), help="default resnet50")
    parser.add_argument("--batch", type=int, default=1, help="default 1")
    parser.add_argument("--threads", type=int, default=2, help="threads for every library (default 2)")
    parser.add_argument("--rounds", type=int, default=5, help="paired rounds (default 5)")
    parser.add_argument("--backends", default=None,
                        help="comma-separated single-backend policies (default: every candidate that runs all layers)")
    args = parser.parse_args(argv)
    if args.batch < 1 or args.threads < 1 or args.rounds < 1:
        parser.error("--batch, --threads and --rounds must be at least 1")
    steady_heap()  # the heap every benchmark times in (harness.support.allocator)
    layers = conv_layers(args.network, args.batch)
    started = time.time()
    with pinned_threads(args.threads):
        names = supporting_candidates(layers) if args.backends is None else [n for n in args.backends.split(",") if n]
        for n in names:
            get_backend(n)  # an unknown name fails here, with the known ones listed
        route = autoselect.plan("conv2d", _specs(layers))
        passes = policies(layers, names, route)
        times = measure(passes, args.rounds)
        mix = auto_mix(passes["auto"])
        print(f"threads {args.threads}; auto: {autoselect.model()['source']}"
              + ("" if autoselect.TIE_BREAK else ", no tie-break (CONVBENCH_AUTO_TIE_BREAK=0)"))
        print(report(args.network, args.batch, layers, times, mix, Counter(route)))
    print(f"{time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
