"""``convbench run``: the main job — measure the machine, verify every available backend,
benchmark the representative layers (:mod:`harness.suites.representative`; ``--full``: whole
suites) on every backend and ``auto``, and write the report
(``reports/report.html``: one self-contained page, plots embedded)."""

from __future__ import annotations

import sys
import time

import pandas as pd

from harness.bench import calibration
from harness.suites import representative
from harness.bench import runner as bench
from harness.support import core_speed, machine_state
from harness.bench import paired, stability
from harness.support.allocator import steady_heap
from harness.support.machine import record, summary_lines
from harness.backend.registry import backends, get_backend
from harness.report.page import REPORTS, write_report
from harness.support.results_io import RunHistory, write_csv
from harness.bench.terminal import results_table
from harness.support.provenance import git_state
from harness.support.render import fit_table
from harness.verify.verifier import summarize, verify
from harness.cli.args import non_negative_float, non_negative_int, positive_float, positive_int, positive_int_list

#: Seconds the main job spends at most re-measuring layers whose timings came out unstable: on the
#: quiet 2-core machine, 10 rounds left 12 of the 16 representative layers unranked and 90 s more left
#: 5 (2026-12-02); a busy machine spends the 90 s and stops.
UNTIL_STABLE_S = 90.0

#: What ``--full`` benchmarks: whole suites (the default is :mod:`harness.suites.representative`).
FULL_SUITES = ("resnet50", "mobilenetv2", "large_kernels")
DEFAULT_CASES = 300
#: Rounds per layer at most in the main job: the budget is usually met in the 8 rounds a sample
#: is sized for (``paired.TARGET_ROUNDS``); the 2 more absorb a first sample sized on a slow call.
MAX_ROUNDS = paired.TARGET_ROUNDS + 2


def register(sub) -> None:
    from harness.cli.help import examples

    parser = sub.add_parser("run", help="the main job: verify all backends, benchmark representative layers, report",
                            description="Measure the machine, verify every available backend, benchmark the "
                                        "representative layers of real networks (--full: whole suites) on every "
                                        "backend and auto, and write reports/report.html.",
                            **examples("convbench run", "convbench run --full", "convbench run --suite smoke --cases 30",
                                       "convbench run --no-bench"))
    parser.add_argument("--cases", type=non_negative_int, default=DEFAULT_CASES, help=f"random verification cases per backend (default {DEFAULT_CASES})")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--suite", default=representative.NAME,
                        help=f"suites to benchmark, comma-separated (default {representative.NAME}: "
                             f"{len(representative.LAYERS)} layers of every kind from real networks)")
    parser.add_argument("--full", action="store_true",
                        help=f"benchmark the whole {','.join(FULL_SUITES)} suites (63 layers, about 20 minutes here)")
    parser.add_argument("--batch", type=positive_int_list, default="1", help="batch size(s), comma-separated (default 1)")
    parser.add_argument("--threads", type=positive_int, default=None, help="threads for every backend (default: all usable)")
    parser.add_argument("--budget", type=non_negative_float, default=0.2, metavar="S", help="timing budget per case (default 0.2 s)")
    parser.add_argument("--limit", type=positive_float, default=5.0, metavar="S",
                        help="skip cases estimated or first measured above S seconds (default 5)")
    parser.add_argument("--max-rounds", type=positive_int, default=MAX_ROUNDS, metavar="N",
                        help=f"interleaved rounds per layer at most (default {MAX_ROUNDS}; at least {paired.MIN_ROUNDS} run)")
    parser.add_argument("--until-stable", type=float, default=UNTIL_STABLE_S, metavar="SECONDS",
                        help="re-measure layers with unstable timings, spending at most SECONDS in all "
                             f"(default {UNTIL_STABLE_S:g}; 0: no)")
    parser.add_argument("--no-bench", action="store_true", help="verify and report only")
    parser.add_argument("--no-calibrate", action="store_true",
                        help="auto uses the existing calibration or the backends' shipped constants; never calibrates")
    parser.set_defaults(func=run)


def run(args) -> int:
    started = time.time()
    machine = record()
    print("\n".join(summary_lines(machine)), end="\n\n")
    names = [b.name for b in backends() if b.available]
    skipped = [f"{b.name} ({b.reason})" for b in backends() if not b.available]
    print(f"backends: {', '.join(names)}" + (f"; unavailable: {'; '.join(skipped)}" if skipped else ""))
    # every finished case and layer is appended to the histories at once, and written to the
    # CSVs on Ctrl-C, as 'convbench verify' and 'convbench bench' do
    verify_history = RunHistory(REPORTS / "verify.csv")
    reports = []
    try:
        for name in names:
            print(f"verifying {name} ...", file=sys.stderr, flush=True)
            reports.append(verify(name, cases=args.cases, seed=args.seed, progress=sys.stderr.isatty(),
                                  on_result=lambda row: verify_history.add([row])))
    except KeyboardInterrupt:
        return _interrupted(verify_history, "case")
    verified = pd.concat(reports, ignore_index=True)
    write_csv(verified, REPORTS / "verify.csv")
    print(fit_table(summarize(verified), index=True), end="\n\n")
    if not args.no_bench:
        suites = list(FULL_SUITES) if args.full else [s for s in args.suite.split(",") if s]
        batches = args.batch
        cases = benchmark_cases(suites, batches)
        threads, note = machine_state.choose_threads(args.threads)
        if note:
            print(note, file=sys.stderr)
        contended = core_speed.survey_note(core_speed.survey())
        if contended:
            print(contended, file=sys.stderr)
        if not args.no_calibrate:  # no calibration for this machine, versions and code yet: make one (about a minute)
            calibration.ensure(threads=threads, progress=sys.stderr.isatty())
        # 'auto' decides once per layer as harness.conv2d does (untimed) and is benchmarked as the backend it picks
        # the reference (the defining loops) is verified above but not timed: it is never a
        # contender, and its calls take seconds on real layers
        timed = [n for n in names if get_backend(n).role != "reference"]
        bench_started = time.time()
        bench_history = RunHistory(REPORTS / "bench.csv", columns=list(bench.COLUMNS))
        try:
            results = bench.run(cases, timed + ["auto"], threads=threads, budget_s=args.budget,
                                limit_s=args.limit, machine=machine, progress=sys.stderr.isatty(),
                                on_rows=bench_history.add, until_stable_s=args.until_stable,
                                max_rounds=args.max_rounds)
        except KeyboardInterrupt:
            return _interrupted(bench_history, "row")
        bench.save(results, REPORTS / "bench.csv", {
            **git_state(),
            "suites": suites, "backends": timed + ["auto"], "batches": batches, "dtypes": ["float32"],
            "threads": threads, "min_runs": paired.MIN_ROUNDS, "max_rounds": args.max_rounds,
            "budget_s": args.budget, "cache": "hot", "limit_s": args.limit,
            "machine": machine, "allocator": steady_heap(),
        }, bench_started)
        print(results_table(results), end="\n\n")
        for line in stability.warning_lines(results):
            print(line, file=sys.stderr)
    out = write_report(REPORTS / "verify.csv", None if args.no_bench else REPORTS / "bench.csv", machine)
    print(f"report: open {out.with_name('report.html')} (self-contained, plots embedded); also {out}, "
          f"every number in {out.with_name('results.csv')} ({time.time() - started:.0f} s)")
    return 1 if (verified.status == "failed").any() else 0


def benchmark_cases(suites, batches) -> list:
    """``(suite, Layer)`` pairs of the named suites, :data:`representative.NAME` standing for
    :mod:`harness.suites.representative`'s layers; ValueError names an unknown suite."""
    cases = []
    for name in suites:
        cases += (representative.representative_layers(batches) if name == representative.NAME
                  else bench.plan([name], batches=batches))
    return cases


def _interrupted(history: RunHistory, what: str) -> int:
    """After Ctrl-C: the finished rows to the CSV (the history has them already); exit 130."""
    history.save_finished()
    print(f"\ninterrupted: the {len(history.rows)} finished {what}(s) are in {history.out} and {history.path}",
          file=sys.stderr)
    return 130
