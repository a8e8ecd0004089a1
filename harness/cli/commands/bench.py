"""``convbench bench``: time suite layers on backends in-process; write CSV + JSON; print a table."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from harness.bench import runner as bench
from harness.support import core_speed, machine_state
from harness.bench import paired
from harness.bench import stability
from harness.bench.terminal import results_table
from harness import suites
from harness.support.allocator import steady_heap
from harness.support.machine import record
from harness.support.provenance import git_state
from harness.backend.registry import backends, get_backend
from harness.support.results_io import REPORTS, RunHistory
from harness.cli.cluster_options import add_cluster_options
from harness.cli.args import float_dtype_list, non_negative_float, positive_float, positive_int, positive_int_list


def register(sub) -> None:
    from harness.cli.help import examples

    parser = sub.add_parser("bench", help="benchmark backends on network layer suites (in-process)",
                            description="Time suite layers on backends in this process; write a long CSV (and "
                                        "the run's settings as JSON beside it); print GFLOP/s and the ratio to torch.",
                            **examples("convbench bench --suite smoke", "convbench bench --suite resnet50 --backends im2col,auto --batch 1,8",
                                       "convbench bench --shapes my_layers.benchdnn --threads 1",
                                       "convbench bench --suite smoke --json --no-progress > smoke.json"))
    parser.add_argument("--suite", action="append", default=[], metavar="NAME",
                        help=f"suite(s), repeatable or comma-separated: {', '.join(suites.names())}")
    parser.add_argument("--shapes", action="append", default=[], metavar="FILE",
                        help="a shape file: benchdnn descriptors, DeepBench tuples, or a convbench CSV")
    parser.add_argument("--backends", default="all",
                        help="comma-separated backend names, or 'all' (default; torch is always added as baseline); "
                             "'auto' picks per layer as harness.conv2d does (the cost model, its close calls timed "
                             "once; torch excluded), 'auto:measure' by timing every candidate once, "
                             "'auto:estimate' by the cost model alone, 'auto:torch' as auto:measure with torch a candidate")
    parser.add_argument("--batch", type=positive_int_list, default=None,
                        help="batch size(s), comma-separated (default: the file's own, else 1,8)")
    parser.add_argument("--dtype", type=float_dtype_list, default="float32", help="float32, float64, float16, bfloat16 (comma-separated for several; a backend that does not declare a dtype skips its rows with the reason)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="threads for every backend (default: the cores other processes leave free)")
    parser.add_argument("--repeat", type=positive_int, default=paired.MIN_ROUNDS, metavar="N",
                        help=f"minimum interleaved rounds per layer (default {paired.MIN_ROUNDS}; fewer is flagged unstable)")
    parser.add_argument("--budget", type=non_negative_float, default=0.3, metavar="S",
                        help="timed seconds per backend and layer, spread over the rounds (default 0.3)")
    parser.add_argument("--until-stable", type=non_negative_float, default=0.0, metavar="SECONDS",
                        help="re-measure layers with unstable rows, spending at most SECONDS in all (default 0: no)")
    parser.add_argument("--cold", action="store_true", help="cold cache: fresh input copies for every run")
    parser.add_argument("--limit", type=positive_float, default=bench.DEFAULT_CASE_LIMIT_S, metavar="S",
                        help=f"skip cases estimated (or first measured) above S seconds per call (default {bench.DEFAULT_CASE_LIMIT_S:g})")
    parser.add_argument("--out", default=None, metavar="CSV",
                        help="results file (a .json with the run's settings is written beside it; default "
                             "reports/bench.csv, with --scheduler reports/fleet.csv)")
    parser.add_argument("--no-progress", action="store_true", help="no progress line")
    parser.add_argument("--json", action="store_true",
                        help="print the results (long rows) and the run's settings as JSON instead of the table")
    add_cluster_options(parser, workers=False)  # --scheduler: the same benchmark on every machine of a cluster
    parser.set_defaults(func=run)


def run(args) -> int:
    # a bad name or shape file raises ValueError: harness.cli prints it as one 'error:' line
    names = _backend_names(args.backends)
    suite_names = [n for item in args.suite for n in item.split(",") if n]
    if not suite_names and not args.shapes:
        suite_names = ["smoke"]
    batches, dtypes = args.batch, args.dtype
    cases = bench.plan(suite_names, args.shapes, batches, dtypes)
    if not cases:
        raise ValueError("nothing to benchmark: the suites and shape files give no layers")
    if getattr(args, "scheduler", None) is not None:
        from harness.cli.fleet_bench import run_fleet

        return run_fleet(args, cases, names)
    machine = record()
    threads, note = machine_state.choose_threads(args.threads)
    if note:
        print(note, file=sys.stderr)
    contended = core_speed.survey_note(core_speed.survey())
    if contended:
        print(contended, file=sys.stderr)
    started = time.time()
    out = Path(args.out or REPORTS / "bench.csv")
    history = RunHistory(out, columns=list(bench.COLUMNS))

    try:
        results = bench.run(cases, names, threads=threads, budget_s=args.budget, min_runs=args.repeat,
                            cache="cold" if args.cold else "hot", limit_s=args.limit, machine=machine,
                            progress=not args.no_progress, on_rows=history.add, until_stable_s=args.until_stable)
    except KeyboardInterrupt:
        history.save_finished()
        print(f"\ninterrupted: the {len(history.rows)} finished row(s) are in {out} and {history.path}",
              file=sys.stderr)
        return 130
    bench.save(results, out, {
        **git_state(),
        "suites": suite_names, "shape_files": args.shapes, "backends": names, "batches": batches,
        "dtypes": dtypes, "threads": threads, "min_runs": args.repeat, "budget_s": args.budget,
        "cache": "cold" if args.cold else "hot", "limit_s": args.limit, "machine": machine,
        "until_stable_s": args.until_stable, "allocator": steady_heap(),
    }, started)
    if getattr(args, "json", False):
        from harness.cli.outcome import bench_outcome, print_json

        print_json(bench_outcome(results, out))
        return 0
    print(results_table(results))
    for line in stability.warning_lines(results):
        print(line, file=sys.stderr)
    print(f"\nresults: {out} (+ {out.with_suffix('.json').name}); threads {threads}; "
          f"ratio = torch time / backend time (> 1: faster than torch)")
    return 0


def _backend_names(text: str) -> list[str]:
    wanted = [n for n in text.split(",") if n]
    if not wanted or "all" in wanted:
        return [b.name for b in backends()]
    for name in wanted:
        if name not in bench.AUTO_NAMES:  # 'auto' is resolved per layer by harness.autoselect
            get_backend(name)  # ValueError listing the known names
    return wanted
