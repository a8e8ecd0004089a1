"""``convbench env``: measure and record the machine (CPU, BLAS kernel, peak, bandwidth, GPU)."""

from __future__ import annotations

import json
from pathlib import Path

from harness.bench import selftest as timing_selftest
from harness.support import core_speed
from harness.support.machine import DEFAULT_PATH, record, summary_lines


def register(sub) -> None:
    from harness.cli.help import examples

    parser = sub.add_parser("env", help="measure the machine: CPU, BLAS kernel, peak GFLOP/s, bandwidth, GPU",
                            description="Measure and record the machine (cached in the record file until the "
                                        "machine changes or --remeasure).",
                            **examples("convbench env", "convbench env --remeasure", "convbench env --json | jq .cpu"))
    parser.add_argument("--remeasure", action="store_true",
                        help=f"measure again even if {DEFAULT_PATH} matches this machine")
    parser.add_argument("--out", default=str(DEFAULT_PATH), metavar="JSON",
                        help=f"where the record is cached (default {DEFAULT_PATH})")
    parser.add_argument("--json", action="store_true", help="print the whole record as JSON")
    parser.set_defaults(func=run)


def run(args) -> int:
    machine = record(args.out, remeasure=args.remeasure)
    if args.json:
        print(json.dumps(machine, indent=2))
    else:
        print("\n".join(summary_lines(machine)))
        print(f"record    {args.out}")
        selftest = Path(args.out).with_name(timing_selftest.DEFAULT_PATH.name)
        print(f"timing    A/A self-test {timing_selftest.summary_line(timing_selftest.load(selftest))}")
        shares = core_speed.survey(seconds=1.0, probes=10)
        if shares:
            listed = ", ".join(f"CPU {cpu} {100 * share:.0f}%" for cpu, share in sorted(shares.items()))
            print(f"cores     contended now (share of 10 probes over 1 s, below "
                  f"{100 * core_speed.CONTENDED_BELOW:.0f}% of their fastest): {listed}")
    return 0
