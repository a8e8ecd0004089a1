"""Which backend runs a call: the one named, or for ``"auto"`` the one :mod:`harness.autoselect` picks."""

from __future__ import annotations

import numpy as np

from harness.autoselect import TIE_MEMORY_FACTOR, choose, decision_state, estimate, fallback
from harness.backend.dispatch import available_memory_bytes
from harness.backend.registry import get_backend
from harness.errors import ResourceLimit
from harness.ops.table import op_info, table_version


def all_finite(*arrays) -> bool:
    """No NaN or Inf in any of the arrays; min and max propagate both, so nothing is allocated."""
    for a in arrays:
        if a is not None and a.size and not (np.isfinite(a.min()) and np.isfinite(a.max())):
            return False
    return True


#: Seconds a call is charged in ``auto``'s choice for running on another backend than the process's
#: previous ``auto`` call did: the previous backend's thread pool is still spinning, and the next
#: library's threads share the 2 cores with it. In ResNet-50's convolutions run in sequence at batch 1
#: (2 threads, this 2-core AMD EPYC, ``python -m harness.bench.network``), numba_cpu's and winograd's
#: 3x3 layers took 4-8x their own time right after an im2col layer (+1 to +3.9 ms), im2col 1.5-3x
#: after them (+0.2 to +0.5 ms); the per-layer picks summed to 26.5 ms and ran in 70 ms. In VGG-16,
#: the three winograd layers after one im2col layer took 30 ms instead of 16 (the spinning lasts
#: about 0.1 s). Passes against torch's (python -m harness.bench.network, quiet): ResNet-50 batch 1,
#: VGG-16 batch 1, ResNet-50 batch 8: no charge 0.27x, 0.56x, 0.47x; 2 ms 0.64-0.91x, 0.66-0.69x,
#: 0.56x; 5 ms 0.64-0.70x, 1.21-1.25x, 0.71-0.85x; a charge of half the pick's time (at most 5 or 10
#: ms) 0.59-0.96x, 0.66x, 0.61x. The rule is greedy, one call at a time: at 5 ms ResNet-50 stays
#: on numba_cpu, which its stem picked (48-51 ms a pass), where im2col alone takes 32-39 ms.
SWITCH_S = 5e-3
_LAST_AUTO: list = [None]  # the backend the process's previous auto call ran


def resolve_backend(name, op: str, spec, finite: bool = True, previous: str | None = None):
    """The backend named, or for 'auto' :func:`harness.autoselect.choose`'s pick (the estimate's,
    with close calls timed when the call's memory allows; the ``previous`` auto call's backend
    instead when it is within :data:`SWITCH_S` of the pick, :func:`_staying`), else (no cost model
    for the call) :func:`harness.autoselect.fallback`'s: the first available backend that supports it,
    by ``auto_rank``.

    ``finite=False`` (the data holds NaN or Inf) keeps 'auto' to backends that propagate them
    element by element as torch does (not FFT or Winograd, which smear them over a tile).
    """
    if name != "auto":
        return get_backend(name)
    choice = choose(op, spec, may_time=lambda: _fits_timing(op, spec)) if finite else None
    if choice is not None:
        return get_backend(_staying(choice, previous, lambda: estimate(op, spec).seconds))
    return get_backend(fallback(op, spec, finite))


def last_auto_backend() -> str | None:
    """The backend the process's latest ``auto`` call ran (None before the first)."""
    return _LAST_AUTO[0]


def _staying(choice, previous: str | None, estimated=None) -> str:
    """The choice's backend, or ``previous`` when its time is within :data:`SWITCH_S` of the pick's:
    the time the tie-break measured for it, else ``estimated()``'s prediction (the estimate's
    seconds per candidate); a previous backend with neither is not a candidate here."""
    if previous is None or previous == choice.backend:
        return choice.backend
    seconds = choice.seconds
    theirs = seconds.get(previous)
    if theirs is None and estimated is not None:
        theirs = estimated().get(previous)
    if theirs is None:
        return choice.backend
    return previous if theirs <= seconds[choice.backend] + SWITCH_S else choice.backend


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
    previous = _LAST_AUTO[0]
    key = (op, spec, decision_state(), table_version(), previous)
    try:
        picked, need = _AUTO_PLANS[key]
    except KeyError:
        picked, need = resolve_backend("auto", op, spec, previous=previous), op_info(op).memory_bytes(spec)
        if len(_AUTO_PLANS) >= _AUTO_PLANS_MAX:
            _AUTO_PLANS.clear()
        _AUTO_PLANS[key] = (picked, need)
    except TypeError:  # an unhashable spec: plan without remembering
        picked, need = resolve_backend("auto", op, spec, previous=previous), op_info(op).memory_bytes(spec)
    _check_memory(op, need)
    _LAST_AUTO[0] = picked.name
    if picked.propagates_nonfinite(spec.dtype):
        return picked, False
    if picked.checks_finite:
        return picked, True
    return (picked if all_finite(*arrays) else resolve_backend("auto", op, spec, finite=False)), False
