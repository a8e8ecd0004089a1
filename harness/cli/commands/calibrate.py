"""``convbench calibrate``: fit the ``auto`` cost model (harness.autoselect) to this machine.

Times the modelled backends on the probe layers (``harness.bench.calibration.PROBE``, about a
minute on a 2-core machine; see ``harness.bench.calibration.time_probes``), on
whole suites (``--suite``) or reads a ``convbench bench`` results CSV (``--from``), fits each
backend's constants, and saves them as this machine's calibration in the cache directory
(``harness.autoselect.calibration_path()``), which :func:`harness.autoselect.estimate` then uses
instead of the backends' shipped defaults. It prints the constants, the fit's error, and the
leave-one-suite-out table: on each suite's layers, what a model fitted on the other suites
picks against the measured best candidate (the same measured times; nothing is re-timed).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from harness import autoselect
from harness.bench import calibration
from harness.bench import runner as bench
from harness.cli.args import non_negative_float, positive_float, positive_int
from harness.cli.help import examples
from harness.support.machine import record

DEFAULT_SUITES = "resnet50,vgg16,mobilenetv2,large_kernels"


def modelled() -> list[str]:
    """Available backends with a cost model, the reference excluded (it is never chosen)."""
    return calibration.modelled()


def register(sub) -> None:
    parser = sub.add_parser("calibrate", help="fit the cost model of backend 'auto' to this machine",
                            description="Time the modelled backends on probe layers (or read a bench results file), "
                                        "fit the auto cost model to this machine and judge it leave-one-suite-out.",
                            **examples("convbench calibrate", "convbench calibrate --from reports/bench.csv",
                                       "convbench calibrate --suite resnet50 --threads 2"))
    parser.add_argument("--suite", default=None,
                        help="time these suites' layers at batch 1 (comma-separated, e.g. "
                             f"{DEFAULT_SUITES}) instead of the {len(calibration.PROBE)} probe layers")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="threads while timing (default: all usable, as `convbench run`)")
    parser.add_argument("--budget", type=non_negative_float, default=calibration.MEASURE_S, metavar="S",
                        help=f"timed seconds per backend and layer (default {calibration.MEASURE_S:g} s)")
    parser.add_argument("--limit", type=positive_float, default=2.0, metavar="S",
                        help="skip cases estimated or first measured above S seconds (default 2)")
    parser.add_argument("--from", dest="source", metavar="CSV",
                        help="fit to an existing `convbench bench` results file instead of timing")
    parser.add_argument("--out", default=None, metavar="JSON",
                        help="where to save (default: this machine's calibration in the cache directory)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from harness.report.page import read_results

    # nothing to fit, a missing or unreadable --from, an unwritable --out: ValueError/OSError,
    # which harness.cli prints as one 'error:' line (exit status 2)
    if args.source and not Path(args.source).is_file():
        raise ValueError(f"--from {args.source}: no such file")
    results = cases = None
    if args.source:
        results = read_results(args.source, ["backend", "op", "suite", "layer", "batch", "dtype", "metric", "value"])
    elif args.suite:
        cases = bench.plan([s for s in args.suite.split(",") if s], batches=[1])
    machine = record()
    threads = args.threads or machine["cpu"]["usable_cpus"]
    saved = calibration.calibrate(cases, threads=threads, budget_s=args.budget, limit_s=args.limit,
                                  machine=machine, progress=sys.stderr.isatty(), results=results, out=args.out)
    print("constants (seconds per unit; a backend's CostModel.defaults are the fallback without a calibration):")
    print(json.dumps(saved["constants"], indent=1))
    print("\nfit: median / worst max(predicted/measured, measured/predicted) per backend")
    for name, q in saved["fit"].items():
        print(f"  {name:<10} {q['median_ratio']:.2f} / {q['worst_ratio']:.2f} over {q['layers']} layers")
    agree = saved["choice"]
    print(f"\non the layers it was fitted on, the estimate alone is within 10% of the best candidate on "
          f"{agree['within']}/{agree['layers']}; geomean {agree['geomean']:.3f}x")
    if saved["held_out"]:
        print("\nleave-one-suite-out (fitted on the other suites, judged on this one's layers; auto as it runs: "
              "the estimate's pick, with the candidates it predicts within "
              f"{autoselect.TIE_MARGIN:g}x of it timed again as a tie-break):")
        print(calibration.table(saved["held_out"]))
    ruled_out = sum(r["reason"].startswith("predicted") for r in saved["not_timed"])
    if saved["not_timed"]:
        print(f"\nnot timed: {len(saved['not_timed'])} (backend, layer) cases, {ruled_out} of them predicted "
              f"over {calibration.RULED_OUT:g}x the fastest candidate; the rest unsupported or over --limit")
    print(f"\ncalibration: {saved['path']} (threads {saved['threads']}, {saved['seconds']:.0f} s)")
    return 0
