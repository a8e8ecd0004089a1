"""``convbench report``: rebuild the report in reports/ from stored results (nothing is re-run)."""

from __future__ import annotations

import json
from pathlib import Path

from harness.support.machine import DEFAULT_PATH, summary_lines
from harness.report.page import ASV_RESULTS, REPORTS, write_report


def register(sub) -> None:
    parser = sub.add_parser("report", help="write reports/summary.md + report.html from stored verify/bench/asv results")
    parser.add_argument("--verify", default=str(REPORTS / "verify.csv"), metavar="CSV",
                        help="verification results (its -history.jsonl beside it is read too)")
    parser.add_argument("--bench", action="append", default=[], metavar="CSV",
                        help=f"benchmark results, repeatable (default {REPORTS / 'bench.csv'})")
    parser.add_argument("--asv", default=str(ASV_RESULTS), metavar="DIR", help=f"asv results directory (default {ASV_RESULTS})")
    parser.add_argument("--out", default=str(REPORTS / "summary.md"), metavar="MD",
                        help="the Markdown summary; report.html, results.csv and the plots go beside it")
    parser.set_defaults(func=run)


def run(args) -> int:
    machine = read_machine(DEFAULT_PATH) if DEFAULT_PATH.is_file() else None
    bench = [Path(p) for p in args.bench] or [REPORTS / "bench.csv"]
    # an unreadable results file raises ValueError: harness.cli prints it as one 'error:' line
    out = write_report(Path(args.verify), bench, machine, Path(args.out), asv_dir=Path(args.asv))
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
