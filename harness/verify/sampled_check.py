"""Checking a large conv2d output by sampling: float64 dot products at chosen output elements.

Where the full float64 reference is too slow (the reference for ``torch`` is the ``naive``
loops, minutes at production sizes), the verifier computes the reference only at a sample of
output elements, each as one float64 dot product over its ``C/groups * KH * KW`` taps, and
judges those elements with the usual bound (bit for bit on exact fills).

The sample is stratified: it has ``K = max(N, O, OH, OW) + extra`` elements whose image,
channel, row and column indices each run through a random permutation of their whole range
(repeated to length ``K``) and are then paired at random. So every image, every output channel,
every output row and every output column appears in the sample at least once. Hence:

- a bug that corrupts **one whole image** (``y[n]``), **one channel** (``y[:, o]``), **one row**
  (``y[:, :, i]``) or **one column** (``y[..., j]``) is detected with probability 1;
- a bug that corrupts only one row (or column) of one plane, ``y[n, o, i]``, is detected with
  probability about ``1 - (1 - 1/(N*O*OH))**K`` (at least ``K/(N*O*OH)`` when that is small);
- a bug that corrupts a random fraction ``f`` of the elements escapes with probability about
  ``(1 - f)**K``: below 1e-6 for ``f >= 14/K`` (``K`` is at least ``extra`` = 256).

("Corrupts" means: moves the element out of its error bound.) For the direct error model each
sampled element has its own bound; for FFT and Winograd, whose bounds are set by a plane's
largest magnitude, the sample uses an upper bound of that magnitude (looser, never smaller).
"""

from __future__ import annotations

import numpy as np

from harness.ops.padding import pad_input
from harness.ops.tolerance import error_model

#: Uniformly paired elements on top of the one-per-index coverage of every axis.
SAMPLE_EXTRA = 256
#: Patch elements gathered at once (bounds the memory of the gather to ~32 MB of float64).
CHUNK_TERMS = 4_000_000


def sample_outputs(out_shape, rng, extra: int = SAMPLE_EXTRA) -> tuple[np.ndarray, ...]:
    """Indices ``(n, o, i, j)`` of a stratified sample of an (N, O, OH, OW) output.

    Each axis's indices are a random permutation of its range, repeated to the sample size
    ``max(out_shape) + extra`` and shuffled, so every index of every axis occurs at least once.
    """
    size = max(out_shape) + extra
    return tuple(rng.permutation(np.resize(rng.permutation(n), size)) for n in out_shape)


def conv2d_at(x, w, bias, spec, index) -> tuple[np.ndarray, np.ndarray]:
    """``(y, A)`` at the sampled outputs, in float64: ``y`` the convolution, ``A = conv(|x|, |w|) + |b|``.

    ``x`` is (N, C, H, W), ``w`` (O, C/groups, KH, KW); ``index`` as from :func:`sample_outputs`.
    """
    xp = pad_input(np.asarray(x, dtype=np.float64), spec)
    w64 = np.asarray(w, dtype=np.float64)
    n, o, i, j = index
    (sh, sw), (dh, dw) = spec.stride, spec.dilation
    Cg, Og = spec.C // spec.groups, spec.O // spec.groups
    y = np.empty(len(n))
    A = np.empty(len(n))
    step = max(1, CHUNK_TERMS // max(1, Cg * spec.KH * spec.KW))
    for s in range(0, len(n), step):
        k = slice(s, s + step)
        channels = (o[k] // Og)[:, None] * Cg + np.arange(Cg)  # the input channels of each output's group
        rows = i[k, None] * sh + np.arange(spec.KH) * dh
        cols = j[k, None] * sw + np.arange(spec.KW) * dw
        patch = xp[n[k, None, None, None], channels[:, :, None, None], rows[:, None, :, None], cols[:, None, None, :]]
        taps = w64[o[k]]
        y[k] = np.einsum("kcpq,kcpq->k", patch, taps)
        A[k] = np.einsum("kcpq,kcpq->k", np.abs(patch), np.abs(taps))
    if bias is not None:
        b = np.asarray(bias, dtype=np.float64)[o]
        y += b
        A += np.abs(b)
    return y, A


def plane_magnitude_bound(x, w, bias, spec) -> np.ndarray:
    """An upper bound of ``A = conv(|x|, |w|) + |b|`` over each (n, o) output plane, shape (N, O, 1, 1).

    ``sum_c max|x[n, c]| * sum_pq |w[o, c]| + |b[o]|``: no output of the plane sums more (padding
    repeats or zeroes input values, it never makes a larger one). For error models whose bound
    is set by a plane's (or a neighbourhood's) largest ``A`` — FFT, Winograd — it bounds that
    largest ``A`` without computing the whole reference; the bound is looser, never smaller.
    """
    N, G = x.shape[0], spec.groups
    Cg, Og = spec.C // G, spec.O // G
    x_max = np.abs(np.asarray(x, dtype=np.float64)).max(axis=(-2, -1), initial=0.0).reshape(N, G, Cg)
    w_sum = np.abs(np.asarray(w, dtype=np.float64)).sum(axis=(-2, -1)).reshape(G, Og, Cg)
    A = np.einsum("ngc,goc->ngo", x_max, w_sum).reshape(N, spec.O)
    if bias is not None:
        A += np.abs(np.asarray(bias, dtype=np.float64))
    return A[:, :, None, None]


def sampled_bound(model, spec, A: np.ndarray, index, A_plane: np.ndarray) -> np.ndarray:
    """The bound at the sampled outputs ``index``, from their own ``A`` (an element-wise model) or,
    for models whose bound needs whole planes, from :func:`plane_magnitude_bound` ``A_plane``."""
    model = error_model(model)
    if model.elementwise:
        return model.bound(spec, A)
    out_shape = (A_plane.shape[0], spec.O, spec.OH, spec.OW)
    everywhere = np.broadcast_to(A_plane, out_shape)
    return np.broadcast_to(model.bound(spec, everywhere), out_shape)[index]
