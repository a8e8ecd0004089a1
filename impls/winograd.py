"""``winograd``: Winograd minimal filtering F(2x2, 3x3) and F(4x4, 3x3) for 3x3 stride-1 convs.

Algorithm
    Pad once (``harness.padding.pad_input``, any padding mode), copy the input channel-last
    (H, W, N, C), and cut it into overlapping ``alpha x alpha`` tiles (``alpha = m + 2``, stride
    ``m``); per tile compute ``Y = AT [ (G g G^T) * (BT d B) ] A`` summed over input channels.
    Each 2-D transform is one GEMM with a Kronecker matrix (``kron(BT, BT)``: 36x36 for F(4x4))
    on the flattened tiles, which NumPy runs far faster than slice-by-slice additions. The
    channel sum is the element-wise stage: for each of the ``alpha**2`` transform positions and
    each group one GEMM ``M[xi, g] = V[xi, g] (N*tiles x Cg) @ U[xi, g]^T (Cg x Og)`` — one
    ``np.matmul`` over the stack of ``alpha**2 * groups`` matrices. Weights are transformed
    once per call (``U = G g G^T``, one GEMM with ``kron(G, G)``). The work goes in blocks of
    tile rows (large images) or of output channels (deep layers, where ``U`` is the big operand)
    of about 0.5 MB, so operands stay in cache and scratch memory is reused.

Which tile
    F(4x4, 3x3) needs 36 multiplies per 16 outputs, F(2x2, 3x3) 16 per 4 — 2.25x against 4x
    fewer than direct's 9 per output — but F(4x4) rounds worse (see Accuracy), wastes more of
    its last tile row/column on small outputs, and transforms 36 instead of 16 copies of the
    weights, which dominates deep layers at small batch. Rule (:func:`choose_tile`): estimate
    ``(m+2)**2 * (N * tiles(m) + 40)`` for both — GEMM work per (output, input) channel pair
    plus the weight transform, weighted by its measured cost — and take F(4x4) only when it is
    at least 25% cheaper. ResNet-50 res2/res3 and VGG-16 use F(4x4); 14x14 and 7x7 layers
    and tiny outputs use F(2x2). :data:`TILE` forces one for tests and measurements.

Cost
    Multiplies: ``N * tiles * alpha**2 * O * Cg`` in the GEMMs (against
    ``N * OH * OW * 9 * O * Cg`` direct: 2.25x / 4x fewer), plus the transforms,
    ``alpha**2 * (alpha**2 * N*C + m**2 * N*O) * tiles`` for input and output and
    ``9 * alpha**2 * O * Cg`` for the weights. Memory: the channel-last input, the transformed
    weights (``alpha**2 / 9`` times the weights: 1.8x / 4x) and per block the transformed input
    and products.

Where it wins
    3x3 stride-1 layers with many channels (ResNet, VGG), where the GEMMs dominate. It loses on
    depthwise layers (the GEMMs are outer products and the transforms dominate).

Accuracy
    Rounding in the transforms is amplified by the matrices' entries: with every entry replaced
    by its absolute value, the magnitudes summed into one output are ``growth`` times those of
    the direct formula — 7.1 for F(2x2), 256 for F(4x4) (``WinogradTransform.growth``). The
    ``winograd`` error model (``harness.tolerance.winograd_bound``) is the direct bound times
    that growth, with ``A`` taken as its maximum over the outputs that share input tiles.
    Measured (C=O=16, 32x32 images, batch 2, 5 seeds; ``benchmarks/measure_numpy_backends.py
    --accuracy``): F(2x2) reaches 0.008 units of its bound in float32 and float64, F(4x4)
    0.003 / 0.002; as a fraction of ``max A`` the float32 error is 9e-8 for F(2x2), 1.6e-6 for
    F(4x4) — 17x worse, and 6x ``im2col``'s 2.5e-7. A flipped kernel errs by 300-60000 units.
"""

from __future__ import annotations

import numpy as np

from harness.errors import Unsupported
from harness.padding import pad_input
from harness.registry import Backend

from ._winograd_transforms import TRANSFORMS, WinogradTransform

#: Force the output tile size (2 or 4); None chooses per call (see module docstring).
TILE: int | None = None

#: Work is cut into blocks (of tile rows, or of transformed weights) of about this size, so the
#: GEMMs and the output transform find their operands in cache and scratch arrays are reused:
#: 0.5 MB (Zen 5's L2 is 1 MB per core) ran 1.1-1.6x faster than 4 MB or unblocked on
#: ResNet-50 res2/res3 at batch 8 and VGG-16 conv1_2 (1 thread, CPU time).
_BLOCK_BYTES = 2**19

#: A transformed input up to this size is made whole, and the weights are blocked instead, in
#: blocks of about ``_U_BLOCK_BYTES`` (2 MB ran 1.1-1.3x faster than 0.5 MB, and up to 1.4x
#: faster than unblocked at batch 1, on ResNet-50 res4/res5; 1 thread, CPU time).
_V_WHOLE_BYTES = 8 * 2**20
_U_BLOCK_BYTES = 2 * 2**20

#: F(4x4) is chosen when its estimated cost is at least this fraction below F(2x2)'s.
_F4_MIN_SAVING = 0.25

#: Cost of transforming one weight position, in units of one tile's multiply-add in the GEMM:
#: writing ``U`` (and faulting its pages in) ran at ~1/40 the GEMM's multiply-add rate
#: (ResNet-50 res5 at batch 1: 11 ms to transform 512x512 weights for F(4x4), 1 thread).
_WEIGHT_COST = 40


def choose_tile(spec) -> int:
    """The output tile size ``m`` (2 or 4) for a 3x3 stride-1 conv (rule in module docstring)."""
    if TILE is not None:
        if TILE not in TRANSFORMS:
            raise ValueError(f"winograd.TILE must be one of {sorted(TRANSFORMS)} or None, got {TILE}")
        return TILE

    def cost(m):
        tiles = spec.N * -(-spec.OH // m) * -(-spec.OW // m)
        return (m + 2) ** 2 * (tiles + _WEIGHT_COST)

    return 4 if cost(4) <= (1 - _F4_MIN_SAVING) * cost(2) else 2


def unsupported_reason(spec) -> str | None:
    """Why this call is not a 3x3, stride-1, undilated conv (None when it is)."""
    if (spec.KH, spec.KW) != (3, 3):
        return f"winograd needs a 3x3 kernel, got {spec.KH}x{spec.KW}"
    if spec.stride != (1, 1):
        return f"winograd needs stride 1, got stride {spec.stride}"
    if spec.dilation != (1, 1):
        return f"winograd needs dilation 1, got dilation {spec.dilation}"
    return None


def conv2d(x, w, bias, spec):
    why = unsupported_reason(spec)
    if why:
        raise Unsupported(why)
    if 0 in spec.out_shape:
        return np.empty(spec.out_shape, dtype=spec.dtype)
    t = TRANSFORMS[choose_tile(spec)]
    m, a, G = t.m, t.alpha, spec.groups
    xt = _channel_last(pad_input(x, spec), t, spec)
    th, tw = -(-spec.OH // m), -(-spec.OW // m)
    # whole tiles: (N, O, th*m, tw*m), cropped at the end when OH or OW is not a multiple of m
    y = np.empty((spec.N, spec.O, th * m, tw * m), dtype=spec.dtype)
    y5 = y.reshape(spec.N, G, spec.O // G, th * m, tw * m)
    rows, out_channels = _blocks(spec, t, th, tw, y.itemsize)
    w5 = w.reshape(G, spec.O // G, *w.shape[1:])
    U_all = _weight_transform(w5, t) if len(out_channels) == 1 else None
    work = _Workspace(y.dtype)
    for r in rows:
        V = _input_transform(xt[r.start * m : r.stop * m + 2], t, G, work)  # (alpha**2, G, P, Cg)
        for oc in out_channels:
            U = U_all if U_all is not None else _weight_transform(w5[:, oc], t)  # (alpha**2, G, Ob, Cg)
            Ut = U.swapaxes(-1, -2)  # BLAS reads U transposed in place
            M = np.matmul(V, Ut, out=work.get("M", V.shape[:3] + Ut.shape[-1:]))  # (alpha**2, G, P, Ob)
            _untile(_output_transform(M, t, work), m, out=y5[:, :, oc, r.start * m : r.stop * m])
    if y.shape[2:] != (spec.OH, spec.OW):
        y = np.ascontiguousarray(y[:, :, : spec.OH, : spec.OW])
    if bias is not None:
        y += bias.reshape(1, -1, 1, 1)
    return y


def _blocks(spec, t: WinogradTransform, th: int, tw: int, itemsize: int):
    """Tile-row slices and output-channel slices (within each group) to work through.

    When the whole transformed input fits :data:`_V_WHOLE_BYTES` (deep layers: small images,
    many channels) it is made once and the weights are transformed and multiplied in blocks of
    output channels (:data:`_U_BLOCK_BYTES`), each used once while in cache. Otherwise (large images)
    the weights are transformed once and the tile rows go in blocks of :data:`_BLOCK_BYTES`.
    """
    a2, G, Og, Cg = t.alpha**2, spec.groups, spec.O // spec.groups, spec.C // spec.groups
    row_bytes = a2 * tw * spec.N * spec.C * itemsize
    if row_bytes * th <= _V_WHOLE_BYTES:
        step = max(1, _U_BLOCK_BYTES // (a2 * G * Cg * itemsize))
        return [slice(0, th)], [slice(o, min(o + step, Og)) for o in range(0, Og, step)]
    step = max(1, _BLOCK_BYTES // row_bytes)
    return [slice(r, min(r + step, th)) for r in range(0, th, step)], [slice(0, Og)]


class _Workspace:
    """Scratch arrays reused from block to block: no fresh pages to fault in per block."""

    def __init__(self, dtype):
        self.dtype = dtype
        self.buffers = {}

    def get(self, name: str, shape) -> np.ndarray:
        size = int(np.prod(shape))
        buf = self.buffers.get(name)
        if buf is None or buf.size < size:
            buf = self.buffers[name] = np.empty(size, dtype=self.dtype)
        return buf[:size].reshape(shape)


def _weight_transform(w5, t: WinogradTransform) -> np.ndarray:
    """``U = G g G^T`` for weights (G, Ob, Cg, 3, 3): (alpha**2, G, Ob, Cg), one GEMM with ``kron(G, G)``."""
    G, Ob, Cg = w5.shape[:3]
    U = t.kron_G(w5.dtype) @ w5.reshape(G * Ob * Cg, 9).T
    return U.reshape(t.alpha**2, G, Ob, Cg)


def _channel_last(xp, t: WinogradTransform, spec) -> np.ndarray:
    """The padded input as (H, W, N, C), zero-extended to whole tiles (extra outputs are dropped).

    Channel-last, every tile row and column is an outer index, so gathering the tiles copies
    runs of ``N * C`` contiguous values instead of ``OW / m`` values ``m`` apart.
    """
    m = t.m
    th, tw = -(-spec.OH // m), -(-spec.OW // m)
    xt = np.zeros((th * m + 2, tw * m + 2) + xp.shape[:2], dtype=xp.dtype)
    xt[: xp.shape[2], : xp.shape[3]] = xp.transpose(2, 3, 0, 1)
    return xt


def _input_transform(xt, t: WinogradTransform, groups: int, work: _Workspace) -> np.ndarray:
    """``V = BT d B`` for the tiles of ``xt`` (H, W, N, C): (alpha**2, G, P, Cg), P = (ty, tx, n).

    The tiles are gathered into ``D[i, j] = d[i, j]`` for all tiles at once (36 slice copies
    whose inner loops run over ``N * C`` contiguous values), then transformed by one GEMM with
    ``kron(BT, BT)`` — a (alpha**2 x alpha**2) matrix — which beats slice-by-slice additions
    in NumPy several times over.
    """
    m, a = t.m, t.alpha
    th, tw = (xt.shape[0] - 2) // m, (xt.shape[1] - 2) // m
    N, C = xt.shape[2:]
    D = work.get("D", (a, a, th, tw, N, C))
    for i in range(a):
        for j in range(a):
            D[i, j] = xt[i : i + (th - 1) * m + 1 : m, j : j + (tw - 1) * m + 1 : m]
    V = np.matmul(t.kron_BT(xt.dtype), D.reshape(a * a, -1), out=work.get("V", (a * a, D[0, 0].size)))
    return V.reshape(a * a, th * tw * N, groups, C // groups).swapaxes(1, 2)


def _output_transform(M, t: WinogradTransform, work: _Workspace) -> np.ndarray:
    """``AT M A`` on (alpha**2, G, P, Og) products: (m, m, G, P, Og) output tiles, one GEMM."""
    rest = M[0].size
    Z = np.matmul(t.kron_AT(M.dtype), M.reshape(t.alpha**2, rest), out=work.get("Z", (t.m**2, rest)))
    return Z.reshape(t.m, t.m, *M.shape[1:])


def _untile(tiles, m: int, out) -> None:
    """(m, m, G, P, Ob) output tiles -> ``out`` (N, G, Ob, th*m, tw*m), in one transposing copy."""
    N, G, Ob, rows, cols = out.shape
    th, tw = rows // m, cols // m
    grid = tiles.reshape(m, m, G, th, tw, N, Ob).transpose(5, 2, 6, 3, 0, 4, 1)
    dest = out.view()
    dest.shape = (N, G, Ob, th, m, tw, m)  # a view (raises rather than copy)
    dest[...] = grid


BACKEND = Backend(
    name="winograd",
    device="cpu",
    ops={"conv2d": conv2d},
    features={
        "conv2d": frozenset(
            {
                "bias",
                "padding",
                "asymmetric_padding",
                "groups",
                "depthwise",
                "padding_mode=reflect",
                "padding_mode=replicate",
                "padding_mode=circular",
            }
        )
    },
    exact=False,
    deterministic=True,
    nonfinite=False,  # one NaN/Inf spreads over its whole transform (tile or image)
    error_model="winograd",
    auto_rank=40,
    description="Winograd F(2x2,3x3) / F(4x4,3x3), batched GEMMs over transform positions",
)
