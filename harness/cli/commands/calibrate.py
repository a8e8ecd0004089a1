"""``convbench calibrate``: fit the ``auto`` cost model (harness.autoselect) to this machine.

Times the modelled backends on suite layers (or reads a ``convbench bench`` results CSV),
fits each backend's constants, and writes ``reports/autoselect-calibration.json``, which
:func:`harness.autoselect.estimate` uses on this machine instead of the built-in defaults.
It prints the constants and how often the estimate picks the measured winner.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from harness import autoselect
from harness.bench import runner as bench
from harness.backend.registry import backends, get_backend
from harness import suites
from harness.support.machine import record
from harness.support.provenance import git_state
from harness.support.results_io import write_atomic
from harness.cli.args import non_negative_float, positive_int

DEFAULT_SUITES = "resnet50,vgg16,mobilenetv2,large_kernels"


def modelled() -> list[str]:
    """Available backends with a cost model, the reference excluded (it is never chosen)."""
    return [b.name for b in backends() if b.cost is not None and b.role != "reference" and b.available]


def register(sub) -> None:
    from harness.cli.help import examples

    parser = sub.add_parser("calibrate", help="fit the cost model of backend 'auto' to this machine",
                            description="Time the modelled backends on suite layers (or read a bench results "
                                        "file) and fit the auto cost model's constants to this machine.",
                            **examples("convbench calibrate", "convbench calibrate --from reports/bench.csv",
                                       "convbench calibrate --suite resnet50 --threads 2"))
    parser.add_argument("--suite", default=DEFAULT_SUITES, help=f"suites to time (default {DEFAULT_SUITES})")
    parser.add_argument("--threads", type=positive_int, default=1, help="threads while timing (default 1)")
    parser.add_argument("--budget", type=non_negative_float, default=0.1, metavar="S", help="timing budget per case (default 0.1 s)")
    parser.add_argument("--from", dest="source", metavar="CSV",
                        help="fit to an existing `convbench bench` results file instead of timing")
    parser.add_argument("--out", default=str(autoselect.CALIBRATION_PATH), metavar="JSON")
    parser.set_defaults(func=run)


def run(args) -> int:
    from harness.report.page import read_results

    # a missing or bad suite or results file raises ValueError: harness.cli prints it as one 'error:' line
    if args.source and not Path(args.source).is_file():
        raise ValueError(f"--from {args.source}: no such file")
    if args.source:
        results = read_results(args.source, ["backend", "op", "suite", "layer", "batch", "dtype", "metric", "value"])
    else:
        cases = bench.plan([s for s in args.suite.split(",") if s], batches=[1])
        results = bench.run(cases, modelled(), threads=args.threads,
                            budget_s=args.budget, machine=record(), progress=sys.stderr.isatty())
    samples = samples_from(results)
    if not samples:
        raise ValueError("no timed suite layers of a modelled backend in the results")
    constants = autoselect.fit(samples)
    quality = fit_quality(samples, constants)
    saved = {
        "key": autoselect.cache_key(threads=False),
        "calibrated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": sys.argv,
        **git_state(),
        "threads": sorted(set(results.threads.dropna().astype(int))) if "threads" in results else None,
        "constants": constants,
        "quality": quality,
    }
    out = write_atomic(Path(args.out), json.dumps(saved, indent=1))
    print("constants (seconds per unit; paste into harness.autoselect.DEFAULT_MODEL to make them the default):")
    print(json.dumps(constants, indent=1))
    print("\nfit: median / worst |predicted / measured| per backend")
    for name, q in quality["per_backend"].items():
        print(f"  {name:<10} {q['median_ratio']:.2f} / {q['worst_ratio']:.2f} over {q['layers']} layers")
    agree = quality["choice"]
    print(f"\nestimate picks the measured fastest (torch excluded) on {agree['right']}/{agree['layers']} layers; "
          f"geomean time of its picks / the fastest: {agree['geomean_slowdown']:.3f}")
    print(f"calibration: {out}")
    return 0


def samples_from(results: pd.DataFrame) -> list[tuple]:
    """``(backend, op, spec, time_min)`` for every timed layer of a known suite."""
    specs = {}
    for suite, batch, dtype in results[["suite", "batch", "dtype"]].drop_duplicates().itertuples(index=False):
        if suite in suites.names():
            for layer in suites.layers(suite, int(batch), dtype):
                specs[(layer.label, int(batch), dtype)] = (layer.op, bench.op_spec(layer.op, layer.spec))
    timed = results[results.metric == "time_min"]
    out = []
    for row in timed.itertuples(index=False):
        found = specs.get((row.layer, int(row.batch), row.dtype))
        if found is not None and found[0] == row.op:
            out.append((row.backend, row.op, found[1], float(row.value)))
    return out


def fit_quality(samples, constants) -> dict:
    """How well the fitted model predicts, and how good the choices it makes are."""
    per_backend, by_layer = {}, {}
    for backend, op, spec, seconds in samples:
        predicted = autoselect.predict(backend, op, spec, constants)
        if predicted is None:
            continue
        per_backend.setdefault(backend, []).append(abs(math.log(max(predicted, 1e-12) / seconds)))
        if get_backend(backend).role == "candidate":
            by_layer.setdefault((op, spec), {})[backend] = (predicted, seconds)
    slowdowns = []
    for options in by_layer.values():
        picked = min(options, key=lambda b: options[b][0])
        slowdowns.append(options[picked][1] / min(t for _, t in options.values()))
    return {
        "per_backend": {b: {"median_ratio": float(math.exp(np.median(v))), "worst_ratio": float(math.exp(max(v))),
                            "layers": len(v)} for b, v in per_backend.items()},
        "choice": {"layers": len(slowdowns), "right": int(sum(s == 1.0 for s in slowdowns)),
                   "geomean_slowdown": float(np.exp(np.mean(np.log(slowdowns)))) if slowdowns else math.nan},
    }
