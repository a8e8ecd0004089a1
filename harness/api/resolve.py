"""Which backend runs a call: the one named, or for ``"auto"`` the one :mod:`harness.autoselect` picks."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from harness.autoselect import estimate
from harness.backend.dispatch import available_memory_bytes
from harness.backend.registry import backends, get_backend
from harness.errors import ResourceLimit, Unsupported
from harness.ops.table import op_info, table_version


def all_finite(*arrays) -> bool:
    """No NaN or Inf in any of the arrays; min and max propagate both, so nothing is allocated."""
    for a in arrays:
        if a is not None and a.size and not (np.isfinite(a.min()) and np.isfinite(a.max())):
            return False
    return True


def resolve_backend(name, op: str, spec, finite: bool = True):
    """The backend named, or for 'auto' the fastest by :func:`harness.autoselect.estimate`, else
    (no cost model for the call) the first available candidate that supports it, by ``auto_rank``.

    ``finite=False`` (the data holds NaN or Inf) keeps 'auto' to backends that propagate them
    element by element as torch does (not FFT or Winograd, which smear them over a tile).
    """
    if name != "auto":
        return get_backend(name)
    choice = estimate(op, spec) if finite else None
    if choice is not None:
        return get_backend(choice.backend)
    candidates = [b for b in backends() if b.available and b.unsupported_reason(op, spec) is None
                  and (finite or b.propagates_nonfinite(spec.dtype))]
    if not candidates:
        raise Unsupported(f"no available backend supports {op} on {spec}")
    return min(candidates, key=lambda b: (b.auto_rank, b.name))


def auto_memory_check(op: str, spec) -> None:
    """'auto' has not chosen yet: refuse a call whose outputs and padded input alone cannot fit."""
    need, have = _memory_need(op, spec, table_version()), available_memory_bytes()
    if have is not None and need > have:
        raise ResourceLimit(f"{op} would need at least {need / 2**30:.1f} GiB (outputs and padded input) but only "
                            f"{have / 2**30:.1f} GiB is available")


@lru_cache(maxsize=1024)
def _memory_need(op: str, spec, version: int) -> int:
    # per spec (and op table version): auto's decision must cost far less than the call
    return op_info(op).memory_bytes(spec)
