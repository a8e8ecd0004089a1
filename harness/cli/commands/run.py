"""``convbench run``: the main job — measure the machine, verify every available backend,
benchmark the default suites (every backend and ``auto``), and write the report
(``reports/report.html``: one self-contained page, plots embedded)."""

from __future__ import annotations

import sys
import time

import pandas as pd

from harness.bench import calibration
from harness.bench import runner as bench
from harness.support.machine import record, summary_lines
from harness.backend.registry import backends
from harness.report.page import REPORTS, write_report
from harness.support.results_io import write_csv
from harness.verify.verifier import summarize, verify

DEFAULT_SUITES = ("resnet50", "mobilenetv2", "large_kernels")
DEFAULT_CASES = 300


def register(sub) -> None:
    parser = sub.add_parser("run", help="the main job: verify all backends, benchmark the default suite, report")
    parser.add_argument("--cases", type=int, default=DEFAULT_CASES, help=f"random verification cases per backend (default {DEFAULT_CASES})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--suite", default=",".join(DEFAULT_SUITES),
                        help=f"suites to benchmark, comma-separated (default {','.join(DEFAULT_SUITES)})")
    parser.add_argument("--batch", default="1", help="batch size(s), comma-separated (default 1)")
    parser.add_argument("--threads", type=int, default=None, help="threads for every backend (default: all usable)")
    parser.add_argument("--budget", type=float, default=0.2, metavar="S", help="timing budget per case (default 0.2 s)")
    parser.add_argument("--limit", type=float, default=5.0, metavar="S",
                        help="skip cases estimated or first measured above S seconds (default 5)")
    parser.add_argument("--no-bench", action="store_true", help="verify and report only")
    parser.set_defaults(func=run)


def run(args) -> int:
    started = time.time()
    machine = record()
    print("\n".join(summary_lines(machine)), end="\n\n")
    names = [b.name for b in backends() if b.available]
    skipped = [f"{b.name} ({b.reason})" for b in backends() if not b.available]
    print(f"backends: {', '.join(names)}" + (f"; unavailable: {'; '.join(skipped)}" if skipped else ""))
    reports = []
    for name in names:
        print(f"verifying {name} ...", file=sys.stderr, flush=True)
        reports.append(verify(name, cases=args.cases, seed=args.seed, progress=sys.stderr.isatty()))
    verified = pd.concat(reports, ignore_index=True)
    write_csv(verified, REPORTS / "verify.csv")
    print(summarize(verified).to_string(float_format=lambda v: f"{v:.3g}"), end="\n\n")
    if not args.no_bench:
        suites = [s for s in args.suite.split(",") if s]
        batches = [int(b) for b in args.batch.split(",")]
        cases = bench.plan(suites, batches=batches)
        threads = args.threads or machine["cpu"]["usable_cpus"]
        # no calibration for this machine, versions and code yet: make one (about a minute)
        calibration.ensure(threads=threads, progress=sys.stderr.isatty())
        # 'auto' times the candidates once per layer (untimed) and is benchmarked as the backend it picks
        bench_started = time.time()
        results = bench.run(cases, names + ["auto"], threads=threads, budget_s=args.budget, limit_s=args.limit,
                            machine=machine, progress=sys.stderr.isatty())
        bench.save(results, REPORTS / "bench.csv", {
            "suites": suites, "backends": names + ["auto"], "batches": batches, "dtypes": ["float32"],
            "threads": threads, "min_runs": 3, "budget_s": args.budget, "cache": "hot", "limit_s": args.limit,
            "machine": machine,
        }, bench_started)
        print(bench.table(results), end="\n\n")
    out = write_report(REPORTS / "verify.csv", None if args.no_bench else REPORTS / "bench.csv", machine)
    print(f"report: open {out.with_name('report.html')} (self-contained, plots embedded); also {out}, "
          f"every number in {out.with_name('results.csv')} ({time.time() - started:.0f} s)")
    return 1 if (verified.status == "failed").any() else 0
