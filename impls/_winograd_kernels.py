"""Numba kernels of ``winograd``: the three transforms and the weights' fingerprint.

Importing this module compiles the kernels (or loads them from numba's disk cache); ``winograd``
imports it on first use. Every kernel takes the transform matrices as arguments; F(2x2, 3x3)
and F(4x4, 3x3) have their input and output transforms written out (``_bt2``, ``_bt4``,
``_at2``, ``_at4``: zero entries skipped, shared sums, the coefficients 2, 4, 5, 8 read from the
matrices so they are in the data's dtype), F(6x6, 3x3) runs the general loops over the matrices.

Layouts (``a = alpha = m + 2`` points per tile side, ``xi = k * a + l`` a transform position,
``p = (n * rows + r) * tw + tx`` a tile of the block being worked on):

* input tiles ``V[xi, c, p]``, products ``M[xi, o, p]``: a tile index runs fastest, so the
  GEMMs ``M[xi] = U[xi] @ V[xi]`` (per group) and both transforms read and write runs of
  ``tw`` tiles that the compiler vectorizes;
* transformed weights ``U[xi, o, c]``.

Each 2-D transform is done as two 1-D passes, first along H, then along W. For F(2x2) and
F(4x4) input rows are first split into their ``m`` phases (``row[tx * m + s]`` for fixed ``s``),
once per row and block, so that tap ``j`` of tile ``tx`` is ``phase[j % m][tx + j // m]`` and both
passes run over contiguous memory (1.0-1.6x less CPU time for the input transform than
gathering each tile's taps, 1 thread, loaded machine, 2026-12-02); F(6x6) gathers the taps.

Each output element is computed by one thread in a fixed order, so the results do not depend
on the thread count. ``fastmath`` allows only ``contract`` (fused multiply-add).
"""

import numpy as np
from numba import njit, prange

_SERIAL = dict(fastmath={"contract"}, cache=True, nogil=True)
_PARALLEL = dict(parallel=True, **_SERIAL)


@njit(**_PARALLEL)
def input_transform(x, BT, top, left, n0, nb, ty0, rows, tw, V):
    """``V[xi, c, p] = (BT d B)[k, l]`` for the tiles ``d`` of images ``n0 .. n0+nb``, tile rows ``ty0 .. ty0+rows``.

    ``x`` (N, C, H, W) is the input, padded with zeros by ``top`` / ``left`` (and implicitly on
    the other sides, up to whole tiles); pass a padded input and 0, 0 for other padding modes.
    """
    C = x.shape[1]
    a, Q = BT.shape[0], rows * tw
    for job in prange(nb * C):
        prow = np.zeros((tw + 1) * (a - 2), dtype=V.dtype)  # one input row, zero-extended
        if a == 8:
            d = np.empty((a, a, Q), dtype=V.dtype)
            t = np.empty((a, a, Q), dtype=V.dtype)
            _input_plane_f6(x, BT, n0, job // C, job % C, top, left, ty0, rows, tw, V, prow, d, t)
            continue
        phases = np.empty((rows * (a - 2) + 2, prow.size), dtype=V.dtype)
        t = np.empty((a, prow.size), dtype=V.dtype)
        if a == 6:
            _input_plane_f4(x, BT, n0, job // C, job % C, top, left, ty0, rows, tw, V, prow, phases, t)
        else:
            _input_plane_f2(x, BT, n0, job // C, job % C, top, left, ty0, rows, tw, V, prow, phases, t)


@njit(inline="always")
def _input_plane(x, BT, m, n0, n, c, top, left, ty0, rows, tw, V, prow, d, t):
    """The tiles of one (n, c) plane, any tile size (F(6x6)); ``m`` is a constant where this is
    inlined, so loops unroll."""
    H, W = x.shape[2:]
    a, Q = m + 2, rows * tw
    ncols = min(W, prow.size - left)
    for r in range(rows):  # d[i, j, q] = tap (i, j) of tile q = r * tw + tx
        y0 = (ty0 + r) * m - top
        for i in range(a):
            if 0 <= y0 + i < H:
                prow[left : left + ncols] = x[n0 + n, c, y0 + i, :ncols]
                for j in range(a):
                    dij = d[i, j, r * tw : (r + 1) * tw]
                    for tx in range(tw):
                        dij[tx] = prow[tx * m + j]
            else:
                d[i, :, r * tw : (r + 1) * tw] = 0
    for k in range(a):  # t = BT d: along H
        for j in range(a):
            tkj = t[k, j]
            for q in range(Q):
                acc = BT[k, 0] * d[0, j, q]
                for i in range(1, a):
                    acc += BT[k, i] * d[i, j, q]
                tkj[q] = acc
    for k in range(a):  # V = t B: along W
        for l in range(a):
            out = V[k * a + l, c, n * Q : (n + 1) * Q]
            for q in range(Q):
                acc = BT[l, 0] * t[k, 0, q]
                for j in range(1, a):
                    acc += BT[l, j] * t[k, j, q]
                out[q] = acc


@njit(inline="always")
def _bt4(BT, d0, d1, d2, d3, d4, d5, r0, r1, r2, r3, r4, r5, Q):
    """``r = BT d`` for F(4x4, 3x3), elementwise over ``Q`` positions; the coefficients (4, 5,
    2) come from ``BT`` itself, so they are in the data's dtype."""
    c4, c5, c2 = BT[0, 0], -BT[0, 2], BT[3, 3]
    for q in range(Q):
        a1, a2, a3, a4 = d1[q], d2[q], d3[q], d4[q]
        r0[q] = c4 * d0[q] - c5 * a2 + a4
        r1[q] = (a3 + a4) - c4 * (a1 + a2)
        r2[q] = (a4 - a3) + c4 * (a1 - a2)
        r3[q] = (a4 - a2) - c2 * (a1 - a3)
        r4[q] = (a4 - a2) + c2 * (a1 - a3)
        r5[q] = c4 * a1 - c5 * a3 + d5[q]


@njit(inline="always")
def _bt2(d0, d1, d2, d3, r0, r1, r2, r3, Q):
    """``r = BT d`` for F(2x2, 3x3), elementwise over ``Q`` positions."""
    for q in range(Q):
        a1, a2 = d1[q], d2[q]
        r0[q] = d0[q] - a2
        r1[q] = a1 + a2
        r2[q] = a2 - a1
        r3[q] = a1 - d3[q]


@njit(**_SERIAL)
def _input_plane_f6(x, BT, n0, n, c, top, left, ty0, rows, tw, V, prow, d, t):
    _input_plane(x, BT, 6, n0, n, c, top, left, ty0, rows, tw, V, prow, d, t)


@njit(**_SERIAL)
def _input_plane_f4(x, BT, n0, n, c, top, left, ty0, rows, tw, V, prow, phases, t):
    _input_plane_phased(x, BT, 4, n0, n, c, top, left, ty0, rows, tw, V, prow, phases, t)


@njit(**_SERIAL)
def _input_plane_f2(x, BT, n0, n, c, top, left, ty0, rows, tw, V, prow, phases, t):
    _input_plane_phased(x, BT, 2, n0, n, c, top, left, ty0, rows, tw, V, prow, phases, t)


@njit(inline="always")
def _input_plane_phased(x, BT, m, n0, n, c, top, left, ty0, rows, tw, V, prow, phases, t):
    """The tiles of one (n, c) plane for F(2x2) / F(4x4) (``m`` a constant where inlined).

    Each input row the block needs is split once into its ``m`` phases,
    ``phases[y, s * (tw + 1) + u] = row[u * m + s]`` (the only strided pass); tap ``j`` of tile
    ``tx`` is then ``phases[y, (j % m) * (tw + 1) + tx + j // m]``, so both 1-D passes run over
    contiguous memory: along H on whole phase rows, along W on runs of ``tw`` tiles. (Splitting
    each tile's taps out one by one took most of this stage's time.)
    """
    H, W = x.shape[2:]
    a, Q, T = m + 2, rows * tw, tw + 1
    ncols = min(W, prow.size - left)
    y_first = ty0 * m - top
    for yy in range(phases.shape[0]):
        y = y_first + yy
        out = phases[yy]
        if 0 <= y < H:
            prow[left : left + ncols] = x[n0 + n, c, y, :ncols]
            for s in range(m):
                for u in range(T):
                    out[s * T + u] = prow[u * m + s]
        else:
            out[:] = 0
    L = phases.shape[1]
    for r in range(rows):
        y0, p = r * m, n * Q + r * tw
        if m == 4:
            _bt4(BT, phases[y0], phases[y0 + 1], phases[y0 + 2], phases[y0 + 3], phases[y0 + 4],
                 phases[y0 + 5], t[0], t[1], t[2], t[3], t[4], t[5], L)
            for k in range(a):
                tk = t[k]
                _bt4(BT, tk, tk[T:], tk[2 * T:], tk[3 * T:], tk[1:], tk[T + 1:],
                     V[k * a, c, p:], V[k * a + 1, c, p:], V[k * a + 2, c, p:], V[k * a + 3, c, p:],
                     V[k * a + 4, c, p:], V[k * a + 5, c, p:], tw)
        else:
            _bt2(phases[y0], phases[y0 + 1], phases[y0 + 2], phases[y0 + 3], t[0], t[1], t[2], t[3], L)
            for k in range(a):
                tk = t[k]
                _bt2(tk, tk[T:], tk[1:], tk[T + 1:],
                     V[k * a, c, p:], V[k * a + 1, c, p:], V[k * a + 2, c, p:], V[k * a + 3, c, p:], tw)


@njit(**_PARALLEL)
def multiply_and_output(U, V, AT, bias, Ob, n0, nb, ty0, rows, tw, y):
    """GEMMs and output transform: ``y[n0 + n, channel, rows of the block] = AT M A (+ bias)``.

    ``M[xi] = U[xi, g, chunk] @ V[xi, g]`` for the transformed weights ``U`` (a*a, G, Og, Cg)
    and tiles ``V`` (a*a, G, Cg, P). One job per chunk of ``Ob`` output channels of a group:
    it runs its ``a*a`` GEMMs (one BLAS call each: call this with BLAS held to one thread, so
    that numba's threads are the only pool) and transforms its products at once, while they
    are in cache. Tiles reaching past ``y``'s last row or column are cropped. ``bias`` has one
    entry per channel of ``y`` (an empty array: no bias).
    """
    a2, G, Og = U.shape[:3]
    P = V.shape[3]
    m, a = AT.shape
    Q = rows * tw
    chunks = (Og + Ob - 1) // Ob
    for job in prange(G * chunks):
        g, o0 = job // chunks, job % chunks * Ob
        o1 = min(Og, o0 + Ob)
        M = np.empty((a2, o1 - o0, P), dtype=y.dtype)
        for xi in range(a2):
            np.dot(U[xi, g, o0:o1], V[xi, g], M[xi])
        s = np.empty((m, a, Q), dtype=y.dtype)
        z = np.empty((m, m, Q), dtype=y.dtype)
        for n in range(nb):
            for o in range(o1 - o0):
                channel = g * Og + o0 + o
                b = bias[channel] if bias.size else 0.0
                if m == 6:
                    _output_plane_f6(M, AT, b, o, n * Q, y[n0 + n, channel], ty0, rows, tw, s, z)
                elif m == 4:
                    _output_plane_f4(M, AT, b, o, n * Q, y[n0 + n, channel], ty0, rows, tw, s, z)
                else:
                    _output_plane_f2(M, AT, b, o, n * Q, y[n0 + n, channel], ty0, rows, tw, s, z)


@njit(inline="always")
def _output_plane(M, AT, m, b, o, p0, dest, ty0, rows, tw, s, z):
    """Tiles ``p0 ..`` of products ``M[:, o]`` into output plane ``dest``; ``m`` is a constant
    where this is inlined, so loops unroll."""
    OH, OW = dest.shape
    a, Q = m + 2, rows * tw
    if m == 4:  # the F(4x4) matrix written out: 4 of its 24 entries are zero, 10 are +-1
        for l in range(a):  # s = AT M: along H
            _at4(AT, M[l, o, p0:], M[a + l, o, p0:], M[2 * a + l, o, p0:], M[3 * a + l, o, p0:],
                 M[4 * a + l, o, p0:], M[5 * a + l, o, p0:], 0.0, s[0, l], s[1, l], s[2, l], s[3, l], Q)
        for rr in range(m):  # z = s A (+ bias): along W
            _at4(AT, s[rr, 0], s[rr, 1], s[rr, 2], s[rr, 3], s[rr, 4], s[rr, 5], b,
                 z[rr, 0], z[rr, 1], z[rr, 2], z[rr, 3], Q)
    elif m == 2:  # F(2x2): every entry is 0 or +-1
        for l in range(a):
            _at2(M[l, o, p0:], M[a + l, o, p0:], M[2 * a + l, o, p0:], M[3 * a + l, o, p0:], 0.0,
                 s[0, l], s[1, l], Q)
        for rr in range(m):
            _at2(s[rr, 0], s[rr, 1], s[rr, 2], s[rr, 3], b, z[rr, 0], z[rr, 1], Q)
    else:
        for rr in range(m):  # s = AT M: along H
            for l in range(a):
                srl = s[rr, l]
                for q in range(Q):
                    acc = AT[rr, 0] * M[l, o, p0 + q]
                    for k in range(1, a):
                        acc += AT[rr, k] * M[k * a + l, o, p0 + q]
                    srl[q] = acc
        for rr in range(m):  # z = s A (+ bias): along W
            for cc in range(m):
                zrc = z[rr, cc]
                for q in range(Q):
                    acc = b + AT[cc, 0] * s[rr, 0, q]
                    for l in range(1, a):
                        acc += AT[cc, l] * s[rr, l, q]
                    zrc[q] = acc
    full = min(tw, OW // m)  # tiles whose m columns all lie inside the output
    for r in range(rows):
        for rr in range(min(m, OH - (ty0 + r) * m)):
            row = dest[(ty0 + r) * m + rr]
            for tx in range(full):
                for cc in range(m):
                    row[tx * m + cc] = z[rr, cc, r * tw + tx]
            for tx in range(full, tw):  # the last tile column, cropped
                for cc in range(min(m, OW - tx * m)):
                    row[tx * m + cc] = z[rr, cc, r * tw + tx]


@njit(inline="always")
def _at4(AT, m0, m1, m2, m3, m4, m5, b, r0, r1, r2, r3, Q):
    """``r = AT m (+ b)`` for F(4x4, 3x3), elementwise over ``Q`` positions; the coefficients
    (2, 4, 8) come from ``AT`` itself, so they are in the data's dtype."""
    c2, c4, c8 = AT[1, 3], AT[2, 3], AT[3, 3]
    bb = r0.dtype.type(b)
    for q in range(Q):
        p12, n12, p34, n34 = m1[q] + m2[q], m1[q] - m2[q], m3[q] + m4[q], m3[q] - m4[q]
        r0[q] = bb + m0[q] + p12 + p34
        r1[q] = bb + n12 + c2 * n34
        r2[q] = bb + p12 + c4 * p34
        r3[q] = bb + n12 + c8 * n34 + m5[q]


@njit(inline="always")
def _at2(m0, m1, m2, m3, b, r0, r1, Q):
    """``r = AT m (+ b)`` for F(2x2, 3x3), elementwise over ``Q`` positions."""
    bb = r0.dtype.type(b)
    for q in range(Q):
        r0[q] = bb + m0[q] + m1[q] + m2[q]
        r1[q] = bb + m1[q] - m2[q] - m3[q]


@njit(**_SERIAL)
def _output_plane_f6(M, AT, b, o, p0, dest, ty0, rows, tw, s, z):
    _output_plane(M, AT, 6, b, o, p0, dest, ty0, rows, tw, s, z)


@njit(**_SERIAL)
def _output_plane_f4(M, AT, b, o, p0, dest, ty0, rows, tw, s, z):
    _output_plane(M, AT, 4, b, o, p0, dest, ty0, rows, tw, s, z)


@njit(**_SERIAL)
def _output_plane_f2(M, AT, b, o, p0, dest, ty0, rows, tw, s, z):
    _output_plane(M, AT, 2, b, o, p0, dest, ty0, rows, tw, s, z)


@njit(**_PARALLEL)
def weight_transform(w, Gm, U):
    """``U[xi, o, c] = (G g G^T)[k, l]`` for the 3x3 filters ``g = w[o, c]`` of ``w`` (O, Cg, 3, 3)."""
    if Gm.shape[0] == 8:
        _weight_transform(w, Gm, 8, U)
    elif Gm.shape[0] == 6:
        _weight_transform(w, Gm, 6, U)
    else:
        _weight_transform(w, Gm, 4, U)


@njit(inline="always")
def _weight_transform(w, Gm, a, U):
    O, Cg = w.shape[:2]
    for o in prange(O):
        h = np.empty((a, 3), dtype=U.dtype)
        for c in range(Cg):
            for k in range(a):  # h = G g
                for q in range(3):
                    h[k, q] = Gm[k, 0] * w[o, c, 0, q] + Gm[k, 1] * w[o, c, 1, q] + Gm[k, 2] * w[o, c, 2, q]
            for k in range(a):  # U = h G^T
                for l in range(a):
                    U[k * a + l, o, c] = Gm[l, 0] * h[k, 0] + Gm[l, 1] * h[k, 1] + Gm[l, 2] * h[k, 2]


_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_CHUNK = 1 << 16


@njit(**_PARALLEL)
def fingerprint(words):
    """A 64-bit digest of ``words`` (uint32 or uint64, 1-D) that depends on every value and its position.

    ``sum_i mix(words[i] + (i + 1) * GOLDEN)`` modulo 2**64, ``mix`` being SplitMix64's finaliser,
    a bijection: changing one word changes one term, so the sum always changes; changing
    several leaves it unchanged with probability about 2**-64 (the terms behave as independent
    random 64-bit values). Summed in chunks across threads (addition modulo 2**64 is exact and
    commutative, so the digest does not depend on the thread count).
    """
    n = words.size
    chunks = (n + _CHUNK - 1) // _CHUNK
    partial = np.zeros(chunks, dtype=np.uint64)
    for ch in prange(chunks):
        acc = np.uint64(0)
        for i in range(ch * _CHUNK, min(n, (ch + 1) * _CHUNK)):
            z = np.uint64(words[i]) + np.uint64(i + 1) * _GOLDEN
            z = (z ^ (z >> np.uint64(30))) * _M1
            z = (z ^ (z >> np.uint64(27))) * _M2
            acc += z ^ (z >> np.uint64(31))
        partial[ch] = acc
    total = np.uint64(0)
    for ch in range(chunks):
        total += partial[ch]
    return total

