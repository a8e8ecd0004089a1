"""Column packing for ``im2col``: one compiled loop of row copies instead of a NumPy slice per tap.

``im2col`` multiplies the weights by a column matrix ``cols[r, col]`` whose row ``r = (c, p, q)``
holds kernel tap ``(p, q)`` of input channel ``c`` for every output position of a block of output
rows (or of whole images). NumPy builds it with one strided slice copy per tap and channel
group, each a separate call with its own set-up: on a 7x7 stride-2 stem (3 input channels, 147
taps of 112x112) those copies cost about as much as the GEMM. Here one Numba loop (serial: the
GEMM that follows runs on BLAS's threads, and an idle OpenMP pool spinning next to them slowed
the GEMM tenfold on this 2-core machine) copies each output row's ``OW`` inputs, contiguous for
stride 1 and a fixed-stride load otherwise, straight from the padded input.

Offsets: row ``r`` of the columns starts, for output row ``i``, at
``c*Hp*Wp + (i*sh + p*dh)*Wp + q*dw`` of the flattened padded image (:func:`layout`), and
output column ``j`` adds ``j*sw``. When each input element feeds several taps (the stem: 49 taps,
stride 2), the padded input is first split into stride phases (:func:`source`, one copy of the
input): every row copy is then contiguous, which halved the stem's packing time (0.37 to 0.21 ms
per image on one core, phase split included). Groups need nothing special: channel ``c`` runs over all
``C`` input channels, so rows ``g*Cg*KH*KW ...`` are group ``g``'s reduction items, in the
order of the weights' ``(c, p, q)``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import njit

from harness.ops.padding import pad_input


def splits_phases(spec) -> bool:
    """Whether :func:`source` splits the padded input into stride phases: only when each input
    element is read more than once (``KH*KW > sh*sw``), where the one extra copy of the input
    buys contiguous row copies (a 1x1 stride-2 layer reads a quarter of its input: no split)."""
    sh, sw = spec.stride
    return sh * sw > 1 and spec.KH * spec.KW > sh * sw


def source(x, spec) -> np.ndarray:
    """The input ``x`` (N, C, H, W), padded, as the flat, read-only array :func:`pack` reads.

    With :func:`splits_phases`, split into stride phases,
    ``xs[n, c, a, b, i, j] = padded[n, c, i*sh + a, j*sw + b]``, zero past a phase's last row or
    column: :func:`pack` never reads there (output row ``i`` and tap ``p`` read padded row
    ``i*sh + p*dh <= Hp - 1``, which its phase holds), but :func:`pack_runs`'s junk columns
    do, and uninitialised memory could hold NaN or denormals (slow multiplies). Zero padding is
    split in one compiled pass (:func:`split_zero_padded`); other modes pad first. Without the
    split, the padded input itself (:func:`padded`).
    """
    if not splits_phases(spec):
        xp = padded(x, spec)
    else:
        top, bottom, left, right = spec.padding
        (sh, sw), (N, C) = spec.stride, x.shape[:2]
        hp, wp = spec.H + top + bottom, spec.W + left + right
        xp = np.empty((N, C, sh, sw, -(-hp // sh), -(-wp // sw)), dtype=x.dtype)
        if spec.padding_mode == "zeros" or not any(spec.padding):
            split_zero_padded(_readonly_c(x), top, left, spec.H + top, spec.W + left, xp)
        else:
            full = padded(x, spec)
            xp[...] = 0
            for a in range(sh):
                for b in range(sw):
                    phase = full[:, :, a::sh, b::sw]
                    xp[:, :, a, b, :phase.shape[2], :phase.shape[3]] = phase
    return _readonly_c(xp).reshape(xp.shape[0], -1)


def _readonly_c(a) -> np.ndarray:
    """``a`` as a read-only C-contiguous array (a view: the caller's flags stay as they were),
    so the kernels get one compiled specialisation per dtype whatever comes in."""
    a = np.ascontiguousarray(a).view()
    a.flags.writeable = False
    return a


@njit(nogil=True, cache=True)
def split_zero_padded(x, top, left, bottom_edge, right_edge, xs):
    """``xs[n, c, a, b, i, j] = padded[n, c, i*sh + a, j*sw + b]`` for ``x`` (N, C, H, W) zero
    padded by ``top`` and ``left`` (padded rows ``>= bottom_edge = H + top`` and columns
    ``>= right_edge = W + left`` are zero too, and so is everything past the padded size).

    xs : (N, C, sh, sw, Hs, Ws), written in full.
    """
    n_batch, chans, h, w = x.shape
    sh, sw, hs, ws = xs.shape[2], xs.shape[3], xs.shape[4], xs.shape[5]
    src, dst = x.reshape(-1), xs.reshape(-1)  # flat: no array view per row (reference counts)
    for nc in range(n_batch * chans):
        for a in range(sh):
            for b in range(sw):
                # columns j_lo <= j < j_hi of phase b come from the input, the rest are zero
                j_lo = min(max(0, (left - b + sw - 1) // sw), ws)
                j_hi = max(min(ws, (right_edge - b + sw - 1) // sw), j_lo)
                for i in range(hs):
                    # unsigned indices: no wraparound checks, so the loops vectorize
                    d = np.uint64((((nc * sh + a) * sw + b) * hs + i) * ws)
                    r = i * sh + a
                    if r < top or r >= bottom_edge:
                        for j in range(np.uint64(ws)):
                            dst[d + j] = 0
                        continue
                    s = np.uint64((nc * h + r - top) * w + j_lo * sw + b - left)
                    for j in range(np.uint64(j_lo)):
                        dst[d + j] = 0
                    dm = d + np.uint64(j_lo)
                    if sw == 2:  # a literal stride: an interleaved load the compiler vectorizes
                        for j in range(np.uint64(j_hi - j_lo)):
                            dst[dm + j] = src[s + np.uint64(2) * j]
                    else:
                        st = np.uint64(sw)
                        for j in range(np.uint64(j_hi - j_lo)):
                            dst[dm + j] = src[s + st * j]
                    for j in range(np.uint64(j_hi), np.uint64(ws)):
                        dst[d + j] = 0


@lru_cache(maxsize=64)
def layout(spec) -> tuple[np.ndarray, int, int]:
    """Where :func:`pack` finds each reduction item in :func:`source`'s array (kept per spec:
    a network repeats its layers).

    Parameters
    ----------
    spec : Conv2dSpec
        The convolution (its padding, stride, dilation and channel count).

    Returns
    -------
    off : numpy.ndarray
        Read-only ``int64`` offset of each item ``(c, p, q)`` (all ``C`` channels, length
        ``C*KH*KW``) for output position (0, 0).
    row_step, col_step : int
        Offset from one output row, and from one output column, to the next.
    """
    top, bottom, left, right = spec.padding
    hp, wp = spec.H + top + bottom, spec.W + left + right
    (sh, sw), (dh, dw) = spec.stride, spec.dilation
    c = np.arange(spec.C)[:, None, None]
    p = np.arange(spec.KH)[None, :, None] * dh
    q = np.arange(spec.KW)[None, None, :] * dw
    if splits_phases(spec):
        hs, ws = -(-hp // sh), -(-wp // sw)
        off = ((c * sh + p % sh) * sw + q % sw) * (hs * ws) + (p // sh) * ws + q // sw
        row_step, col_step = ws, 1
    else:
        off, row_step, col_step = c * (hp * wp) + p * wp + q, sh * wp, sw
    off = off.reshape(-1).astype(np.int64)
    off.flags.writeable = False
    return off, row_step, col_step


@njit(nogil=True, cache=True)
def pack(xp, off, row_step, sw, ow, i0, i1, cols):
    """Columns of output rows ``i0:i1`` of every image in ``xp`` into ``cols``.

    xp : (n, L) padded images as :func:`source` gives them (read only).
    off, row_step, sw : item offsets, and the steps between output rows and between output
    columns (:func:`layout`); ow : output width.
    cols : (R, n * (i1 - i0) * ow), written in full: column ``((m * (i1 - i0)) + i - i0) * ow + j``
    of row ``r`` is ``xp[m, off[r] + i * row_step + j * sw]`` (images, then rows, then columns).
    """
    n_img, size, n_items, rows = xp.shape[0], xp.shape[1], off.shape[0], i1 - i0
    width = cols.shape[1]
    src, dst = xp.reshape(-1), cols.reshape(-1)  # flat: no array view per row (reference counts)
    for r in range(n_items):
        for m in range(n_img):
            for i in range(i0, i1):
                s = np.uint64(m * size + off[r] + i * row_step)
                d = np.uint64(r * width + (m * rows + i - i0) * ow)
                # literal strides for the common cases, so the copy vectorizes (unsigned
                # indices: no wraparound checks)
                if sw == 1:
                    for j in range(np.uint64(ow)):
                        dst[d + j] = src[s + j]
                elif sw == 2:
                    for j in range(np.uint64(ow)):
                        dst[d + j] = src[s + np.uint64(2) * j]
                else:
                    st = np.uint64(sw)
                    for j in range(np.uint64(ow)):
                        dst[d + j] = src[s + st * j]

#: Extended runs (:func:`pack_runs`) pay ``Og * (Ws - OW)`` extra multiply-adds per output row
#: and tap to save a row copy's set-up; below this product the set-up costs more. RegNetX 3x3
#: layers (16 output channels per group, 2 padding columns: 32) ran 1.6x faster with runs.
RUN_MAX_EXTRA = 64
#: Only rows narrower than this are worth it: a wide row's copy set-up is small next to its data.
RUN_MAX_WIDTH = 32


def packs_runs(spec) -> bool:
    """Whether ``im2col`` packs extended runs (:func:`pack_runs`) rather than exact rows."""
    off, row_step, col_step = layout(spec)
    return (col_step == 1 and spec.OW < RUN_MAX_WIDTH
            and spec.O // spec.groups * (row_step - spec.OW) <= RUN_MAX_EXTRA)


def padded(x, spec) -> np.ndarray:
    """``x`` padded as the spec says (``harness.ops.padding.pad_input``); zero padding by one
    zeroed buffer and a slice copy, which costs a tenth of ``np.pad``'s 50 us on a small layer."""
    top, bottom, left, right = spec.padding
    if spec.padding_mode != "zeros" or not any(spec.padding):
        return pad_input(x, spec)
    N, C, H, W = x.shape
    xp = np.zeros((N, C, H + top + bottom, W + left + right), dtype=x.dtype)
    xp[:, :, top:top + H, left:left + W] = x
    return xp


@njit(nogil=True, cache=True)
def pack_runs(xp, off, row_step, ow, i0, i1, cols):
    """Extended columns of output rows ``i0:i1``: every row ``row_step`` wide, its last
    ``row_step - ow`` columns junk (the next row's first inputs), one contiguous copy per item
    and image.

    xp, off, row_step : as for :func:`pack` (the column step must be 1).
    cols : (R, n * (i1 - i0) * row_step), written in full: column ``m * (i1 - i0) * row_step + t``
    of row ``r`` is ``xp[m, off[r] + i0 * row_step + t]`` for ``t < (i1 - i0 - 1) * row_step + ow``
    (all inside the image) and zero after it (the last row's junk).
    """
    n_img, size, n_items = xp.shape[0], xp.shape[1], off.shape[0]
    run, width = (i1 - i0) * row_step, cols.shape[1]
    valid = np.uint64(run - row_step + ow)
    src, dst = xp.reshape(-1), cols.reshape(-1)  # flat: no array view per run (reference counts)
    for r in range(n_items):
        for m in range(n_img):
            s = np.uint64(m * size + off[r] + i0 * row_step)
            d = np.uint64(r * width + m * run)
            for t in range(valid):
                dst[d + t] = src[s + t]
            for t in range(valid, np.uint64(run)):
                dst[d + t] = 0
