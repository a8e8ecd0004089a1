"""Validated argparse types for the ``convbench`` command line, kept in one place.

Each is a ``type=`` callable: it returns the parsed value or raises
``argparse.ArgumentTypeError`` with what is expected, so argparse reports a bad value as one
``error:`` line (exit status 2) before any work starts, instead of the value failing deep
inside a run (a traceback, or a run that silently does nothing).
"""

from __future__ import annotations

import argparse
import math

from harness.ops.args import DTYPES as FLOAT_DTYPES  # float32, float64, float16, bfloat16


def _int(text: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (a count of threads, runs, a batch size)."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0 (a number of random cases, a seed)."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (a time limit in seconds)."""
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (a timing budget in seconds)."""
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def positive_int_list(text: str) -> list[int]:
    """Comma-separated integers >= 1, at least one (batch sizes: ``1,8``)."""
    items = [item for item in str(text).split(",") if item.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 1, got {text!r}")
    return [positive_int(item) for item in items]


def positive_int_list_text(text: str) -> str:
    """:func:`positive_int_list` checked, given back as its canonical text (``1,8``), for an
    option passed on as a string (an environment variable)."""
    return ",".join(str(value) for value in positive_int_list(text))


def float_dtype_list(text: str) -> list[str]:
    """Comma-separated float dtypes (``float32``, ``float64``, ``float16``, ``bfloat16``), at least one."""
    items = [item.strip() for item in str(text).split(",") if item.strip()]
    wrong = [item for item in items if item not in FLOAT_DTYPES]
    if not items or wrong:
        raise argparse.ArgumentTypeError(
            f"expected {', '.join(FLOAT_DTYPES)} (one, or several comma-separated), got {text!r}")
    return list(dict.fromkeys(items))


def float_dtype(text: str) -> str:
    """One float dtype the backends take (see :func:`float_dtype_list`)."""
    items = float_dtype_list(text)
    if len(items) != 1:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(FLOAT_DTYPES)}, got {text!r}")
    return items[0]
