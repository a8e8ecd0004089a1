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
