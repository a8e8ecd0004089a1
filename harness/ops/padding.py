"""Padding arithmetic and padding modes, shared by the spec and every backend."""

from __future__ import annotations

import numpy as np

#: torch padding_mode -> numpy.pad mode
NUMPY_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def same_pads(kernel: int, dilation: int) -> tuple[int, int]:
    """torch's 'same' split: the smaller half before, the remainder after."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def full_pads(kernel: int, dilation: int) -> tuple[int, int]:
    """'full': every position where the dilated kernel overlaps the input at all."""
    return dilation * (kernel - 1), dilation * (kernel - 1)


def pad_input(x: np.ndarray, spec) -> np.ndarray:
    """``x`` (N, C, H, W) padded by ``spec.padding`` in ``spec.padding_mode``.

    After this a backend only has to compute an unpadded ('valid') convolution.
    Returns ``x`` itself when there is no padding (callers must not write to it).
    """
    top, bottom, left, right = spec.padding
    if not (top or bottom or left or right):
        return x
    widths = ((0, 0), (0, 0), (top, bottom), (left, right))
    return np.pad(x, widths, mode=NUMPY_MODES[spec.padding_mode])
