"""``convbench``: the command line. Each subcommand lives in ``harness/cli/commands/<name>.py``."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from harness.cli import commands
from harness.errors import Unsupported

# What an ordinary mistake raises: a bad value or file (ValueError, which includes JSON and
# Unicode decoding errors, and TypeError for a file holding the wrong kind of JSON), a missing
# or unreadable file (OSError), a call no backend supports (Unsupported, with ResourceLimit).
# These end as one 'error:' line and exit status 2. Anything else (AttributeError, KeyError, ...)
# is a bug in convbench or a plug-in and keeps its traceback, so that it can be found and fixed;
# CONVBENCH_TRACEBACK=1 shows the traceback of the ordinary ones too.
USER_ERRORS = (ValueError, TypeError, OSError, Unsupported)
from harness.cli.help import VersionAction


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convbench",
        description="Verify convolution backends against PyTorch and benchmark them on real network layers.",
    )
    parser.add_argument("--version", action=VersionAction, help="print the version and the git commit, and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not module.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{module.name}").register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        if os.environ.get("CONVBENCH_TRACEBACK"):
            raise
        print(f"convbench {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2


def _one_line(exc: BaseException) -> str:
    """The exception as one line: its message (or its type when it has none), newlines folded."""
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) not in text:
        text += f": {exc.filename}"
    return text or type(exc).__name__

