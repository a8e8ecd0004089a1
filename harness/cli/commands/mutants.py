"""``convbench mutants``: plant known bugs in a correct backend and show which the verifier catches."""

from __future__ import annotations

from harness.cli.args import non_negative_int
from harness.verify.mutants import MUTANTS, kill_report
from harness.verify.verifier import DEFAULT_CASES


def register(sub) -> None:
    from harness.cli.help import examples

    parser = sub.add_parser("mutants", help="measure the verifier: plant known conv bugs, report the kill rate",
                            description="Plant known convolution bugs in a correct backend and report which the "
                                        "verifier catches, and after how many cases.",
                            **examples("convbench mutants", "convbench mutants --cases 50 --only flip_kernel"))
    parser.add_argument("--cases", type=non_negative_int, default=DEFAULT_CASES, help=f"random cases per mutant (default {DEFAULT_CASES})")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--only", default=None, help=f"comma-separated subset of: {', '.join(MUTANTS)}")
    parser.set_defaults(func=run)


def run(args) -> int:
    names = [n for n in args.only.split(",") if n] if args.only else None
    unknown = sorted(set(names or ()) - set(MUTANTS))
    if unknown:
        raise ValueError(f"unknown mutant(s) {unknown}; known: {', '.join(MUTANTS)}")
    report = kill_report(cases=args.cases, seed=args.seed, names=names)
    from harness.support.render import fit_table

    print(fit_table(report[["mutant", "killed", "cases_to_kill", "caught_by", "first_failure"]]))
    killed = int(report.killed.sum())
    tier = " + scale tier" if args.cases >= DEFAULT_CASES else ""
    print(f"\nkill rate: {killed}/{len(report)} mutants caught with the budget of {args.cases} random cases + table"
          f"{tier}")
    return 0 if killed == len(report) else 1
