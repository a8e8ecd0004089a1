"""Terminal tables that fit the terminal: every ``convbench`` command prints through here.

Numbers are shown to three significant figures (:func:`sig`), tables are laid out by
`tabulate <https://pypi.org/project/tabulate/>`_, and a table wider than the terminal is
split into column blocks that each repeat the key columns (:func:`fit_table`). The width is
``COLUMNS`` when set, else :data:`DEFAULT_WIDTH` (not the tty's size: output piped to a file
or a CI log stays readable and the same from run to run).
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd

DEFAULT_WIDTH = 100
#: Long text cells (sources, reasons) are wrapped at this many characters.
TEXT_WRAP = 48


def terminal_width(default: int = DEFAULT_WIDTH) -> int:
    """``COLUMNS`` when it is a positive integer, else ``default``."""
    try:
        width = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        return default
    return width if width > 0 else default


def sig(value, digits: int = 3) -> str:
    """``value`` to ``digits`` significant figures, without an exponent between 1e-3 and 1e6.

    >>> sig(0.001234), sig(2.0), sig(12345.6), sig(1.5e-7), sig(7), sig(float("nan"))
    ('0.00123', '2.00', '12300', '1.50e-07', '7', '')
    """
    if value is None or isinstance(value, str):
        return "" if value is None else value
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    if math.isnan(value):
        return ""
    if math.isinf(value) or value == 0:
        return str(value) if value else "0"
    rounded = float(f"{value:.{digits}g}")
    if 1e-3 <= abs(rounded) < 1e6:
        decimals = max(0, digits - 1 - math.floor(math.log10(abs(rounded))))
        return f"{rounded:.{decimals}f}"
    return f"{rounded:.{digits - 1}e}"


def _cells(frame: pd.DataFrame) -> list[list[str]]:
    return [[sig(v) if not isinstance(v, str) else v for v in row] for row in frame.itertuples(index=False)]


def render(frame: pd.DataFrame, wrap: int | None = TEXT_WRAP) -> str:
    """One table, numbers to three significant figures, text cells wrapped at ``wrap`` characters."""
    from tabulate import tabulate

    cells = _cells(frame)
    widths = None
    if wrap:
        widths = [wrap if any(len(c) > wrap for c in column) else None for column in zip(*cells)] or None
    # numbers right-aligned (column dtype numeric, or every filled cell a formatted number), text left
    align = ["right" if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
             or all(_numeric(v) for v in column if v) else "left"
             for c, column in zip(frame.columns, zip(*cells) if cells else [()] * frame.shape[1])]
    return tabulate(cells, headers=[str(c) for c in frame.columns], tablefmt="simple", disable_numparse=True,
                    maxcolwidths=widths, colalign=align)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def fit_table(frame: pd.DataFrame, keys: int = 1, width: int | None = None, index: bool = False) -> str:
    """``frame`` rendered to fit ``width`` columns (default :func:`terminal_width`).

    Parameters
    ----------
    frame : pandas.DataFrame
        The table; with ``index=True`` its index becomes the leading column(s).
    keys : int
        Leading columns that identify a row (layer, backend, ...): repeated in every block
        when the table is split.
    width : int, optional
        Characters available per line.

    Returns
    -------
    str
        One table, or several blocks separated by a blank line, each at most ``width``
        wide whenever the key columns and one more column fit in it.
    """
    width = width or terminal_width()
    if index:
        keys += frame.index.nlevels - 1 if frame.index.nlevels > 1 else 0
        frame = frame.reset_index()
    if frame.empty:
        return render(frame)
    whole = render(frame)
    if _widest(whole) <= width or frame.shape[1] <= keys + 1:
        return whole
    key_part, rest = frame.iloc[:, :keys], list(frame.columns[keys:])
    blocks, current = [], []
    for column in rest:
        trial = pd.concat([key_part, frame[current + [column]]], axis=1)
        if current and _widest(render(trial)) > width:
            blocks.append(current)
            current = []
        current.append(column)
    blocks.append(current)
    return "\n\n".join(render(pd.concat([key_part, frame[block]], axis=1)) for block in blocks)


def _widest(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def wrap_text(text: str, indent: str = "", width: int | None = None) -> str:
    """Prose wrapped to the terminal's width (continuation lines indented by ``indent`` plus two)."""
    import textwrap

    return textwrap.fill(text, width=width or terminal_width(), initial_indent=indent,
                         subsequent_indent=indent + "  ", break_on_hyphens=False)


def si(value: float) -> str:
    """A count with an SI prefix, three significant figures: ``si(416520) == '417 k'``, ``si(4.09e9) == '4.09 G'``."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{sig(value / factor)} {prefix}"
    return f"{sig(value)} "
