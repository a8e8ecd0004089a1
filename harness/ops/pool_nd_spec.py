"""Argument checking for max and average pooling of any spatial rank (1-D and 3-D), torch's rules.

The rules are 2-D pooling's (:mod:`harness.ops.pool_spec`), applied per spatial axis: kernel,
stride, dilation positive (stride defaults to the kernel), ``0 <= pad <= kernel // 2``,
``divisor_override != 0``, a non-empty input and at least one output per axis; ``ceil_mode``
keeps a last window only if it starts inside the input or its left padding. Max-pooling indices
are flat over the spatial axes (``d*H*W + h*W + w`` for 3-D), as torch returns them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numbers

import numpy as np

from harness.ops.args import check_array, is_int
from harness.ops.conv_nd_spec import SHAPE_NAMES, needed, ntuple, require_one_axis, spatial_prod
from harness.ops.pool_spec import AVG_POOL2D_FEATURES, INDEX_DTYPE, MAX_POOL2D_FEATURES, Pool2dSpec, pooled_size

MAX_POOL_ND_FEATURES = MAX_POOL2D_FEATURES
AVG_POOL_ND_FEATURES = AVG_POOL2D_FEATURES
#: torch's avg_pool1d takes no divisor_override (avg_pool2d and avg_pool3d do)
AVG_POOL1D_FEATURES = AVG_POOL2D_FEATURES - {"divisor_override"}


@dataclass(frozen=True)
class PoolNdSpec:
    """A resolved max (``kind='max'``) or average pooling of an (N, C, *size) input."""

    kind: str
    N: int
    C: int
    size: tuple
    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor_override: int | None = None
    return_indices: bool = False
    dtype: str = "float32"

    @property
    def ndim(self) -> int:
        return len(self.size)

    def _out_dims(self, ceil_mode: bool) -> tuple[int, ...]:
        return tuple(pooled_size(n, k, s, p, d, ceil_mode) for n, k, s, p, d in
                     zip(self.size, self.kernel, self.stride, self.padding, self.dilation))

    @property
    def out_dims(self) -> tuple[int, ...]:
        return self._out_dims(self.ceil_mode)

    @property
    def x_shape(self) -> tuple:
        return (self.N, self.C, *self.size)

    @property
    def out_shape(self) -> tuple:
        return (self.N, self.C, *self.out_dims)

    @property
    def outputs(self):
        if self.kind == "avg":
            return ((self.out_shape, self.dtype),)
        return ((self.out_shape, self.dtype), (self.out_shape, INDEX_DTYPE) if self.return_indices else None)

    @property
    def window(self) -> int:
        """Taps per window."""
        return spatial_prod(self.kernel)

    @property
    def n_acc(self) -> int:
        return self.window

    @property
    def ceil_changes_shape(self) -> bool:
        return self.ceil_mode and self.out_dims != self._out_dims(False)

    @property
    def features(self) -> frozenset[str]:
        """The 2-D pooling feature names this call needs."""
        is_max, divisor = self.kind == "max", self.divisor_override is not None
        uneven_divisor = any(self.padding) or self.ceil_changes_shape
        return needed(("stride", self.stride != self.kernel), ("padding", any(self.padding)),
                      ("ceil_mode", self.ceil_changes_shape),
                      ("dilation", is_max and any(d != 1 for d in self.dilation)),
                      ("return_indices", is_max and self.return_indices), ("divisor_override", not is_max and divisor),
                      ("count_include_pad=False",
                       not is_max and not divisor and not self.count_include_pad and uneven_divisor))

    def with_(self, **changes) -> PoolNdSpec:
        return checked_pool(replace(self, **changes))

    def as_pool2d(self) -> Pool2dSpec:
        """A 1-D spec as the 2-D one of height 1 (a 1-tall window: indices stay the same)."""
        require_one_axis(self)
        return Pool2dSpec(self.kind, self.N, self.C, 1, self.size[0], (1, self.kernel[0]), (1, self.stride[0]),
                          (0, self.padding[0]), (1, self.dilation[0]), self.ceil_mode, self.count_include_pad,
                          self.divisor_override, self.return_indices, self.dtype)


def avg_divisors_nd(spec: PoolNdSpec) -> np.ndarray:
    """The divisor of every output position (shape ``out_dims``), as torch computes it (see
    :func:`harness.ops.pool_spec.avg_divisors`): per axis, then their outer product."""
    if spec.divisor_override is not None:
        return np.full(spec.out_dims, float(spec.divisor_override))
    total = np.ones(())
    for out, n, k, s, p in zip(spec.out_dims, spec.size, spec.kernel, spec.stride, spec.padding):
        start = np.arange(out) * s - p
        end = np.minimum(start + k, n + p)
        if not spec.count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, n)
        total = np.multiply.outer(total, (end - start).astype(np.float64))
    return total


def checked_pool(spec: PoolNdSpec) -> PoolNdSpec:
    for k, p in zip(spec.kernel, spec.padding):
        if p > k // 2:
            raise ValueError(f"pad should be at most half of the kernel size: got padding={spec.padding} with "
                             f"kernel_size={spec.kernel}; use padding <= kernel_size // 2")
    if spec.divisor_override is not None and spec.divisor_override == 0:
        raise ValueError("divisor_override must be non-zero (None divides by the window size)")
    if spec.N < 0 or spec.C < 1 or min(spec.size) < 1:
        raise ValueError(f"pooling needs a non-empty (C, {SHAPE_NAMES[spec.ndim]}) input, got input shape "
                         f"{spec.x_shape}")
    if min(spec.out_dims) < 1:
        raise ValueError(f"output size {spec.out_dims} is too small for input {spec.size} with kernel {spec.kernel}, "
                         f"dilation {spec.dilation} and padding {spec.padding}; use a smaller kernel")
    return spec


def pool_nd_spec(kind: str, ndim: int, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                 count_include_pad=True, divisor_override=None, return_indices=False):
    """Check an N-d max (``kind='max'``) or average pooling call; returns ``(spec, batched)``."""
    check_array(x, "x")
    if x.ndim not in (ndim + 1, ndim + 2):
        raise ValueError(f"expected a {ndim + 1}-D (C, {SHAPE_NAMES[ndim]}) or {ndim + 2}-D "
                         f"(N, C, {SHAPE_NAMES[ndim]}) input, got x with shape {x.shape}")
    batched = x.ndim == ndim + 2
    N, C, *size = x.shape if batched else (1,) + x.shape
    kernel = ntuple(kernel_size, ndim, "kernel_size")
    no_stride = stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)
    stride = kernel if no_stride else ntuple(stride, ndim, "stride")
    if divisor_override is not None and not is_int(divisor_override):
        raise TypeError(f"divisor_override must be an int or None, got {divisor_override!r}")
    spec = PoolNdSpec(kind, N, C, tuple(size), kernel, stride, ntuple(padding, ndim, "padding", minimum=0),
                      ntuple(dilation, ndim, "dilation"), _flag(ceil_mode, "ceil_mode"),
                      _flag(count_include_pad, "count_include_pad"),
                      None if divisor_override is None else int(divisor_override),
                      _flag(return_indices, "return_indices"), str(x.dtype))
    return checked_pool(spec), batched


def _flag(value, name: str) -> bool:
    if not isinstance(value, (bool, numbers.Integral)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)
