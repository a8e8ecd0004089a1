"""Padding arithmetic and padding modes, shared by the spec and every backend."""

from __future__ import annotations

import numpy as np

#: torch padding_mode -> numpy.pad mode
NUMPY_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def same_pads(kernel: int, dilation: int) -> tuple[int, int]:
    """torch's 'same' split: the smaller half before, the remainder after (= ONNX's SAME_UPPER)."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def same_lower_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """ONNX's ``auto_pad=SAME_LOWER``: ``ceil(size / stride)`` outputs, the odd extra row/column
    of padding *before* (top/left): ``P = (ceil(size/stride) - 1) * stride + dilation*(k-1) + 1 - size``
    split ``(ceil(P/2), floor(P/2))``. At stride 1 it is torch's 'same' mirrored."""
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + dilation * (kernel - 1) + 1 - size)
    return total - total // 2, total // 2


def per_side_pads(padding, name: str = "padding"):
    """``((top, bottom), (left, right))`` (JAX ``lax`` style) as ``(top, bottom, left, right)``,
    or None when ``padding`` is not of that form; ValueError for a negative side."""
    if not (isinstance(padding, (tuple, list)) and len(padding) == 2
            and all(isinstance(side, (tuple, list)) for side in padding)):
        return None
    from harness.ops.args import is_int

    if not all(len(side) == 2 and all(is_int(v) for v in side) for side in padding):
        raise TypeError(f"{name} per side must be ((top, bottom), (left, right)) of ints, got {padding!r}")
    pads = tuple(int(v) for side in padding for v in side)
    if min(pads) < 0:
        raise ValueError(f"{name} must be non-negative, got {padding!r}")
    return pads


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
