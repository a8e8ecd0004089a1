"""Which code produced a results file: the git commit of the checkout and whether it was dirty."""

from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path

#: The checkout this harness runs from (``harness/support/`` -> the repository root).
ROOT = Path(__file__).resolve().parents[2]


@lru_cache(maxsize=None)
def git_state(root: str | None = None) -> dict:
    """``{"git_commit": sha or "", "git_dirty": True/False/None}`` of the checkout at ``root``.

    ``git_dirty`` is True when tracked files differ from the commit (untracked files do not
    count: reports/ and .asv/ live there). Outside a git checkout, or without git, the commit
    is ``""`` and dirty is None: unknown, never guessed. Cached: one process runs one code version.
    """
    where = str(root or ROOT)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True,
                                timeout=10)
        if commit.returncode:
            return {"git_commit": "", "git_dirty": None}
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "", "git_dirty": None}
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return {"git_commit": commit.stdout.strip(), "git_dirty": dirty}


def stamp(frame):
    """``frame`` (a DataFrame of results) with ``git_commit`` and ``git_dirty`` columns added."""
    state = git_state()
    return frame.assign(git_commit=state["git_commit"], git_dirty=state["git_dirty"])
