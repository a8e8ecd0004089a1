"""Numba kernels of ``numba_cpu`` (imported lazily: importing this module compiles or loads them).

Every convolution is brought to one shape: an *offset GEMM* over a flattened input. The input
is padded and split into stride phases (:func:`pad_phase_split`), so that output position
``(i, j)`` and kernel tap ``(p, q)`` read phase plane ``(p*dh % sh, q*dw % sw)`` at row
``i + p*dh // sh`` and column ``j + q*dw // sw``. Flattening each phase plane (row length ``Ws``)
turns that into ``xf[n, m + off[r]]`` with ``m = i*Ws + j`` and one offset per reduction item
``r = (c, p, q)``:

    y_ext[n, o, m] = b[o] + sum_r  w[o, r] * xf[n, group_base + off[r] + m]

so the innermost loop runs over ``m``, reads the input contiguously and vectorizes, whatever the
stride, dilation or kernel size. The ``Ws - OW`` columns at the end of each row are computed and
dropped by the scatter into ``y`` (4% extra work on a padded 56x56 layer, 29% on 7x7).

Register tiles: the dense kernel computes ``OB = 4`` output channels x 64 positions (4 vectors of
16 float32, or of 8 float64) over the whole reduction with the 16 accumulators held in
registers (:func:`impls._vector_tile.tile_fma`, written in LLVM IR because Numba's vectorizer
would keep them in memory): per item, 4 contiguous input loads and 4 weight broadcasts feed 16
vector multiply-adds, with no accumulator traffic. Each tile leaves through
masked row copies (:func:`impls._vector_tile.copy_run`), so a 7-wide row costs one vector store.
The grouped kernel (depthwise, and any group with fewer than 4 output channels) works one group
at a time: it pads and splits just that group's channels into a per-thread buffer that stays in
cache, then updates one output channel from 3 items per pass. Depthwise layers do little
arithmetic per input element, so skipping a separate pass over memory matters more there than
register blocking. With zero padding, depthwise convolutions take :func:`conv_depthwise`, which
cuts the fixed work per plane (padding written once per thread, no division per row, 3x3 in one
pass, no array views), and :func:`pad_phase_split` clears each plane and copies the rows in.

Items are never padded with zero weights (0 * inf would turn an infinite result into NaN): a
remainder pass takes the leftover items one at a time. Summation order is fixed (bias, then items
in order: one multiply-add per item in the dense kernel, 3 at a time in the others) and each output element is computed by one thread, so results do not
depend on the thread count. ``fastmath`` allows only ``contract`` (fused multiply-add): no
reassociation, so integer-valued data whose partial sums are exactly representable gives exact
results.
"""

import numpy as np
from numba import njit, prange

from ._vector_tile import copy_run, lanes, tile_fma

#: Output channels per register tile of the dense kernel, and 64-byte vectors of output
#: positions per tile (16 accumulator registers: see :mod:`impls._vector_tile`).
OB = 4
TILE_VECTORS = 4
_TILE = tile_fma(OB, TILE_VECTORS)
#: Input slack after the dense kernel's input: one tile of float32 positions, so the last tile's
#: loads stay inside the array (the positions they feed are dropped).
SLACK = TILE_VECTORS * lanes(4)
#: Vectors of positions per register tile of the depthwise kernel, for kernels other than 3x3
#: (one channel: 8 accumulators; ConvNeXt's 7x7 and RepLKNet's 13x13 and larger).
DW_TILE_VECTORS = 8
_PLANE_TILE = tile_fma(1, DW_TILE_VECTORS)
#: Reduction items per pass of the depthwise kernel (3 divides the usual 3x3 = 9 taps).
DW_RI = 3
#: Every pass runs over a multiple of this many outputs, so the vectorized loop has no scalar
#: remainder; the extra positions are junk that the scatter drops, read from the input's slack.
VEC = 32

#: Planes narrower than this are copied into and out of the depthwise kernel's buffers
#: through index maps, one loop per plane.
MAP_WIDTH = 12

#: Chunks of groups the grouped kernel shares among threads (static scheduling: several per thread).
CHUNKS = 64

PADDING_MODE_CODES = {"zeros": 0, "reflect": 1, "replicate": 2, "circular": 3}

_FLAGS = dict(parallel=True, fastmath={"contract"}, cache=True, nogil=True)


@njit(**_FLAGS)
def conv_dense(xf, w, off, groups, group_stride, b, y, oh, ow, ws, length, tile, n_chunks):
    """Offset-GEMM convolution in register tiles of ``OB`` output channels x ``tile`` positions.

    xf : (N, S) flattened, padded, phase-split input with ``SLACK`` elements of slack at the end.
    w : (O, R) weights as given (read in place: no per-call repacking of large weights).
    off : (R,) input offset of each reduction item within its group; groups : G, group_stride :
    offset between groups' inputs.
    b : (O,) bias (zeros when there is none).
    y : (N * O * OH * OW,) output, flat, written in full; ws : phase row length Ws.
    tile : positions per tile, ``TILE_VECTORS`` vectors (see :mod:`impls._vector_tile`).
    n_chunks : contiguous runs of tiles shared among the threads (a few per thread).
    """
    n_batch, size = xf.shape[0], xf.shape[1]
    n_out, n_items = w.shape[0], w.shape[1]
    og = n_out // groups
    n_blocks = (og + OB - 1) // OB
    n_tiles = (length + tile - 1) // tile
    n_tasks = n_batch * groups * n_blocks * n_tiles
    n_chunks = min(n_chunks, n_tasks)
    xflat, wflat = xf.reshape(-1), w.reshape(-1)
    ohw = oh * ow
    for chunk in prange(n_chunks):
        acc = np.empty(OB * tile, dtype=y.dtype)
        ch = np.empty(OB, dtype=np.int64)
        for task in range(chunk * n_tasks // n_chunks, (chunk + 1) * n_tasks // n_chunks):
            t = task % n_tiles
            rest = task // n_tiles
            blk = rest % n_blocks
            rest //= n_blocks
            g = rest % groups
            n = rest // groups
            # the block's output channels; past the group's last one, repeat it (results dropped)
            for k in range(OB):
                ch[k] = g * og + min(blk * OB + k, og - 1)
            m0 = t * tile
            _TILE(acc, xflat, n * size + g * group_stride + m0, off, wflat, ch, b, n_items)
            count = min(tile, length - m0)
            for k in range(min(OB, og - blk * OB)):
                _scatter_rows(acc, k * tile, m0, count, y, (n * n_out + ch[k]) * ohw, oh, ow, ws)


@njit(**_FLAGS)
def conv_grouped(x, h, w_in, w, off, b, y, groups, ow, sh, sw, hs, ws, top, left, hp, wp_, mode,
                 length, tile):
    """Offset-GEMM convolution one group per task, one output channel per pass.

    x : (N, C, H * W) input (read only); padded and phase-split per group into a local buffer.
    w : (O, R) weights; off : (R,) input offset of each reduction item.
    b : (O,) bias (zeros when there is none); y : (N, O, OH * OW) output, written in full.
    sh, sw, hs, ws, top, left, hp, wp_, mode : phases and padding (see :func:`pad_phase_split`).
    """
    n_batch, chans = x.shape[0], x.shape[1]
    o_per_group, n_items = y.shape[1] // groups, w.shape[1]
    cg = chans // groups
    n_full = n_items - n_items % DW_RI
    plane = sh * sw * hs * ws
    n_tasks = n_batch * groups
    # tasks (n, g) in a few contiguous chunks: buffers are allocated once per chunk, not per
    # group (depthwise groups are small, and each allocation costs as much as their arithmetic)
    n_chunks = min(n_tasks, CHUNKS)
    for chunk in prange(n_chunks):
        buf = np.empty(cg * plane + VEC, dtype=y.dtype)
        buf[cg * plane:] = 0
        acc = np.empty(tile, dtype=y.dtype)
        for task in range(chunk * n_tasks // n_chunks, (chunk + 1) * n_tasks // n_chunks):
            n = task // groups
            g = task % groups
            for c in range(cg):
                _fill_planes(x[n, g * cg + c], h, w_in, buf[c * plane:(c + 1) * plane],
                             sh, sw, hs, ws, top, left, hp, wp_, mode)
            for o in range(g * o_per_group, (g + 1) * o_per_group):
                _grouped_output(buf, w[o], b[o], off, acc, y[n, o], n_full, ow, ws, length, tile)


@njit(inline="always", cache=True)
def _grouped_output(buf, wr, bias, off, acc, plane, n_full, ow, ws, length, tile):
    """One output channel (flat ``plane``) from its group's phase-split input ``buf``."""
    n_items = wr.shape[0]
    for m0 in range(0, length, tile):
        mt = min(tile, length - m0)
        mv = -(-mt // VEC) * VEC
        a = acc[:mv]
        a[:] = bias
        for r in range(0, n_full, DW_RI):
            w0, w1, w2 = wr[r], wr[r + 1], wr[r + 2]
            i0, i1, i2 = np.uint64(m0 + off[r]), np.uint64(m0 + off[r + 1]), np.uint64(m0 + off[r + 2])
            for m in range(mv):
                mu = np.uint64(m)
                a[m] += w0 * buf[i0 + mu] + w1 * buf[i1 + mu] + w2 * buf[i2 + mu]
        for r in range(n_full, n_items):
            w0, i0 = wr[r], np.uint64(m0 + off[r])
            for m in range(mv):
                a[m] += w0 * buf[i0 + np.uint64(m)]
        _scatter(acc[:mt], plane, m0, ws, ow)


@njit(inline="always", cache=True)
def _scatter(acc, plane, m0, ws, ow):
    """Copy flat positions ``m0 ...`` of an extended row-major plane (row length ``ws``) into
    ``plane`` (OH * OW, flat), dropping the columns ``j >= ow``."""
    end = m0 + acc.shape[0]
    i = m0 // ws
    while i * ws < end and i * ow < plane.shape[0]:
        row = i * ws
        j_lo = max(m0 - row, 0)
        j_hi = min(ow, end - row)
        if j_hi > j_lo:
            _copy(plane, i * ow + j_lo, acc, row + j_lo - m0, 1, j_hi - j_lo)
        i += 1


@njit(inline="always", cache=True)
def _copy(dst, d0, src, s0, step, count):
    """``dst[d0 + t] = src[s0 + t * step]`` for ``t < count`` (1-D arrays, offsets >= 0).

    Unsigned indices skip Numba's negative-index wraparound, so the loop vectorizes and no
    array views are made per call (views cost reference counting)."""
    if step == 1:  # masked vectors: short runs cost one vector each, not a scalar loop
        copy_run(dst, d0, src, s0, count)
        return
    d, s, st = np.uint64(d0), np.uint64(s0), np.uint64(step)
    for t in range(np.uint64(count)):
        dst[d + t] = src[s + t * st]


@njit(parallel=True, cache=True, nogil=True)
def pad_phase_split(x, h, w, xs, sh, sw, hs, ws, top, left, hp, wp, mode):
    """Write ``x`` (N, C, H * W), padded to (hp, wp) in padding mode ``mode`` (see
    ``PADDING_MODE_CODES``), into ``xs`` (N, >= C * sh * sw * Hs * Ws) as stride phases:
    ``xs[n, c, a, b, i, j] = padded[n, c, i*sh + a, j*sw + b]``, zero past the padded edge."""
    n_batch, chans = x.shape[0], x.shape[1]
    plane = sh * sw * hs * ws
    if mode == 0:  # zeros: clear each plane, then copy the rows in (no per-row padding logic)
        row_at, col_first, col_count, col_at = _row_copy_plan(h, w, sh, sw, hs, ws, top, left)
        xflat, xsflat, row, hw = x.reshape(-1), xs.reshape(-1), xs.shape[1], h * w
        for nc in prange(n_batch * chans):
            d0 = nc // chans * row + nc % chans * plane
            xsflat[d0:d0 + plane] = 0
            for r in range(h):
                _copy_row(xsflat, d0 + row_at[r], xflat, nc * hw + r * w, w, sw, left % sw,
                          col_first, col_count, col_at)
        return
    for nc in prange(n_batch * chans):
        n = nc // chans
        c = nc % chans
        _fill_planes(x[n, c], h, w, xs[n, c * plane:(c + 1) * plane], sh, sw, hs, ws,
                     top, left, hp, wp, mode)


@njit(inline="always", cache=True)
def _copy_row(dst, d0, src, s0, w_in, sw, even, col_first, col_count, col_at):
    """One input row (``w_in`` elements at ``src[s0]``) into its column phases at ``dst[d0]``,
    placed by :func:`_row_copy_plan`; ``even`` is the phase of input column 0."""
    if sw == 1:  # a literal step, so the copy vectorizes
        _copy(dst, d0 + col_at[0], src, s0 + col_first[0], 1, col_count[0])
    elif sw == 2:  # both phases in one pass
        _deinterleave2(dst, d0 + col_at[even], d0 + col_at[1 - even], src, s0, w_in // 2)
        if w_in % 2:
            dst[d0 + col_at[even] + w_in // 2] = src[s0 + w_in - 1]
    else:
        for ph in range(sw):
            _copy(dst, d0 + col_at[ph], src, s0 + col_first[ph], sw, col_count[ph])


@njit(cache=True)
def _row_copy_plan(h, w_in, sh, sw, hs, ws, top, left):
    """Where the input's rows and column phases land in a zero-padded phase-split plane:
    input row ``r`` starts at ``row_at[r]`` (column phase 0), and column phase ``ph`` takes
    ``col_count[ph]`` columns from ``col_first[ph]`` on, step ``sw``, at ``col_at[ph]`` further."""
    row_at = np.empty(h, np.int64)
    for r in range(h):
        pr = r + top
        row_at[r] = (pr % sh * sw * hs + pr // sh) * ws
    col_first = np.empty(sw, np.int64)
    col_count = np.empty(sw, np.int64)
    col_at = np.empty(sw, np.int64)
    for ph in range(sw):
        col_first[ph] = (ph - left) % sw
        col_count[ph] = max(0, -(-(w_in - col_first[ph]) // sw))
        col_at[ph] = ph * hs * ws + (col_first[ph] + left) // sw
    return row_at, col_first, col_count, col_at


@njit(inline="always", cache=True)
def _fill_planes(src, h, w, dst, sh, sw, hs, ws, top, left, hp, wp, mode):
    """One channel ``src`` (H * W, flat), padded, into its stride phases ``dst``
    (sh * sw * Hs * Ws, flat): ``dst[a, b, i, j] = padded[i*sh + a, j*sw + b]``."""
    # columns j_lo <= j < j_hi read the input itself in every column phase; the rest may be padding
    j_lo = min(max(0, (left + sw - 1) // sw), ws)
    j_hi = max(min(ws, (w + left - (sw - 1) + sw - 1) // sw), j_lo)
    count = j_hi - j_lo
    for a in range(sh):
        for i in range(hs):
            row = i * sh + a
            rr = _source(row - top, h, mode) if row < hp else -1
            d0 = (a * sw * hs + i) * ws  # phase (a, 0), row i; phase (a, b) is b * hs * ws further
            if rr < 0:
                for b in range(sw):
                    dst[d0 + b * hs * ws:d0 + b * hs * ws + ws] = 0
                continue
            s0 = rr * w + j_lo * sw - left
            if sw == 1:
                _copy(dst, d0 + j_lo, src, s0, 1, count)
            elif sw == 2:  # both phases in one pass: an interleaved load the compiler vectorizes
                _deinterleave2(dst, d0 + j_lo, d0 + hs * ws + j_lo, src, s0, count)
            else:
                for b in range(sw):
                    _copy(dst, d0 + b * hs * ws + j_lo, src, s0 + b, sw, count)
            for b in range(sw):
                db = d0 + b * hs * ws
                for j in range(j_lo):
                    dst[db + j] = _padded(src, rr, w, j * sw + b, left, wp, mode)
                for j in range(j_hi, ws):
                    dst[db + j] = _padded(src, rr, w, j * sw + b, left, wp, mode)


@njit(inline="always", cache=True)
def _deinterleave2(dst, da, db, src, s0, count):
    """``dst[da + t] = src[s0 + 2t]`` and ``dst[db + t] = src[s0 + 2t + 1]`` for ``t < count``."""
    a, b, s = np.uint64(da), np.uint64(db), np.uint64(s0)
    for t in range(np.uint64(count)):
        dst[a + t] = src[s + np.uint64(2) * t]
        dst[b + t] = src[s + np.uint64(2) * t + np.uint64(1)]


@njit(inline="always", cache=True)
def _padded(src, rr, w, col, left, wp, mode):
    """Padded element at source row ``rr`` and padded column ``col`` (zero past ``wp``)."""
    cc = _source(col - left, w, mode) if col < wp else -1
    return src[rr * w + cc] if cc >= 0 else src.dtype.type(0)


@njit(inline="always", cache=True)
def _source(k, size, mode):
    """Index into an axis of length ``size`` that padded position ``k`` copies; -1 for a zero."""
    if 0 <= k < size:
        return k
    if mode == 1:  # reflect (edge not repeated); the spec guarantees padding < size
        return -k if k < 0 else 2 * (size - 1) - k
    if mode == 2:  # replicate
        return 0 if k < 0 else size - 1
    if mode == 3:  # circular; the spec guarantees padding <= size
        return k + size if k < 0 else k - size
    return -1





@njit(**_FLAGS)
def conv_depthwise(x, h, w_in, w, off, b, y, chans, oh, ow, sh, sw, hs, ws, top, left, length, tile,
                   plane_tile, n_chunks):
    """Zero-padded convolution with one input channel per group (depthwise, any multiplier):
    the offset GEMM of :func:`conv_grouped`, with less work per plane.

    x : (N * C * H * W,) input, flat (read only); w : (O, R) weights; off : (R,) item offsets
    in the phase-split plane; b : (O,) bias (zeros when there is none); y : (N * O * OH * OW,)
    output, flat, written in full. Output channel ``o`` reads input channel ``o // (O // C)``.
    plane_tile : positions per register tile of a kernel other than 3x3 (``DW_TILE_VECTORS``
    vectors, :mod:`impls._vector_tile`).
    n_chunks : contiguous runs of planes shared among the threads (a few per thread).

    Each thread zeroes one phase-split plane buffer, once: the padding positions stay zero and
    each plane only copies its data in, through offsets computed once per call (no division
    per row), and not at all when the previous output channel read the same input channel.
    A 3x3 kernel takes its 9 items in one pass over the accumulator, in order. Arrays are
    indexed flat from per-plane offsets: a view per plane would cost atomic reference counts,
    as much as a small plane's arithmetic.
    """
    n_out, n_items = w.shape[0], w.shape[1]
    n_batch = y.shape[0] // (n_out * oh * ow)
    mult = n_out // chans
    plane = sh * sw * hs * ws
    hw, ohw = h * w_in, oh * ow
    row_at, col_first, col_count, col_at = _row_copy_plan(h, w_in, sh, sw, hs, ws, top, left)
    even = left % sw  # the phase of input column 0
    # short rows: copy whole planes in and out through index maps (one loop per plane, not a
    # loop per row, whose set-up would cost more than its few elements)
    map_in = w_in < MAP_WIDTH
    map_out = ow < MAP_WIDTH and length <= tile
    in_at = np.empty(hw if map_in else 0, np.int64)
    if map_in:
        for r in range(h):
            for c in range(w_in):
                pc = c + left
                in_at[r * w_in + c] = row_at[r] + pc % sw * hs * ws + pc // sw
    out_from = np.empty(ohw if map_out else 0, np.int64)
    if map_out:
        for i in range(oh):
            for j in range(ow):
                out_from[i * ow + j] = i * ws + j
    n_tasks = n_batch * n_out
    n_chunks = min(n_tasks, n_chunks)
    wflat = w.reshape(-1)
    for chunk in prange(n_chunks):
        buf = np.zeros(plane + max(VEC, plane_tile), dtype=y.dtype)
        acc = np.empty(max(tile, plane_tile), dtype=y.dtype)
        ch = np.empty(1, np.int64)
        loaded = -1
        for task in range(chunk * n_tasks // n_chunks, (chunk + 1) * n_tasks // n_chunks):
            o = task % n_out
            src = task // n_out * chans + o // mult
            if src != loaded and map_in:
                for t in range(hw):
                    buf[in_at[t]] = x[src * hw + t]
                loaded = src
            elif src != loaded:
                for r in range(h):
                    _copy_row(buf, row_at[r], x, src * hw + r * w_in, w_in, sw, even, col_first,
                              col_count, col_at)
                loaded = src
            if n_items == 9 and map_out:
                _nine_taps(buf, w, o, b[o], off, acc, 0, length)
                for t in range(ohw):
                    y[task * ohw + t] = acc[out_from[t]]
            elif n_items == 9:
                for m0 in range(0, length, tile):
                    mt = min(tile, length - m0)
                    _nine_taps(buf, w, o, b[o], off, acc, m0, mt)
                    _scatter_rows(acc, 0, m0, mt, y, task * ohw, oh, ow, ws)
            else:  # a larger kernel: register tiles of this channel x plane_tile positions
                ch[0] = o
                for m0 in range(0, length, plane_tile):
                    _PLANE_TILE(acc, buf, m0, off, wflat, ch, b, n_items)
                    _scatter_rows(acc, 0, m0, min(plane_tile, length - m0), y, task * ohw, oh, ow, ws)


@njit(inline="always", cache=True)
def _nine_taps(buf, w, o, bias, off, acc, m0, mt):
    """Extended output positions ``m0 <= m < m0 + mt`` of output channel ``o`` (9 items, 3x3)
    into ``acc[m - m0]`` (rounded up to ``VEC`` positions), all 9 in one pass: 9 loads and 1
    store per output, added in item order."""
    w0, w1, w2, w3, w4, w5, w6, w7, w8 = w[o, 0], w[o, 1], w[o, 2], w[o, 3], w[o, 4], w[o, 5], w[o, 6], w[o, 7], w[o, 8]
    # offsets relative to item 0 (unsigned: a negative one wraps to the same address)
    o1, o2, o3 = np.uint64(off[1] - off[0]), np.uint64(off[2] - off[0]), np.uint64(off[3] - off[0])
    o4, o5, o6 = np.uint64(off[4] - off[0]), np.uint64(off[5] - off[0]), np.uint64(off[6] - off[0])
    o7, o8 = np.uint64(off[7] - off[0]), np.uint64(off[8] - off[0])
    s = np.uint64(m0 + off[0])
    for m in range(np.uint64(-(-mt // VEC) * VEC)):
        k = s + m
        acc[m] = (bias + w0 * buf[k] + w1 * buf[k + o1] + w2 * buf[k + o2] + w3 * buf[k + o3]
                  + w4 * buf[k + o4] + w5 * buf[k + o5] + w6 * buf[k + o6] + w7 * buf[k + o7]
                  + w8 * buf[k + o8])


@njit(inline="always", cache=True)
def _scatter_rows(acc, a0, m0, mt, y, y0, oh, ow, ws):
    """:func:`_scatter` of ``acc[a0:]`` into the flat plane of ``y`` at ``y0`` (no array views)."""
    end = m0 + mt
    for i in range(m0 // ws, min(-(-end // ws), oh)):
        j_lo = max(m0 - i * ws, 0)
        j_hi = min(ow, end - i * ws)
        if j_hi > j_lo:
            _copy(y, y0 + i * ow + j_lo, acc, a0 + i * ws + j_lo - m0, 1, j_hi - j_lo)
