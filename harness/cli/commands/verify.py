"""``convbench verify``: cross-check backends against the float64 torch reference."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from harness.verify.coverage import coverage, coverage_line, sizes_line
from harness.verify.determinism import determinism_report, determinism_verdict
from harness.errors import Unsupported
from harness.ops.table import OPS, op_info
from harness.backend.plugins import add_plugin_option, load_plugins
from harness.backend.registry import backends, get_backend
from harness.support.results_io import REPORTS, RunHistory, write_csv
from harness.support.render import fit_table
from harness.verify.verifier import DEFAULT_CASES, summarize, verify
from harness.cli.args import float_dtype_list, non_negative_int, positive_float
from harness.cli.cluster_options import add_cluster_options, cluster_from_args
from harness.distributed.errors import ClusterError


def register(sub) -> None:
    from harness.cli.help import examples

    parser = sub.add_parser("verify", help="verify backends against torch on randomized and hand-picked cases",
                            description="Cross-check backends against the float64 torch reference: the hand-picked "
                                        "table plus seeded random cases; exit 0 only if every case passes. "
                                        "'mistrusted' = within the bound, but on an output that is mostly zeros, "
                                        "which proves little.",
                            **examples("convbench verify --backend im2col", "convbench verify --backend all --cases 50",
                                       "convbench verify --backend mine --plugin my_backend.py --op all --lowered",
                                       "convbench verify --backend fft --json > fft.json",
                                       "convbench verify --backend naive --cases 400 --workers 2"))
    parser.add_argument("--backend", action="append", default=[], metavar="NAME",
                        help="backend to verify (repeatable, or comma-separated; 'all' = every available one)")
    add_plugin_option(parser)
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--cases", type=non_negative_int, default=None,
                        help=f"random cases per backend, on top of the fixed table (default {DEFAULT_CASES}; "
                             f"from {DEFAULT_CASES} up the scale tier of production sizes is added)")
    budget.add_argument("--budget-seconds", type=positive_float, default=None, metavar="S",
                        help="instead of --cases: verify each backend and op for about S seconds, small cases "
                             "first (table, random cases, scale tier, then more random cases)")
    parser.add_argument("--no-scale", action="store_true",
                        help="leave out the scale tier (production sizes) that the default budget includes")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the random cases (default 0)")
    parser.add_argument("--op", action="append", default=[], metavar="OP",
                        help="op to verify (repeatable or comma-separated; 'all' = every op; default conv2d). "
                             "A backend without the op is skipped; NAME:lowered verifies a backend's lowered path")
    parser.add_argument("--dtype", type=float_dtype_list, default=None, metavar="DTYPE",
                        help="only cases in these dtypes (float32, float64, float16, bfloat16; comma-separated); "
                             "default: every dtype each backend declares. A backend declaring none of them is skipped")
    parser.add_argument("--out", default=None, metavar="CSV",
                        help="write every case's row here (default reports/verify.csv)")
    parser.add_argument("--determinism", action="store_true",
                        help="also run each case twice and with 1 vs all threads; fail a backend that "
                             "declares itself deterministic but is not")
    parser.add_argument("--lowered", action="store_true",
                        help="also verify NAME:lowered, the harness lowering, for each backend whose op is native")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--case", default=None, metavar="CASE",
                        help="check only this case, as printed: \"Conv2dCase(x_shape=..., w_shape=...)\"")
    parser.add_argument("--json", action="store_true",
                        help="print the outcome as JSON (counts per backend and op, every failed or mistrusted case "
                             "with its reproducer) instead of tables")
    add_cluster_options(parser)  # the same cases and verdicts, checked in shards on Dask workers
    parser.set_defaults(func=run)


def selected_backends(names) -> list[str]:
    """Names from repeated/comma-separated options; 'all' means every available backend."""
    wanted = [n for item in names for n in item.split(",") if n]
    if not wanted or "all" in wanted:
        return [b.name for b in backends() if b.available]
    for name in wanted:
        get_backend(name)  # ValueError with the known names
    return wanted


def selected_ops(names) -> list[str]:
    """Ops from repeated/comma-separated options; 'all' means every op of the op table."""
    wanted = [n for item in names for n in item.split(",") if n] or ["conv2d"]
    if "all" in wanted:
        return list(OPS)
    for op in wanted:
        op_info(op)  # ValueError with the known ops
    return list(dict.fromkeys(wanted))


def lowerable(op: str) -> bool:
    """The harness can build ``op`` from other ops (its record names a lowering)."""
    return op_info(op).lowering is not None


def run(args) -> int:
    # a bad name, op or plug-in raises ValueError/Unsupported: harness.cli prints it as one 'error:' line
    load_plugins(args.plugin)
    names = selected_backends(args.backend)
    if args.case is not None:
        return check_one_case(names, args.case)
    out = Path(args.out or REPORTS / "verify.csv")
    history = RunHistory(out)

    ops = selected_ops(args.op)
    cases = DEFAULT_CASES if args.cases is None else args.cases
    if args.budget_seconds is not None:
        plan = f"a budget of {args.budget_seconds:g} s"
    else:
        plan = f"{cases} random cases + table" + (" + scale tier" if cases >= DEFAULT_CASES and not args.no_scale
                                                  else "")
    if args.lowered:
        names += [f"{n}:lowered" for n in names if not n.endswith(":lowered")
                  and any(lowerable(op) and get_backend(n).op_impl(op) == "native" for op in ops)]
    reports = []
    try:
        with cluster_from_args(args) as client:
            for op in ops:
                for name in names:
                    if op not in get_backend(name).ops or (name.endswith(":lowered") and not lowerable(op)):
                        if (len(ops) == 1 or op == "conv2d") and not name.endswith(":lowered"):
                            raise Unsupported(f"backend {name!r} does not implement {op}")
                        continue
                    if args.dtype and not set(args.dtype) & set(get_backend(name).dtypes):
                        print(f"skipping {name} {op}: it declares none of the dtypes {', '.join(args.dtype)}",
                              file=sys.stderr)
                        continue
                    how = get_backend(name).op_impl(op)
                    print(f"verifying {name} {op} ({how}; {plan}, seed {args.seed})", file=sys.stderr)
                    reports.append(_verifier(client)(
                        name, op=op, cases=args.cases, seed=args.seed, budget_s=args.budget_seconds,
                        scale=False if args.no_scale else None, dtypes=args.dtype,
                        on_result=lambda row: history.add([row]),
                        progress=not args.no_progress and sys.stderr.isatty()))
    except KeyboardInterrupt:
        history.save_finished()
        print(f"\ninterrupted: the {len(history.rows)} finished case(s) are in {out} and {history.path}",
              file=sys.stderr)
        return 130
    except ClusterError as exc:  # the scheduler went away, a shard was lost: keep what came back
        history.save_finished()
        raise ClusterError(f"{exc}; the {len(history.rows)} finished case(s) are in {out} and {history.path}") \
            from None
    if not reports:  # every backend was skipped: none declares the dtypes asked for
        raise Unsupported(f"no backend among {', '.join(names)} declares the dtype(s) {', '.join(args.dtype or [])}")
    report = pd.concat(reports, ignore_index=True)
    write_csv(report, out)
    if getattr(args, "json", False):
        from harness.cli.outcome import print_json, verify_outcome

        outcome = verify_outcome(report, out)
        if args.determinism:
            outcome["determinism"] = [dict(zip(("deterministic", "verdict"), determinism_verdict(
                determinism_report(name, seed=args.seed), name)), backend=name) for name in names]
            outcome["passed"] &= all(d["deterministic"] for d in outcome["determinism"])
        print_json(outcome)
        return 0 if outcome["passed"] else 1
    print_report(report)
    print(f"\nall cases: {out} (history of every run: {history.path})")
    for name in names:
        declared = get_backend(name)
        for op in ops:
            part = report[(report.backend == declared.name) & (report.op == op)]
            if op in declared.ops and not part.empty:
                drawn = int(part.source.isin(["random", "extra"]).sum())
                reached = coverage(declared.features.get(op, ()), declared.dtypes, drawn, args.seed, op=op)
                print(f"coverage {name} {op}: {coverage_line(reached)}; {sizes_line(part)}")
    deterministic = True
    if args.determinism:
        print("\ndeterminism:")
        for name in names:
            ok, sentence = determinism_verdict(determinism_report(name, seed=args.seed), name)
            deterministic &= ok
            print(f"  {sentence}")
    return 1 if (report.status == "failed").any() or not deterministic else 0


def _verifier(client):
    """The serial verifier, or the sharded one on ``client``'s workers (same cases, same verdicts)."""
    if client is None:
        return verify
    from functools import partial

    from harness.distributed.sharded_verify import verify_on_cluster

    return partial(verify_on_cluster, client)


def check_one_case(names, text: str) -> int:
    """``--case``: one case on each backend; 1 if any fails, 2 if the case cannot be parsed."""
    from harness.ops.cases.text import parse_case
    from harness.verify.verifier import check_case

    try:
        case = parse_case(text)
    except ValueError as exc:
        print(f"convbench verify: error: {exc}", file=sys.stderr)
        return 2
    results = {name: check_case(name, case) for name in names}
    for name, result in results.items():
        print(f"{name}: {result.status} ({result.message})")
    return 1 if any(r.status == "failed" for r in results.values()) else 0


def print_report(report: pd.DataFrame) -> None:
    for op, part in report.groupby("op", sort=False):
        if report.op.nunique() > 1:
            print(f"\n{op}:")
        print(fit_table(summarize(part), index=True))
    failed = report[report.status == "failed"]
    for (name, op), rows in failed.groupby(["backend", "op"]):
        print(f"\n{name} {op}: {len(rows)} failed case(s); first ones:")
        for _, row in rows.head(5).iterrows():
            print(f"  {row.case}\n    {row.message}")
        minimal = rows[rows.minimal]
        if not minimal.empty:
            print(f"  minimal reproducer (shrunk from the smallest failure):\n    {minimal.iloc[0].reproducer}")
