"""``convbench asv``: asv's commands with the flags this project's setup needs.

asv 0.6 with an existing environment has traps this wrapper handles:

* results are not saved without ``--set-commit-hash``: ``run`` passes the current commit;
* ``--python=same`` runs in this interpreter (where convbench is installed, so the
  dropped ``PYTHONPATH`` does not matter);
* ``asv machine`` asks questions: ``--yes`` takes the detected answers.

``--suites`` (``all``: every suite in ``harness/suites``), ``--batches`` and ``--threads`` choose
the grid (``benchmarks/bench_conv2d.py`` reads them from ``CONVBENCH_ASV_*``); ``--bench REGEX``
and ``--asv-args "..."`` pass arguments on to asv, e.g.
``convbench asv run --suites smoke --bench track_gflops``. The full dashboard:
``convbench asv run --suites all --quick`` then ``convbench asv publish``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from harness.cli.args import positive_int_list_text

ACTIONS = ("machine", "run", "publish", "check", "preview")


def register(sub) -> None:
    parser = sub.add_parser("asv", help="run the asv benchmarks (machine / run / publish / check)")
    parser.add_argument("action", choices=ACTIONS, help="what to do ('run' registers the machine first)")
    parser.add_argument("--suites", default=None,
                        help="comma-separated suites to benchmark, or 'all' (sets CONVBENCH_ASV_SUITES)")
    parser.add_argument("--batches", type=positive_int_list_text, default=None, help="batch sizes (sets CONVBENCH_ASV_BATCHES)")
    parser.add_argument("--threads", type=positive_int_list_text, default=None,
                        help="thread counts for every backend (sets CONVBENCH_ASV_THREADS; default: every usable CPU)")
    parser.add_argument("--quick", action="store_true", help="one run per benchmark (asv run --quick)")
    parser.add_argument("--bench", default=None, metavar="REGEX", help="only benchmarks matching REGEX (asv --bench)")
    parser.add_argument("--asv-args", default="", metavar="ARGS",
                        help="more arguments for asv, as one quoted string")
    parser.set_defaults(func=run)


def asv_command(action: str, quick: bool = False, extra=()) -> list[list[str]]:
    """The asv command lines one action runs, in order."""
    asv = _asv_executable()
    if action == "machine":
        return [[asv, "machine", "--yes"]]
    if action == "check":
        return [[asv, "check", "--python=same", *extra]]
    if action == "run":
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        line = [asv, "run", "--python=same", "--set-commit-hash", commit, "--show-stderr"]
        if quick:
            line.append("--quick")
        return [[asv, "machine", "--yes"], line + list(extra)]
    return [[asv, action, *extra]]


def suite_names(text: str) -> list[str]:
    """The suites ``--suites`` names: ``all`` is every shipped suite; unknown names: ValueError."""
    from harness import suites

    chosen = [name.strip() for name in text.split(",") if name.strip()]
    if "all" in chosen:
        return suites.names()
    unknown = sorted(set(chosen) - set(suites.names()))
    if unknown or not chosen:
        raise ValueError(f"unknown suite(s) {', '.join(unknown) or repr(text)}; "
                         f"known: all, {', '.join(suites.names())}")
    return chosen


def asv_env(args, base=None) -> dict:
    """The environment asv runs in: ``base`` (default ``os.environ``) with the grid options."""
    env = dict(os.environ if base is None else base)
    if args.suites:
        env["CONVBENCH_ASV_SUITES"] = ",".join(suite_names(args.suites))
    if args.batches:
        env["CONVBENCH_ASV_BATCHES"] = args.batches
    if args.threads:
        env["CONVBENCH_ASV_THREADS"] = args.threads
    return env


def run(args) -> int:
    env = asv_env(args)
    root = _repo_root()
    extra = (["--bench", args.bench] if args.bench else []) + shlex.split(args.asv_args)
    for line in asv_command(args.action, args.quick, extra):
        print("+ " + " ".join(line), file=sys.stderr)
        code = subprocess.run(line, cwd=root, env=env).returncode
        if code:
            return code
    if args.action == "publish":
        print(f"dashboard: {root / '.asv' / 'html' / 'index.html'} (serve it with `convbench asv preview`)")
    return 0


def _asv_executable() -> str:
    beside = Path(sys.executable).with_name("asv")
    found = str(beside) if beside.exists() else shutil.which("asv")
    if not found:
        raise SystemExit("convbench asv: asv is not installed in this environment (pip install asv)")
    return found


def _repo_root() -> Path:
    """The folder holding asv.conf.json: the checkout this harness was installed from."""
    root = Path(__file__).resolve().parents[3]
    if not (root / "asv.conf.json").is_file():
        raise SystemExit(f"convbench asv: no asv.conf.json in {root}")
    return root
