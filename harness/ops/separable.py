"""Separable convolutions: depthwise-separable and spatially separable, as two conv2d stages.

* **Depthwise separable** (MobileNet): a depthwise KHxKW conv (groups = C, ``multiplier``
  outputs per channel) followed by a pointwise 1x1 conv mixing channels. Its dense
  equivalent has kernel ``W[o, c] = sum_j w_pointwise[o, c*mult + j] * w_depthwise[c*mult + j]``.
* **Spatially separable**: a KHx1 column pass to ``M`` intermediate channels, then a 1xKW
  row pass. Its dense equivalent has kernel ``W[o, c, p, q] = sum_m w_row[o, m, 0, q] *
  w_column[m, c, p, 0]`` (within each group): the unfolded matrix ``(c, p) x (o, q)`` has rank
  at most ``M``. :func:`factor_spatially_separable` finds the smallest such ``M`` by SVD.

Padding, stride and dilation are those of the dense equivalent, split between the stages
(the column pass pads and strides rows, the row pass columns), which is exact for every
padding mode because padding along one axis commutes with convolving along the other.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from harness.ops.args import check_array, positive_int
from harness.ops.conv_spec import Conv2dSpec

#: Features of a separable op are the conv2d features its stages need.
DEPTHWISE_SEPARABLE_FEATURES = frozenset(
    {"bias", "stride", "dilation", "padding", "asymmetric_padding",
     "padding_mode=reflect", "padding_mode=replicate", "padding_mode=circular"}
)


@dataclass(frozen=True)
class DepthwiseSeparableSpec:
    """A depthwise stage (groups = C) and a pointwise 1x1 stage, each a :class:`Conv2dSpec`."""

    depthwise: Conv2dSpec
    pointwise: Conv2dSpec

    @property
    def dtype(self) -> str:
        return self.depthwise.dtype

    @property
    def out_shape(self):
        return self.pointwise.out_shape

    @property
    def outputs(self):
        return ((self.out_shape, self.dtype),)

    @property
    def n_acc(self) -> int:
        return self.depthwise.n_acc + self.pointwise.n_acc

    @property
    def dense(self) -> Conv2dSpec:
        """The dense conv2d computing the same function."""
        d = self.depthwise
        return d.with_(O=self.pointwise.O, groups=1, bias=d.bias or self.pointwise.bias)

    @property
    def features(self) -> frozenset[str]:
        return (self.depthwise.features | self.pointwise.features) - {"depthwise", "groups"}

    def with_dtype(self, dtype: str) -> DepthwiseSeparableSpec:
        return DepthwiseSeparableSpec(self.depthwise.with_(dtype=dtype), self.pointwise.with_(dtype=dtype))


@dataclass(frozen=True)
class SpatiallySeparableSpec:
    """A KHx1 column stage to M channels and a 1xKW row stage, each a :class:`Conv2dSpec`."""

    column: Conv2dSpec
    row: Conv2dSpec

    @property
    def dtype(self) -> str:
        return self.column.dtype

    @property
    def out_shape(self):
        return self.row.out_shape

    @property
    def outputs(self):
        return ((self.out_shape, self.dtype),)

    @property
    def n_acc(self) -> int:
        return self.column.n_acc + self.row.n_acc

    @property
    def M(self) -> int:
        return self.column.O

    @property
    def dense(self) -> Conv2dSpec:
        c, r = self.column, self.row
        return c.with_(O=r.O, KW=r.KW, stride=(c.stride[0], r.stride[1]), dilation=(c.dilation[0], r.dilation[1]),
                       padding=c.padding[:2] + r.padding[2:], bias=r.bias)

    @property
    def features(self) -> frozenset[str]:
        return self.column.features | self.row.features

    def with_dtype(self, dtype: str) -> SpatiallySeparableSpec:
        return SpatiallySeparableSpec(self.column.with_(dtype=dtype), self.row.with_(dtype=dtype))


def depthwise_separable_spec(x, w_depthwise, w_pointwise, bias_depthwise=None, bias_pointwise=None,
                             stride=1, padding=0, dilation=1, padding_mode="zeros"):
    """Check a depthwise-separable call; returns ``(spec, batched)``."""
    from harness.ops.conv_spec import conv2d_spec

    for a, name in ((x, "x"), (w_depthwise, "w_depthwise"), (w_pointwise, "w_pointwise")):
        check_array(a, name)
    if x.ndim not in (3, 4):
        raise ValueError(f"expected a 3-D or 4-D input, got x with shape {x.shape}")
    C = x.shape[-3]
    if w_depthwise.ndim != 4 or w_depthwise.shape[1] != 1 or C == 0 or w_depthwise.shape[0] % C:
        raise ValueError(
            f"w_depthwise must be (C*multiplier, 1, KH, KW) for C={C} input channels, got {w_depthwise.shape}"
        )
    if w_pointwise.ndim != 4 or w_pointwise.shape[1:] != (w_depthwise.shape[0], 1, 1):
        raise ValueError(
            f"w_pointwise must be (O, {w_depthwise.shape[0]}, 1, 1) to follow the depthwise stage, "
            f"got {w_pointwise.shape}"
        )
    depthwise, batched = conv2d_spec(x, w_depthwise, bias_depthwise, stride, padding, dilation, C, padding_mode)
    mid = np.empty((0,) + depthwise.out_shape[1:], dtype=x.dtype)  # only its shape and dtype are used
    pointwise, _ = conv2d_spec(mid, w_pointwise, bias_pointwise)
    return DepthwiseSeparableSpec(depthwise, pointwise.with_(N=depthwise.N)), batched


def spatially_separable_spec(x, w_column, w_row, bias=None, stride=1, padding=0, dilation=1, groups=1,
                             padding_mode="zeros"):
    """Check a spatially separable call; returns ``(spec, batched)``.

    ``w_column`` is (M, C/groups, KH, 1) and ``w_row`` is (O, M/groups, 1, KW); ``padding``
    (including 'same' and 'full') is resolved for the dense KHxKW kernel.
    """
    from harness.ops.conv_spec import conv2d_spec

    for a, name in ((w_column, "w_column"), (w_row, "w_row")):
        check_array(a, name)
        if a.ndim != 4:
            raise ValueError(f"{name} must be 4-D, got shape {a.shape}")
    if w_column.shape[3] != 1:
        raise ValueError(f"w_column must be (M, C/groups, KH, 1), got {w_column.shape}")
    if w_row.shape[2] != 1:
        raise ValueError(f"w_row must be (O, M/groups, 1, KW), got {w_row.shape}")
    M, KH, KW = w_column.shape[0], w_column.shape[2], w_row.shape[3]
    groups = positive_int(groups, "groups")  # numpy ints accepted, bools refused, as everywhere
    if M % groups or w_row.shape[1] * groups != M:
        raise ValueError(
            f"w_row's second axis must be M/groups = {M}/{groups} to follow w_column, got {w_row.shape}"
        )
    dense_w = np.empty((w_row.shape[0], w_column.shape[1], KH, KW), dtype=w_column.dtype)
    dense, batched = conv2d_spec(x, dense_w, bias, stride, padding, dilation, groups, padding_mode)
    top, bottom, left, right = dense.padding
    column = Conv2dSpec(dense.N, dense.C, dense.H, dense.W, M, KH, 1, (dense.stride[0], 1), (top, bottom, 0, 0),
                        (dense.dilation[0], 1), groups, dense.padding_mode, False, dense.dtype).with_()
    row = Conv2dSpec(dense.N, M, column.OH, dense.W, dense.O, 1, KW, (1, dense.stride[1]), (0, 0, left, right),
                     (1, dense.dilation[1]), groups, dense.padding_mode, dense.bias, dense.dtype).with_()
    return SpatiallySeparableSpec(column, row), batched


# -- factorisation -------------------------------------------------------------------------------
@dataclass(frozen=True)
class SeparableFactors:
    """A dense kernel factored into column and row passes.

    Attributes
    ----------
    w_column, w_row : numpy.ndarray
        (M, C/groups, KH, 1) and (O, M/groups, 1, KW), ``M = groups * rank``.
    rank : int
        Terms kept per group (the largest numerical rank over groups, or the rank asked for).
    numerical_rank : int
        The largest numerical rank of the per-group unfolded kernel ``(C/g*KH) x (O/g*KW)``.
    residual : float
        ||W - W_separable||_F / ||W||_F (0 for a zero kernel).
    exact : bool
        True when ``rank >= numerical_rank``: the passes reproduce the kernel up to rounding.
    """

    w_column: np.ndarray
    w_row: np.ndarray
    rank: int
    numerical_rank: int
    residual: float
    exact: bool

    @property
    def statement(self) -> str:
        verdict = "exact" if self.exact else f"approximate (numerical rank {self.numerical_rank})"
        return f"rank-{self.rank} factorisation, {verdict}, relative residual {self.residual:.3g}"


def factor_spatially_separable(w, groups: int = 1, rank: int | None = None, rtol: float | None = None):
    """Factor a dense (O, C/groups, KH, KW) kernel into KHx1 and 1xKW passes by SVD.

    Parameters
    ----------
    w : numpy.ndarray
    groups : int
    rank : int, optional
        Keep this many terms per group (a low-rank approximation when below the numerical
        rank). Default: the numerical rank, so the factorisation is exact.
    rtol : float, optional
        Singular values below ``rtol * largest`` count as zero (default: NumPy's
        ``matrix_rank`` rule, ``max(rows, cols) * eps``).

    Returns
    -------
    SeparableFactors
        A single KxK kernel of rank 1 (e.g. a Gaussian or Sobel filter) gives M = groups.
    """
    check_array(w, "w")
    if w.ndim != 4:
        raise ValueError(f"w must be (O, C/groups, KH, KW), got shape {w.shape}")
    O, Cg, KH, KW = w.shape
    groups = positive_int(groups, "groups")
    if O % groups:
        raise ValueError(f"O={O} must be divisible by groups={groups}")
    if rank is not None:
        rank = positive_int(rank, "rank")
    if rtol is not None:
        if isinstance(rtol, (bool, np.bool_)) or not isinstance(rtol, numbers.Real):
            raise TypeError(f"rtol must be a real number, got {rtol!r}")
        if not 0 <= rtol < np.inf:
            raise ValueError(f"rtol must be a finite number >= 0, got {rtol}")
    Og = O // groups
    w64 = w.astype(np.float64)
    blocks = []
    for g in range(groups):
        # unfold to (c, p) x (o, q): W[o, c, p, q] = sum_m A[(c, p), m] * B[m, (o, q)]
        mat = w64[g * Og:(g + 1) * Og].transpose(1, 2, 0, 3).reshape(Cg * KH, Og * KW)
        blocks.append(np.linalg.svd(mat, full_matrices=False))
    eps = np.finfo(w.dtype).eps
    ranks = []
    for u, s, vt in blocks:
        tol = (rtol if rtol is not None else max(u.shape[0], vt.shape[1]) * eps) * (s[0] if s.size else 0.0)
        ranks.append(int(np.count_nonzero(s > tol)))
    numerical = max(ranks)
    keep = max(1, numerical) if rank is None else rank
    if keep > min(Cg * KH, Og * KW):
        raise ValueError(f"rank {keep} exceeds the largest possible rank {min(Cg * KH, Og * KW)}")
    w_column = np.zeros((groups * keep, Cg, KH, 1))
    w_row = np.zeros((O, keep, 1, KW))
    for g, (u, s, vt) in enumerate(blocks):
        r = min(keep, s.size)
        root = np.sqrt(s[:r])
        w_column[g * keep:g * keep + r, :, :, 0] = (u[:, :r] * root).T.reshape(r, Cg, KH)
        w_row[g * Og:(g + 1) * Og, :r, 0, :] = (root[:, None] * vt[:r]).reshape(r, Og, KW).transpose(1, 0, 2)
    rebuilt = dense_from_separable(w_column, w_row, groups)
    norm = np.linalg.norm(w64)
    residual = float(np.linalg.norm(rebuilt - w64) / norm) if norm else 0.0
    return SeparableFactors(w_column.astype(w.dtype), w_row.astype(w.dtype), keep, numerical, residual,
                            keep >= numerical)


def dense_from_separable(w_column, w_row, groups: int = 1) -> np.ndarray:
    """The dense (O, C/groups, KH, KW) kernel equal to a column pass followed by a row pass."""
    M, Cg, KH, _ = w_column.shape
    O, Mg, _, KW = w_row.shape
    Og = O // groups
    out = np.zeros((O, Cg, KH, KW))
    for g in range(groups):
        col = w_column[g * Mg:(g + 1) * Mg, :, :, 0].astype(np.float64)  # (Mg, Cg, KH)
        row = w_row[g * Og:(g + 1) * Og, :, 0, :].astype(np.float64)  # (Og, Mg, KW)
        out[g * Og:(g + 1) * Og] = np.einsum("mcp,omq->ocpq", col, row)
    return out


def dense_depthwise_separable(w_depthwise, w_pointwise, C: int) -> np.ndarray:
    """The dense (O, C, KH, KW) kernel of a depthwise (C*mult, 1, KH, KW) + pointwise stage pair."""
    Cm, _, KH, KW = w_depthwise.shape
    O = w_pointwise.shape[0]
    pw = w_pointwise[:, :, 0, 0].astype(np.float64)
    per_tap = pw[:, :, None, None] * w_depthwise[None, :, 0].astype(np.float64)
    return per_tap.reshape(O, C, Cm // C, KH, KW).sum(axis=2)
