"""Adjoints of the harness's data movements, for backward passes."""

from __future__ import annotations

import numpy as np

from harness.ops.padding import NUMPY_MODES


def pad_adjoint(grad_padded: np.ndarray, spec) -> np.ndarray:
    """The gradient with respect to ``x`` of ``pad_input(x, spec)``, given the padded gradient.

    Zero padding drops the gradient of the padded border; reflect, replicate and circular
    padding copy input pixels into the border, so their gradient flows back to those pixels.
    Each axis's source index comes from padding ``arange(size)`` in the same mode, so the
    adjoint can never disagree with the padding itself.
    """
    top, bottom, left, right = spec.padding
    g = grad_padded
    if spec.padding_mode == "zeros":
        return np.ascontiguousarray(g[:, :, top:top + spec.H, left:left + spec.W])
    mode = NUMPY_MODES[spec.padding_mode]
    rows = np.pad(np.arange(spec.H), (top, bottom), mode=mode)
    cols = np.pad(np.arange(spec.W), (left, right), mode=mode)
    by_rows = np.zeros(g.shape[:2] + (spec.H, g.shape[3]), dtype=g.dtype)
    np.add.at(by_rows, (slice(None), slice(None), rows), g)
    out = np.zeros(g.shape[:2] + (spec.H, spec.W), dtype=g.dtype)
    np.add.at(out, (slice(None), slice(None), slice(None), cols), by_rows)
    return out
