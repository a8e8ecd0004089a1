"""``convbench asv``: asv's commands with the flags this project's setup needs.

asv 0.6 with an existing environment has traps this wrapper handles:

* results are not saved without ``--set-commit-hash``: ``run`` passes the current commit;
* ``--python=same`` runs in this interpreter (where convbench is installed, so the
  dropped ``PYTHONPATH`` does not matter);
* ``asv machine`` asks questions: ``--yes`` takes the detected answers;
* asv keeps the machine description in ``~/.asv-machine.json``: asv runs with ``HOME`` set to
  ``.asv/home`` inside the project, so the user's home is never written.

``publish`` renders convbench's own dashboard (:mod:`harness.report.dashboard`), one
self-contained page that needs no network, to ``reports/dashboard.html``; ``publish --asv-web``
runs asv's own ``asv publish`` instead (its pages load jQuery and flot from CDNs).

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
from harness.support.provenance import git_state

ACTIONS = ("machine", "run", "publish", "check", "preview")


def register(sub) -> None:
    from harness.cli.help import examples

    parser = sub.add_parser("asv", help="run the asv benchmarks (machine / run / publish / check)",
                            description="asv's commands with the flags this project needs; asv's machine "
                                        "file is kept in .asv/home, never in your home directory.",
                            **examples("convbench asv run --suites smoke --quick",
                                       "convbench asv run --suites all --quick --bench track_gflops",
                                       "convbench asv publish        # reports/dashboard.html, works offline",
                                       "convbench asv publish --asv-web   # asv's own pages (need the network)"))
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
    parser.add_argument("--asv-web", action="store_true",
                        help="publish: asv's own web pages (.asv/html; they load scripts from CDNs) "
                             "instead of convbench's offline dashboard")
    parser.add_argument("--out", default=None, metavar="HTML",
                        help="publish: where the dashboard goes (default reports/dashboard.html)")
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
    # asv reads and writes ~/.asv-machine.json: keep it inside the project
    env["HOME"] = str(_repo_root() / ".asv" / "home")
    return env


def run(args) -> int:
    root = _repo_root()
    if args.action == "publish" and not args.asv_web:
        return publish_dashboard(root / ".asv" / "results", args.out)
    env = asv_env(args)
    Path(env["HOME"]).mkdir(parents=True, exist_ok=True)
    if args.action == "run" and git_state(str(root))["git_dirty"]:
        print("convbench asv: the checkout has uncommitted changes; asv files the results under HEAD's commit",
              file=sys.stderr)
    extra = (["--bench", args.bench] if args.bench else []) + shlex.split(args.asv_args)
    for line in asv_command(args.action, args.quick, extra):
        print("+ " + " ".join(line), file=sys.stderr)
        code = subprocess.run(line, cwd=root, env=env).returncode
        if code:
            return code
    if args.action == "publish":
        print(f"dashboard: {root / '.asv' / 'html' / 'index.html'} (serve it with `convbench asv preview`)")
    return 0


def publish_dashboard(results_dir: Path, out=None) -> int:
    """Write convbench's offline dashboard of ``results_dir``; 2 with one line if there are no results."""
    from harness.report.dashboard import write_dashboard
    from harness.support.results_io import REPORTS

    try:
        path = write_dashboard(results_dir, Path(out) if out else REPORTS / "dashboard.html")
    except ValueError as exc:
        print(f"convbench asv: error: {exc}", file=sys.stderr)
        return 2
    print(f"dashboard: {path} (one self-contained page; open it in a browser, no server or network needed)")
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
