"""``convbench selftest-timing``: the timer's A/A test (one backend against its identical twin)."""

from __future__ import annotations

import sys

from harness.bench import selftest as timing_selftest
from harness.cli.help import examples


def register(sub) -> None:
    parser = sub.add_parser("selftest-timing",
                            help="A/A test of the timer: a backend against an identical twin; intervals must hold 1.0",
                            description="Time one backend against an identical twin registered under another name, "
                                        "in interleaved rounds: every stable ratio interval must contain 1.0.",
                            **examples("convbench selftest-timing", "convbench selftest-timing --backend torch --layers 2"))
    parser.add_argument("--backend", default=timing_selftest.DEFAULT_BACKEND,
                        help=f"backend to time against its twin (default {timing_selftest.DEFAULT_BACKEND})")
    parser.add_argument("--suite", default="smoke", help="suite whose conv2d layers are timed (default smoke)")
    parser.add_argument("--layers", type=int, default=None, metavar="N", help="only the first N layers (default all)")
    parser.add_argument("--threads", type=int, default=1, help="threads for both (default 1)")
    parser.add_argument("--budget", type=float, default=0.3, metavar="S",
                        help="timed seconds per backend and layer (default 0.3)")
    parser.add_argument("--out", default=str(timing_selftest.DEFAULT_PATH), metavar="JSON",
                        help=f"where the result is stored (default {timing_selftest.DEFAULT_PATH}; `convbench env` shows it)")
    parser.set_defaults(func=run)


def run(args) -> int:
    if args.threads < 1 or args.budget < 0 or (args.layers is not None and args.layers < 1):
        print("convbench selftest-timing: --threads and --layers must be >= 1, --budget >= 0", file=sys.stderr)
        return 2
    try:
        result = timing_selftest.run_selftest(args.backend, args.suite, args.layers, args.threads, args.budget)
    except ValueError as exc:  # an unknown or unavailable backend, an unknown suite
        print(f"convbench selftest-timing: error: {exc}", file=sys.stderr)
        return 2
    timing_selftest.save(result, args.out)
    print(f"A/A timing self-test: {result['twin']} / {result['backend']} (the same function under two names), "
          f"{args.threads} thread(s), {result['wall_s']:.1f} s")
    print("\n".join(timing_selftest.lines(result)))
    print(f"verdict: {timing_selftest.summary_line(result)}; stored in {args.out}")
    if result["verdict"] == "inconclusive":
        print("warning: no layer was measured stably (a busy machine?); the timer cannot be checked now",
              file=sys.stderr)
    return 1 if result["verdict"] == "failed" else 0
