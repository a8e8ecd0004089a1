"""``convbench``: the command line. Each subcommand lives in ``harness/cli/commands/<name>.py``."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from harness.cli import commands
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
        print("\ninterrupted; results written so far are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
