"""Numba kernels of ``winograd``: the three transforms and the weights' fingerprint.

Importing this module compiles the kernels (or loads them from numba's disk cache); ``winograd``
imports it on first use. Every kernel takes the transform matrices as arguments, so one
compiled kernel serves F(2x2, 3x3), F(4x4, 3x3) and F(6x6, 3x3), and skips their zero entries.

Layouts (``a = alpha = m + 2`` points per tile side, ``xi = k * a + l`` a transform position,
``p = (n * rows + r) * tw + tx`` a tile of the block being worked on):

* input tiles ``V[xi, c, p]``, products ``M[xi, o, p]``: a tile index runs fastest, so the
  GEMMs ``M[xi] = U[xi] @ V[xi]`` (per group) and both transforms read and write runs of
  ``tw`` tiles that the compiler vectorizes;
* transformed weights ``U[xi, o, c]``.

Each 2-D transform is done as two 1-D passes, first along H (whole image rows at a time,
contiguous), then along W. For the W pass the row is first split into its ``m`` phases
(``row[tx * m + s]`` for fixed ``s``), so that tap ``j`` of tile ``tx`` is ``phase[j % m][tx + j // m]``
and every loop runs over contiguous memory.

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
        d = np.empty((a, a, Q), dtype=V.dtype)
        t = np.empty((a, a, Q), dtype=V.dtype)
        if a == 8:
            _input_plane_f6(x, BT, n0, job // C, job % C, top, left, ty0, rows, tw, V, prow, d, t)
        elif a == 6:
            _input_plane_f4(x, BT, n0, job // C, job % C, top, left, ty0, rows, tw, V, prow, d, t)
        else:
            _input_plane_f2(x, BT, n0, job // C, job % C, top, left, ty0, rows, tw, V, prow, d, t)


@njit(inline="always")
def _input_plane(x, BT, m, n0, n, c, top, left, ty0, rows, tw, V, prow, d, t):
    """The tiles of one (n, c) plane; ``m`` is a constant where this is inlined, so loops unroll."""
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
    if m == 4:  # the F(4x4) matrix written out: 12 of its 36 entries are zero, 8 are +-1
        for j in range(a):  # t = BT d: along H
            _bt4(BT, d[0, j], d[1, j], d[2, j], d[3, j], d[4, j], d[5, j],
                 t[0, j], t[1, j], t[2, j], t[3, j], t[4, j], t[5, j], Q)
        p = n * Q
        for k in range(a):  # V = t B: along W
            _bt4(BT, t[k, 0], t[k, 1], t[k, 2], t[k, 3], t[k, 4], t[k, 5],
                 V[k * a, c, p:], V[k * a + 1, c, p:], V[k * a + 2, c, p:], V[k * a + 3, c, p:],
                 V[k * a + 4, c, p:], V[k * a + 5, c, p:], Q)
        return
    if m == 2:  # F(2x2): every entry is 0 or +-1
        for j in range(a):
            _bt2(d[0, j], d[1, j], d[2, j], d[3, j], t[0, j], t[1, j], t[2, j], t[3, j], Q)
        p = n * Q
        for k in range(a):
            _bt2(t[k, 0], t[k, 1], t[k, 2], t[k, 3],
                 V[k * a, c, p:], V[k * a + 1, c, p:], V[k * a + 2, c, p:], V[k * a + 3, c, p:], Q)
        return
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
def _input_plane_f4(x, BT, n0, n, c, top, left, ty0, rows, tw, V, prow, d, t):
    _input_plane(x, BT, 4, n0, n, c, top, left, ty0, rows, tw, V, prow, d, t)


@njit(**_SERIAL)
def _input_plane_f2(x, BT, n0, n, c, top, left, ty0, rows, tw, V, prow, d, t):
    _input_plane(x, BT, 2, n0, n, c, top, left, ty0, rows, tw, V, prow, d, t)


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

