"""What every subcommand's ``--help`` ends with: worked examples (argparse's epilog)."""

from __future__ import annotations

import argparse


def examples(*lines: str) -> dict:
    """Keyword arguments for ``add_parser``: an ``examples:`` epilog listing ``lines`` as typed.

    >>> examples("convbench env")["epilog"]
    'examples:\\n  convbench env'
    """
    return {"epilog": "examples:\n" + "\n".join(f"  {line}" for line in lines),
            "formatter_class": argparse.RawDescriptionHelpFormatter}


def version_text() -> str:
    """``convbench 0.1.0 (git 1a2b3c4d5e, dirty)``: the installed version and the checkout's commit."""
    from importlib.metadata import PackageNotFoundError, version

    from harness.support.provenance import git_state

    try:
        number = version("convbench")
    except PackageNotFoundError:
        number = "unknown (not installed)"
    state = git_state()
    where = ""
    if state["git_commit"]:
        where = f" (git {state['git_commit'][:10]}{', dirty' if state['git_dirty'] else ''})"
    return f"convbench {number}{where}"


class VersionAction(argparse.Action):
    """``--version``: print :func:`version_text` and exit 0 (asks git only when used)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit()
