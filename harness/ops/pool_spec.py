"""Argument checking for 2-D pooling, with ``torch.nn.functional`` rules.

Window placement along one axis (torch's ``pooling_output_shape``)::

    out = floor_or_ceil((size + 2*pad - dilation*(k - 1) - 1) / stride) + 1
    with ceil_mode, drop the last window if it would start past the input and left padding

Padding may differ per side: ``padding=((top, bottom), (left, right))`` (JAX ``lax`` style,
ONNX ``pads``); with ``before``/``after`` for the two sides of an axis, ``2*pad`` above becomes
``before + after`` and ceil_mode's last window is dropped if it starts at or past
``size + before`` (torch's ``pooling_output_shape_pad_lr``). Windows are placed from ``-before``;
taps in the padding are skipped (max) or count as zeros in the divisor only with
``count_include_pad`` (average), as in torch and ONNX.

Torch's other rules, enforced here with the same meaning: kernel, stride, dilation positive
(stride defaults to the kernel), ``0 <= pad <= kernel // 2`` (on each side), ``divisor_override != 0``, a
non-empty image, and an output of at least one element per axis. Adaptive pooling splits
``size`` into ``out`` windows ``[floor(i*size/out), ceil((i+1)*size/out))``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, replace

import numpy as np

from harness.ops.args import check_array, is_int, pair
from harness.ops.padding import per_side_pads

MAX_POOL2D_FEATURES = frozenset({"stride", "padding", "asymmetric_padding", "dilation", "ceil_mode", "return_indices"})
AVG_POOL2D_FEATURES = frozenset({"stride", "padding", "asymmetric_padding", "ceil_mode", "count_include_pad=False",
                                 "divisor_override"})
ADAPTIVE_POOL2D_FEATURES = frozenset({"uneven", "return_indices"})
INDEX_DTYPE = "int64"


def pooled_size(size: int, k: int, stride: int, pad: int, dilation: int, ceil_mode: bool,
                pad_after: int | None = None) -> int:
    """Output length along one axis, as torch computes it (``pad`` before, ``pad_after`` after;
    None: the same as before)."""
    after = pad if pad_after is None else pad_after
    span = size + pad + after - dilation * (k - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1  # the last window would start in the right padding only
    return out


@dataclass(frozen=True)
class Pool2dSpec:
    """A resolved max or average pooling problem on an (N, C, H, W) input.

    ``kind`` is ``"max"`` or ``"avg"``; ``kernel``, ``stride``, ``padding`` (top, left: where
    windows start) and ``dilation`` are (height, width) pairs; ``padding_end`` is the (bottom,
    right) padding when it differs from ``padding`` (None: symmetric); :attr:`pads` gives all four.
    ``count_include_pad`` and ``divisor_override``
    matter for ``avg``; ``dilation`` and ``return_indices`` for ``max``.
    """

    kind: str
    N: int
    C: int
    H: int
    W: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor_override: int | None = None
    return_indices: bool = False
    dtype: str = "float32"
    padding_end: tuple[int, int] | None = None

    @property
    def pads(self) -> tuple[int, int, int, int]:
        """Explicit ``(top, bottom, left, right)``."""
        bottom, right = self.padding if self.padding_end is None else self.padding_end
        return (self.padding[0], bottom, self.padding[1], right)

    @property
    def OH(self) -> int:
        top, bottom, _, _ = self.pads
        return pooled_size(self.H, self.kernel[0], self.stride[0], top, self.dilation[0], self.ceil_mode, bottom)

    @property
    def OW(self) -> int:
        _, _, left, right = self.pads
        return pooled_size(self.W, self.kernel[1], self.stride[1], left, self.dilation[1], self.ceil_mode, right)

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.C, self.H, self.W)

    @property
    def out_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.C, self.OH, self.OW)

    @property
    def outputs(self):
        """(shape, dtype) of each forward output; None for indices that were not asked for."""
        if self.kind == "avg":
            return ((self.out_shape, self.dtype),)
        return ((self.out_shape, self.dtype), (self.out_shape, INDEX_DTYPE) if self.return_indices else None)

    @property
    def window(self) -> int:
        """Taps per window, KH * KW: comparisons (max) or adds (avg) per output are one fewer."""
        return self.kernel[0] * self.kernel[1]

    @property
    def n_acc(self) -> int:
        return self.window

    @property
    def ceil_changes_shape(self) -> bool:
        return self.ceil_mode and (self.OH, self.OW) != replace(self, ceil_mode=False).out_hw

    @property
    def out_hw(self) -> tuple[int, int]:
        return (self.OH, self.OW)

    @property
    def features(self) -> frozenset[str]:
        need = set()
        if self.stride != self.kernel:
            need.add("stride")
        top, bottom, left, right = self.pads
        if any(self.pads):
            need.add("padding")
        if top != bottom or left != right:
            need.add("asymmetric_padding")
        if self.ceil_changes_shape:
            need.add("ceil_mode")
        if self.kind == "max":
            if self.dilation != (1, 1):
                need.add("dilation")
            if self.return_indices:
                need.add("return_indices")
        else:
            if self.divisor_override is not None:
                need.add("divisor_override")
            elif not self.count_include_pad and (any(self.pads) or self.ceil_changes_shape):
                need.add("count_include_pad=False")
        return frozenset(need)

    def with_(self, **changes) -> Pool2dSpec:
        return _checked(replace(self, **changes))


@dataclass(frozen=True)
class AdaptivePool2dSpec:
    """Adaptive (output-size driven) max or average pooling of an (N, C, H, W) input."""

    kind: str
    N: int
    C: int
    H: int
    W: int
    OH: int
    OW: int
    return_indices: bool = False
    dtype: str = "float32"

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.C, self.H, self.W)

    @property
    def out_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.C, self.OH, self.OW)

    @property
    def outputs(self):
        if self.kind == "avg":
            return ((self.out_shape, self.dtype),)
        return ((self.out_shape, self.dtype), (self.out_shape, INDEX_DTYPE) if self.return_indices else None)

    @property
    def max_window(self) -> tuple[int, int]:
        """The largest window along each axis (windows differ by at most one when uneven)."""
        return (max_adaptive_window(self.H, self.OH), max_adaptive_window(self.W, self.OW))

    @property
    def n_acc(self) -> int:
        kh, kw = self.max_window
        return kh * kw

    @property
    def features(self) -> frozenset[str]:
        need = set()
        if (self.OH and self.H % self.OH) or (self.OW and self.W % self.OW):
            need.add("uneven")
        if self.kind == "max" and self.return_indices:
            need.add("return_indices")
        return frozenset(need)


def adaptive_windows(size: int, out: int) -> list[tuple[int, int]]:
    """The [start, end) window of each adaptive output index along one axis."""
    return [((i * size) // out, -((-(i + 1) * size) // out)) for i in range(out)]


def avg_divisors(spec) -> np.ndarray:
    """(OH, OW) divisors of average pooling, as torch computes them.

    ``divisor_override`` when given; else the window clipped to the padded input
    (``count_include_pad=True``: padding counts, overhang past it does not) or the number of
    its taps inside the input (``count_include_pad=False``).
    """
    if spec.divisor_override is not None:
        return np.full((spec.OH, spec.OW), float(spec.divisor_override))
    top, bottom, left, right = spec.pads
    per_axis = []
    for out, size, k, s, before, after in ((spec.OH, spec.H, spec.kernel[0], spec.stride[0], top, bottom),
                                           (spec.OW, spec.W, spec.kernel[1], spec.stride[1], left, right)):
        start = np.arange(out) * s - before
        end = np.minimum(start + k, size + after)
        if not spec.count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, size)
        per_axis.append((end - start).astype(np.float64))
    return per_axis[0][:, None] * per_axis[1][None, :]


def max_adaptive_window(size: int, out: int) -> int:
    return max((end - start for start, end in adaptive_windows(size, out)), default=0)


# -- validation of public arguments ----------------------------------------------------------
def _checked(spec: Pool2dSpec) -> Pool2dSpec:
    pads = spec.pads
    for axis in (0, 1):
        k, pad = spec.kernel[axis], max(pads[2 * axis], pads[2 * axis + 1])
        if pad > k // 2:
            raise ValueError(
                f"pad should be at most half of the kernel size: got padding (top, bottom, left, right)="
                f"{spec.pads} with "
                f"kernel_size={spec.kernel}; use padding <= kernel_size // 2"
            )
    if spec.divisor_override is not None and spec.divisor_override == 0:
        raise ValueError("divisor_override must be non-zero (None divides by the window size)")
    if spec.N < 0 or spec.C < 1 or spec.H < 1 or spec.W < 1:
        raise ValueError(f"pooling needs a non-empty (C, H, W) image, got input shape {spec.x_shape}")
    if spec.OH < 1 or spec.OW < 1:
        raise ValueError(
            f"output size {spec.OH}x{spec.OW} is too small for input {spec.H}x{spec.W} with kernel "
            f"{spec.kernel}, dilation {spec.dilation} and padding {spec.pads}; use a smaller kernel"
        )
    return spec


def _pool_input(x, name="x"):
    check_array(x, name)
    if x.ndim not in (3, 4):
        raise ValueError(f"expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got {name} with shape {x.shape}")
    batched = x.ndim == 4
    return (x.shape if batched else (1,) + x.shape), batched


def pool2d_spec(kind, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                count_include_pad=True, divisor_override=None, return_indices=False):
    """Check a max (``kind='max'``) or average pooling call; returns ``(spec, batched)``."""
    shape, batched = _pool_input(x)
    kernel = pair(kernel_size, "kernel_size")
    stride = kernel if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) \
        else pair(stride, "stride")
    if divisor_override is not None and not is_int(divisor_override):
        raise TypeError(f"divisor_override must be an int or None, got {divisor_override!r}")
    per_side = per_side_pads(padding)
    if per_side is not None:
        top, bottom, left, right = per_side
        padding, padding_end = (top, left), ((bottom, right) if (bottom, right) != (top, left) else None)
    else:
        padding, padding_end = pair(padding, "padding", minimum=0), None
    spec = Pool2dSpec(
        kind, *shape, kernel=kernel, stride=stride, padding=padding, padding_end=padding_end,
        dilation=pair(dilation, "dilation"), ceil_mode=_flag(ceil_mode, "ceil_mode"),
        count_include_pad=_flag(count_include_pad, "count_include_pad"),
        divisor_override=None if divisor_override is None else int(divisor_override),
        return_indices=_flag(return_indices, "return_indices"), dtype=str(x.dtype),
    )
    return _checked(spec), batched


def adaptive_pool2d_spec(kind, x, output_size, return_indices=False):
    """Check an adaptive pooling call; ``output_size`` is an int, a pair, or None per axis (= input size)."""
    shape, batched = _pool_input(x)
    N, C, H, W = shape
    if C < 1 or H < 1 or W < 1:
        raise ValueError(f"adaptive pooling needs a non-empty (C, H, W) image, got input shape {x.shape}")
    if is_int(output_size) or output_size is None:
        output_size = (output_size, output_size)
    if not isinstance(output_size, (tuple, list)) or len(output_size) != 2:
        raise TypeError(f"output_size must be an int, None, or a pair of them, got {output_size!r}")
    sizes = []
    for given, size in zip(output_size, (H, W)):
        if given is None:
            given = size
        if not is_int(given):
            raise TypeError(f"output_size entries must be ints or None, got {output_size!r}")
        if given < 0:
            raise ValueError(f"output_size must be non-negative, got {output_size!r}")
        sizes.append(int(given))
    spec = AdaptivePool2dSpec(kind, N, C, H, W, sizes[0], sizes[1],
                              return_indices=_flag(return_indices, "return_indices"), dtype=str(x.dtype))
    return spec, batched


def _flag(value, name: str) -> bool:
    if not isinstance(value, (bool, numbers.Integral)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def _level(level) -> int:
    if not is_int(level) or level < 1:
        raise ValueError(f"pyramid levels must be positive ints, got {level!r}")
    return int(level)


def check_levels(levels) -> tuple[int, ...]:
    """Pyramid levels as a non-empty tuple of positive ints (each level L pools to L x L)."""
    if is_int(levels):
        levels = (levels,)
    if not isinstance(levels, (tuple, list)) or not levels:
        raise TypeError(f"levels must be a non-empty sequence of positive ints, got {levels!r}")
    return tuple(_level(level) for level in levels)

