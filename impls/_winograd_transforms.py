"""Winograd minimal-filtering matrices F(m, 3).

For a 1-D tile ``d`` of ``alpha = m + 2`` inputs and a 3-tap filter ``g``, the ``m`` outputs of
the valid correlation are ``y = AT @ ((G @ g) * (BT @ d))``; in 2-D the transforms apply on both
axes. The interpolation points are 0, 1, -1 (F(2, 3)), 0, 1, -1, 2, -2 (F(4, 3)) and
0, 1, -1, 2, -2, 1/2, -1/2 (F(6, 3)), plus the point at infinity — the usual choice (Lavin &
Gray, 2016), which keeps the entries small. F(6, 3)'s matrices are the Cook-Toom construction
for those points: ``AT[i, j] = p_j**i``, ``G[j, k] = p_j**k / prod_{l != j} (p_j - p_l)``,
``BT[j]`` the coefficients of ``prod_{l != j} (x - p_l)`` (rising powers), and the point at
infinity's row and column (``tests/test_winograd.py`` checks every tile size against direct
correlation).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=None)
def _cast(raw: bytes, shape, dtype: str) -> np.ndarray:
    out = np.frombuffer(raw).reshape(shape).astype(dtype)
    out.flags.writeable = False
    return out


@dataclass(frozen=True)
class WinogradTransform:
    """The three matrices of F(m, 3): ``AT`` (m x alpha), ``G`` (alpha x 3), ``BT`` (alpha x alpha)."""

    m: int
    AT: np.ndarray
    G: np.ndarray
    BT: np.ndarray

    @property
    def alpha(self) -> int:
        return self.m + 2

    def in_dtype(self, name: str, dtype) -> np.ndarray:
        """Matrix ``name`` ('AT', 'G' or 'BT') in ``dtype``, contiguous and read-only (cached)."""
        mat = getattr(self, name)
        return _cast(mat.tobytes(), mat.shape, np.dtype(dtype).name)

    @property
    def growth(self) -> float:
        """Rounding amplification of the 2-D algorithm over the direct formula.

        With every entry replaced by its absolute value, output ``y`` of the 1-D algorithm sums
        ``C[y, p, k] |g_p| |d_k|`` with ``C = |AT| diag(|G|) |BT|``; the direct formula sums
        3 such products with weight 1. The 2-D ratio, ``(max_y sum C[y] / 3) ** 2``, is how
        much larger the magnitudes are whose rounding errors reach one output: 7.1 for F(2, 3),
        256 for F(4, 3), 509 for F(6, 3).
        """
        C = np.einsum("ya,ap,ak->ypk", np.abs(self.AT), np.abs(self.G), np.abs(self.BT))
        return float((C.sum(axis=(1, 2)).max() / 3.0) ** 2)


F2 = WinogradTransform(
    m=2,
    AT=np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=float),
    G=np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]),
    BT=np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=float),
)

F4 = WinogradTransform(
    m=4,
    AT=np.array(
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
        dtype=float,
    ),
    G=np.array(
        [
            [1 / 4, 0, 0],
            [-1 / 6, -1 / 6, -1 / 6],
            [-1 / 6, 1 / 6, -1 / 6],
            [1 / 24, 1 / 12, 1 / 6],
            [1 / 24, -1 / 12, 1 / 6],
            [0, 0, 1],
        ]
    ),
    BT=np.array(
        [
            [4, 0, -5, 0, 1, 0],
            [0, -4, -4, 1, 1, 0],
            [0, 4, -4, -1, 1, 0],
            [0, -2, -1, 2, 1, 0],
            [0, 2, -1, -2, 1, 0],
            [0, 4, 0, -5, 0, 1],
        ],
        dtype=float,
    ),
)

F6 = WinogradTransform(
    m=6,
    AT=np.array(
        [
            [1, 1, 1, 1, 1, 1, 1, 0],
            [0, 1, -1, 2, -2, 1 / 2, -1 / 2, 0],
            [0, 1, 1, 4, 4, 1 / 4, 1 / 4, 0],
            [0, 1, -1, 8, -8, 1 / 8, -1 / 8, 0],
            [0, 1, 1, 16, 16, 1 / 16, 1 / 16, 0],
            [0, 1, -1, 32, -32, 1 / 32, -1 / 32, 1],
        ],
        dtype=float,
    ),
    G=np.array(
        [
            [-1, 0, 0],
            [-2 / 9, -2 / 9, -2 / 9],
            [-2 / 9, 2 / 9, -2 / 9],
            [1 / 90, 1 / 45, 2 / 45],
            [1 / 90, -1 / 45, 2 / 45],
            [32 / 45, 16 / 45, 8 / 45],
            [32 / 45, -16 / 45, 8 / 45],
            [0, 0, 1],
        ]
    ),
    BT=np.array(
        [
            [-1, 0, 21 / 4, 0, -21 / 4, 0, 1, 0],
            [0, 1, 1, -17 / 4, -17 / 4, 1, 1, 0],
            [0, -1, 1, 17 / 4, -17 / 4, -1, 1, 0],
            [0, 1 / 2, 1 / 4, -5 / 2, -5 / 4, 2, 1, 0],
            [0, -1 / 2, 1 / 4, 5 / 2, -5 / 4, -2, 1, 0],
            [0, 2, 4, -5 / 2, -5, 1 / 2, 1, 0],
            [0, -2, 4, 5 / 2, -5, -1 / 2, 1, 0],
            [0, -1, 0, 21 / 4, 0, -21 / 4, 0, 1],
        ],
        dtype=float,
    ),
)

TRANSFORMS = {2: F2, 4: F4, 6: F6}
