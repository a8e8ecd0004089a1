"""``convbench report``: rebuild the report in reports/ from stored results (nothing is re-run)."""

from __future__ import annotations

import json
from pathlib import Path

from harness.support.machine import DEFAULT_PATH, summary_lines
from harness.report.page import ASV_RESULTS, REPORTS, write_report


def register(sub) -> None:
    from harness.cli.help import examples

    parser = sub.add_parser("report", help="write reports/summary.md + report.html from stored verify/bench/asv results",
                            description="Rebuild the report from stored results (nothing is re-run). Files named "
                                        "with --verify/--bench/--asv must exist; the defaults are used when present.",
                            **examples("convbench report", "convbench report --bench reports/bench.csv --bench old/bench.csv",
                                       "convbench report --verify my/verify.csv --out my/summary.md"))
    parser.add_argument("--verify", default=None, metavar="CSV",
                        help=f"verification results (its -history.jsonl beside it is read too; default {REPORTS / 'verify.csv'})")
    parser.add_argument("--bench", action="append", default=[], metavar="CSV",
                        help=f"benchmark results, repeatable (default {REPORTS / 'bench.csv'})")
    parser.add_argument("--asv", default=None, metavar="DIR", help=f"asv results directory (default {ASV_RESULTS})")
    parser.add_argument("--out", default=str(REPORTS / "summary.md"), metavar="MD",
                        help="the Markdown summary; report.html, results.csv and the plots go beside it")
    parser.set_defaults(func=run)


def run(args) -> int:
    machine = read_machine(DEFAULT_PATH) if DEFAULT_PATH.is_file() else None
    # a file the user named must exist; the defaults are optional (a fresh checkout has none)
    named = [("--verify", args.verify, Path.is_file), ("--asv", args.asv, Path.is_dir)]
    named += [("--bench", path, Path.is_file) for path in args.bench]
    for option, path, exists in named:  # harness.cli prints a ValueError as one 'error:' line, exit 2
        if path is not None and not exists(Path(path)):
            raise ValueError(f"{option} {path}: no such {'directory' if option == '--asv' else 'file'}")
    bench = [Path(p) for p in args.bench] or [REPORTS / "bench.csv"]
    out = write_report(Path(args.verify or REPORTS / "verify.csv"), bench, machine, Path(args.out),
                       asv_dir=Path(args.asv or ASV_RESULTS))
    print(f"report: {out} and {out.with_name('report.html')} (plots embedded); every number: "
          f"{out.with_name('results.csv')}")
    return 0


def read_machine(path: Path) -> dict:
    """The machine record ``convbench env`` wrote at ``path``; ValueError if it is not one."""
    try:
        machine = json.loads(path.read_text())
        summary_lines(machine)  # every field the report quotes is there, of the right kind
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        raise ValueError(f"{path} is not a machine record ({type(exc).__name__}: {exc}); "
                         "rewrite it with 'convbench env --remeasure'") from None
    return machine
