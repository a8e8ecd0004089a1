"""Which backend runs a call: the one named, or for ``"auto"`` the one :mod:`harness.autoselect` picks."""

from __future__ import annotations

import numpy as np

from harness.autoselect import TIE_MEMORY_FACTOR, choose, decision_state
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
    """The backend named, or for 'auto' :func:`harness.autoselect.choose`'s pick (the estimate's,
    with close calls timed when the call's memory allows), else (no cost model for the call) the
    first available candidate that supports it, by ``auto_rank``.

    ``finite=False`` (the data holds NaN or Inf) keeps 'auto' to backends that propagate them
    element by element as torch does (not FFT or Winograd, which smear them over a tile).
    """
    if name != "auto":
        return get_backend(name)
    choice = choose(op, spec, may_time=lambda: _fits_timing(op, spec)) if finite else None
    if choice is not None:
        return get_backend(choice.backend)
    candidates = [b for b in backends() if b.available and b.unsupported_reason(op, spec) is None
                  and (finite or b.propagates_nonfinite(spec.dtype))]
    if not candidates:
        raise Unsupported(f"no available backend supports {op} on {spec}")
    return min(candidates, key=lambda b: (b.auto_rank, b.name))


def _fits_timing(op: str, spec) -> bool:
    """Whether a tie-break may time candidates on ``spec``: :data:`harness.autoselect.TIE_MEMORY_FACTOR`
    times the call's memory is available (or the amount available is unknown)."""
    have = available_memory_bytes()
    return have is None or TIE_MEMORY_FACTOR * op_info(op).memory_bytes(spec) <= have


def _check_memory(op: str, need: int) -> None:
    """Refuse a call whose outputs and padded input alone (``need`` bytes) cannot fit."""
    have = available_memory_bytes()
    if have is not None and need > have:
        raise ResourceLimit(f"{op} would need at least {need / 2**30:.1f} GiB (outputs and padded input) but only "
                            f"{have / 2**30:.1f} GiB is available")


#: ``auto``'s plan per call shape: (backend for finite data, memory need), by (op, spec, the model in
#: force, op table version). One look-up (the spec hashed once) instead of three: the estimate's,
#: the memory need's and the registry's (1.9 us a decision before, on a 63 us 1x1 call: 2.9%).
_AUTO_PLANS: dict = {}
_AUTO_PLANS_MAX = 4096


def auto_backend(op: str, spec, *arrays):
    """``(backend, guarded)`` for ``backend="auto"``: memory checked, the pick for finite data, and
    for data with NaN/Inf one that propagates them as torch does. A pick that would smear them either
    checks the data itself while running (``checks_finite``: ``guarded`` is True, and the caller runs
    it under :func:`harness.support.finite_guard.requiring_finite`) or the data is scanned first."""
    key = (op, spec, decision_state(), table_version())
    try:
        picked, need = _AUTO_PLANS[key]
    except KeyError:
        picked, need = resolve_backend("auto", op, spec), op_info(op).memory_bytes(spec)
        if len(_AUTO_PLANS) >= _AUTO_PLANS_MAX:
            _AUTO_PLANS.clear()
        _AUTO_PLANS[key] = (picked, need)
    except TypeError:  # an unhashable spec: plan without remembering
        picked, need = resolve_backend("auto", op, spec), op_info(op).memory_bytes(spec)
    _check_memory(op, need)
    if picked.propagates_nonfinite(spec.dtype):
        return picked, False
    if picked.checks_finite:
        return picked, True
    return (picked if all_finite(*arrays) else resolve_backend("auto", op, spec, finite=False)), False
