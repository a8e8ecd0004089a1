"""Letting a backend that smears NaN/Inf (Winograd, FFT) tell ``auto`` that the data holds them.

``backend="auto"`` must give torch's answer for NaN/Inf data, which such backends do not (one
NaN spreads over a whole transform tile). It could scan the data before every call, but that is a
full pass over the input: 3-9% of a large Winograd layer's call (VGG-16 conv1_2 at batch 8:
6.7 ms of 74). A backend that reads every input value anyway (Winograd's range check) declares
``checks_finite=True`` and, while :func:`finite_required` is on, raises :class:`NonFiniteData`
instead of computing; ``auto`` then runs the call on a backend that propagates NaN/Inf as torch
does. Outside ``auto`` (a backend called by name) nothing changes.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager

_REQUIRED = contextvars.ContextVar("convbench_finite_required", default=False)


class NonFiniteData(Exception):
    """Raised by a ``checks_finite`` backend, under :func:`requiring_finite`, for NaN/Inf in its inputs."""


@contextmanager
def requiring_finite():
    """Within the block, ``checks_finite`` backends raise :class:`NonFiniteData` on NaN/Inf data."""
    token = _REQUIRED.set(True)
    try:
        yield
    finally:
        _REQUIRED.reset(token)


def finite_required() -> bool:
    """Whether the caller asked for :class:`NonFiniteData` instead of a result smeared by NaN/Inf."""
    return _REQUIRED.get()
