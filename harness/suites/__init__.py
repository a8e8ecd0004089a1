"""Shape suites: layer tables of real networks, kept as data files next to this module.

Two file formats live here:

* ``<suite>.csv`` — one named layer per row, columns
  ``name,N,C,H,W,O,KH,KW,stride,padding,dilation,groups,op,notes``. ``stride``,
  ``padding`` and ``dilation`` are ``k`` or ``h x w`` pairs written ``2x1`` (``padding`` also per
  side, ``top:bottom`` or ``top:bottomxleft:right`` as in ``0:1x1:0``); ``N`` is empty
  unless the source fixes the batch; ``op`` is ``conv2d`` or an op the harness does not
  have yet (``conv_transpose2d``), which the benchmarks then skip with the reason.
* ``<suite>.deepbench`` and ``<suite>.benchdnn`` — shape files in those tools' own
  notation (see :mod:`harness.suites.shape_files`), kept verbatim so they can be checked against
  the source by eye.

Lines starting with ``#`` are comments; each file's header says where its numbers come from.

Batch is a parameter, not part of a layer: ``batch=None`` takes the batch the file gives
(DeepBench and benchdnn rows carry one) and otherwise :data:`DEFAULT_BATCHES`.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from harness.suites.shape_files import CSV_COLUMNS, Row, read_rows  # noqa: F401 (Row: the rows layers() expands)
from harness.ops.conv_spec import Conv2dSpec

SUITE_DIR = Path(__file__).parent
SUFFIXES = (".csv", ".deepbench", ".benchdnn")
DEFAULT_BATCHES = (1, 8)
COLUMNS = CSV_COLUMNS


class Layer(NamedTuple):
    """One benchmark case: ``label`` like ``resnet50.res3_3x3``, the op, its spec, notes."""

    label: str
    op: str
    spec: Conv2dSpec
    notes: str = ""


def names() -> list[str]:
    """Every suite shipped with convbench, sorted."""
    return sorted(p.stem for p in SUITE_DIR.iterdir() if p.suffix in SUFFIXES)


def suite_path(name: str) -> Path:
    """The data file of suite ``name``; ValueError lists the known suites."""
    for suffix in SUFFIXES:
        path = SUITE_DIR / f"{name}{suffix}"
        if path.is_file():
            return path
    raise ValueError(f"unknown suite {name!r}; known suites: {', '.join(names())}")


def source(name: str) -> str:
    """The header comment of a suite's file: where its numbers come from."""
    lines = []
    for line in suite_path(name).read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").rstrip())
    return "\n".join(lines).strip()


def layers(name: str, batch: int | None = None, dtype: str = "float32") -> list[Layer]:
    """Every row of a suite, any op, as :class:`Layer` s.

    Parameters
    ----------
    name : str
        A suite name (see :func:`names`).
    batch : int or None
        Batch for every row; None keeps a row's own batch or expands it to each of
        :data:`DEFAULT_BATCHES`. Identical problems are kept once (DeepBench lists a few
        rows twice, and one shape at several batches becomes one problem at a given batch).
    dtype : {'float32', 'float64'}
    """
    rows = read_rows(suite_path(name), prefix=name)
    return expand_batches(rows, batch, dtype)


def load(name: str, batch: int = 1, dtype: str = "float32") -> list[tuple[str, Conv2dSpec]]:
    """The conv2d layers of a suite as ``(label, Conv2dSpec)`` pairs at one batch size.

    >>> load("resnet50")[0]
    ('resnet50.conv1', Conv2dSpec(N=1, C=3, H=224, W=224, O=64, KH=7, KW=7, stride=(2, 2), padding=(3, 3, 3, 3), dilation=(1, 1), groups=1, padding_mode='zeros', bias=False, dtype='float32'))
    """
    return [(l.label, l.spec) for l in layers(name, batch, dtype) if l.op == "conv2d"]


def expand_batches(rows, batch: int | None, dtype: str) -> list[Layer]:
    """:class:`Row` s -> Layers at the chosen batch (see :func:`layers`)."""
    if batch is not None and (not isinstance(batch, int) or batch < 0):
        raise ValueError(f"batch must be a non-negative int or None, got {batch!r}")
    out, seen = [], set()
    for label, op, spec, notes, own_batch in rows:
        if batch is not None:
            batches = (batch,)
        elif own_batch is not None:
            batches = (own_batch,)
        else:
            batches = DEFAULT_BATCHES
        for n in batches:
            concrete = spec.with_(N=n, dtype=dtype)
            key = (op, concrete)
            if key in seen:
                continue
            seen.add(key)
            out.append(Layer(label, op, concrete, notes))
    return out
