"""``winograd``: Winograd minimal filtering F(2x2, 3x3) and F(4x4, 3x3) (and F(6x6, 3x3) on request)
for 3x3 stride-1 convs.

Algorithm
    Cut the padded input into overlapping ``alpha x alpha`` tiles (``alpha = m + 2``, stride
    ``m``); per tile compute ``Y = AT [ (G g G^T) * (BT d B) ] A`` summed over input channels.
    The three stages (kernels in ``impls/_winograd_kernels.py``, compiled by numba):

    * input transform ``V = BT d B``: per (image, channel) plane, parallel over planes, two
      1-D passes with the tile's taps gathered so that every loop runs over contiguous tiles;
      zero padding is applied on the fly (other modes pad first with ``pad_input``);
    * element-wise stage: for each of the ``alpha**2`` transform positions and each group one
      GEMM ``M[xi, g] = U[xi, g] (Og x Cg) @ V[xi, g] (Cg x tiles)``, one BLAS call each,
      shared among numba's threads with BLAS held to one thread (two thread pools taking turns
      on the same cores spin against each other: 2-10x slower on this 2-core machine);
    * output transform ``Y = AT M A`` (+ bias), cropped at the edges, parallel over planes.

    The work goes in blocks of about :data:`_BLOCK_TILES` tiles (whole images at small sizes,
    tile rows of one image at large ones); within a block, each job multiplies and transforms
    a chunk of output channels (:data:`_CHUNK_CHANNELS`; :data:`_WIDE_CHUNK_CHANNELS` in blocks of
    many tiles), so its products stay in cache.

Transformed weights
    ``U = G g G^T`` (``alpha**2 / 9`` times the weights: 1.8x / 4x their size) is cached by
    content (:class:`_WeightCache`, :data:`WEIGHT_CACHE_BYTES`): inference calls the same
    weights layer after layer, as oneDNN's and cuDNN's Winograd paths do by transforming
    weights ahead. Each call digests its weights (a 64-bit content hash over 8-byte words, one
    pass near memory speed) to find them; the entry also holds the weights' largest exponent,
    so a hit reads the weights only for the digest. A miss transforms them (one parallel
    pass). Benchmarks therefore time the warm case; ``WEIGHT_CACHE_BYTES = 0`` measures a
    transform per call.

Which tile
    F(4x4, 3x3) needs 36 multiplies per 16 outputs, F(2x2, 3x3) 16 per 4 — 2.25x against 4x
    fewer than direct's 9 per output — but F(4x4) rounds worse (see Accuracy), wastes more of
    its last tile row/column on small outputs, and its GEMMs stream 36 instead of 16 copies of
    the weights, which dominates deep layers at batch 1. Rule (:func:`choose_tile`): estimate
    ``(m+2)**2 * (N * tiles(m) + 8)`` for both — GEMM multiply-adds per (output, input) channel
    pair plus the weights' traffic — and take the cheaper. F(4x4) wins everywhere in ResNet-50
    and VGG-16 except 7x7 images at batch 1 (4 tiles against 16), and tiny outputs.
    :data:`TILE` forces one for tests and measurements. F(6x6, 3x3) (64 multiplies per 36
    outputs, 1.27x fewer than F(4x4)) is implemented and verified but never chosen by the rule:
    with these kernels it took 1.11-1.30x F(4x4)'s CPU time on ResNet-50 / VGG-16 3x3 layers
    (1 thread, ``time.process_time``, shared machine, 2026-12-02) — its 64 GEMMs per block stream
    1.8x as much transformed input per output-channel chunk; ``TILE = 6`` forces it.

Cost
    Multiplies: ``N * tiles * alpha**2 * O * Cg`` in the GEMMs (against
    ``N * OH * OW * 9 * O * Cg`` direct: 2.25x / 4x fewer), plus the transforms,
    ``2 * alpha**3`` multiply-adds per tile and input channel in (F(4x4): 432 counting the
    zeros of ``BT``; F(2x2) and F(4x4) skip them, written out in the kernels),
    ``m * alpha * (alpha + m)`` per tile and output channel out (F(4x4): 240, zeros counted),
    and ``3 * alpha * (3 + alpha)`` per filter for the
    weights on a cache miss.
    Memory: the cached ``U``, and per block the transformed input and the products
    (``alpha**2 * (C + O)`` values per tile).

Where it wins
    3x3 stride-1 layers with many channels (ResNet, VGG), where the GEMMs dominate. It loses on
    depthwise layers (the GEMMs are outer products and the transforms dominate).

Accuracy
    Rounding in the transforms is amplified by the matrices' entries: with every entry replaced
    by its absolute value, the magnitudes summed into one output are ``growth`` times those of
    the direct formula — 7.1 for F(2x2), 256 for F(4x4), 509 for F(6x6)
    (``WinogradTransform.growth``). The
    ``winograd`` error model (``harness.ops.tolerance.winograd_bound``) is the direct bound times
    that growth, with ``A`` taken as its maximum over the outputs that share input tiles.
    Measured (C=O=16, 32x32 images, batch 2, 5 seeds; ``python -m harness.bench.accuracy``): F(2x2) reaches 0.008 units of its bound in float32 and float64, F(4x4)
    0.003 / 0.002; as a fraction of ``max A`` the float32 error is 9e-8 for F(2x2), 1.4e-6 for
    F(4x4) — 15x worse, and 6x ``im2col``'s 2.5e-7; F(6x6) (forced) 0.003 / 0.002 units and
    2.8e-6. A flipped kernel errs by 300-60000 units.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from functools import lru_cache

import numpy as np

from harness.errors import Unsupported
from harness.ops.padding import pad_input
from harness.backend.registry import Backend, CostModel
from harness.ops.tolerance import ErrorModel, direct_bound, register_error_model
from harness.support.timing import blas_pools

from harness.support.finite_guard import NonFiniteData, finite_required

from ._range_scaling import SAFE_EXPONENT, exponent_and_finite, scaled, unscale
from ._winograd_transforms import TRANSFORMS, WinogradTransform
from .numba_cpu import probe  # the same need: numba importable

#: Force the output tile size (2, 4 or 6); None chooses 2 or 4 per call (see module docstring).
TILE: int | None = None

#: The tile sizes :func:`choose_tile` chooses among.
AUTO_TILES = (2, 4)

#: Transformed weights are kept for reuse up to this many bytes in all (least recently used
#: dropped first), keyed by the weights' shape, dtype, tile size and content digest; 0 turns
#: the cache off (every call transforms its weights).
WEIGHT_CACHE_BYTES = 512 * 2**20

#: Work is cut into blocks of images or tile rows of about this many tiles: the GEMMs' width.
_BLOCK_TILES = 256

#: The GEMMs and the output transform of a block are shared among threads in jobs of at most
#: this many output channels (and at most half a group's, so a group makes two jobs or more),
#: each job's products at most this size (they stay in cache for the output transform). Every
#: job streams the block's whole transformed input through its GEMMs, so wider jobs stream it
#: fewer times: 32 channels and 2 MiB took 0.86-1.04x the CPU time of 16 and 1 MiB on six
#: ResNet/VGG 3x3 layers (1 thread, ``time.process_time``, shared machine at load 3, 2026-12-02).
_CHUNK_CHANNELS = 32
_PRODUCT_BYTES = 2**21
#: Blocks of at least this many tiles take jobs of up to :data:`_WIDE_CHUNK_CHANNELS` channels and
#: :data:`_WIDE_PRODUCT_BYTES` of products: there the transformed input streamed once per job costs
#: more than products that spill from L2 to L3. At batch 8 on the 2-core AMD EPYC (1 MB L2, 32 MB L3;
#: 2 threads, OpenBLAS SkylakeX kernel, 2026-12-02, two runs each), 128 channels against 32 took
#: 0.82-0.89x the time on ResNet-34 layer3 (128 tiles a block), 0.88-0.90x on layer2 (256) and
#: 0.84-0.86x on VGG-16 conv5_1 (128), but 1.17-1.21x on layer4 (7x7 images: 32 tiles), which keeps 32.
_WIDE_TILES = 64
_WIDE_CHUNK_CHANNELS = 128
_WIDE_PRODUCT_BYTES = 2**23

#: Cost of one transformed weight value per call (streamed from memory by the GEMMs, and
#: digested for the cache), in units of one multiply-add of the GEMMs: fitted so that the
#: rule picks the faster tile on ResNet-50 and VGG-16 (2 threads; see :func:`choose_tile`).
_WEIGHT_COST = 8


def choose_tile(spec) -> int:
    """The output tile size ``m`` (2 or 4; :data:`TILE` when set) for a 3x3 stride-1 conv (rule in
    module docstring)."""
    if TILE is not None:
        if TILE not in TRANSFORMS:
            raise ValueError(f"winograd.TILE must be one of {sorted(TRANSFORMS)} or None, got {TILE}")
        return TILE

    def cost(m):  # per (output, input) channel pair: GEMM multiply-adds plus the weights' traffic
        tiles = spec.N * -(-spec.OH // m) * -(-spec.OW // m)
        return (m + 2) ** 2 * (tiles + _WEIGHT_COST)

    return min(AUTO_TILES, key=cost)  # the smaller tile on a tie, as before


def unsupported_reason(spec) -> str | None:
    """Why this call is not a 3x3, stride-1, undilated conv (None when it is)."""
    if (spec.KH, spec.KW) != (3, 3):
        return f"winograd needs a 3x3 kernel, got {spec.KH}x{spec.KW}"
    if spec.stride != (1, 1):
        return f"winograd needs stride 1, got stride {spec.stride}"
    if spec.dilation != (1, 1):
        return f"winograd needs dilation 1, got dilation {spec.dilation}"
    return None


@lru_cache(maxsize=None)
def kernels():
    """The compiled kernel module (imports numba; compiles or loads from cache on first call)."""
    from impls import _winograd_kernels

    return _winograd_kernels


def conv2d(x, w, bias, spec):
    why = unsupported_reason(spec)
    if why:
        raise Unsupported(why)
    y = np.empty(spec.out_shape, dtype=spec.dtype)
    if y.size == 0:
        return y
    k, t = kernels(), TRANSFORMS[choose_tile(spec)]
    # data near the dtype's limits is scaled by powers of two (exact) so the transforms stay in
    # range; the weights' exponent comes with their cached transform (no pass over them)
    U, ew, w_finite = WEIGHT_CACHE.get(w, t)
    ex, x_finite = exponent_and_finite(x)
    if finite_required() and not (x_finite and w_finite and (bias is None or np.isfinite(bias).all())):
        raise NonFiniteData("winograd would smear NaN/Inf over whole tiles")  # auto reruns on another backend
    if _needs_scaling(ex, ew, spec.dtype):
        x, w, bias = scaled(x, ex), scaled(w, ew), scaled(bias, ex + ew)
        U = transform_weights(w, t)
    else:
        ex = ew = 0
    m, a2, G = t.m, t.alpha**2, spec.groups
    Og, Cg = spec.O // G, spec.C // G
    if spec.padding_mode == "zeros":  # padded on the fly
        src, top, left = np.ascontiguousarray(x), spec.padding[0], spec.padding[2]
    else:
        src, top, left = np.ascontiguousarray(pad_input(x, spec)), 0, 0
    U = U.reshape(a2, G, Og, Cg)
    b = np.empty(0, spec.dtype) if bias is None else np.ascontiguousarray(bias)
    BT, AT = t.in_dtype("BT", spec.dtype), t.in_dtype("AT", spec.dtype)
    tw = -(-spec.OW // m)
    images, rows = _blocks(spec, t)
    with _one_blas_thread():
        for n in images:
            for r in rows:
                nb, nr = n.stop - n.start, r.stop - r.start
                V = np.empty((a2, spec.C, nb * nr * tw), dtype=spec.dtype)
                k.input_transform(src, BT, top, left, n.start, nb, r.start, nr, tw, V)
                V = V.reshape(a2, G, Cg, -1)
                ob = _channel_chunk(Og, a2 * V.shape[-1] * y.itemsize, V.shape[-1])
                k.multiply_and_output(U, V, AT, b, ob, n.start, nb, r.start, nr, tw, y)
    return unscale(y, ex + ew)


def _needs_scaling(ex: int, ew: int, dtype) -> bool:
    """Whether ``x`` and ``w`` with these max exponents must be scaled for the transforms
    (``_range_scaling.unit_exponents``'s rule, from exponents already known)."""
    limit = SAFE_EXPONENT[str(np.dtype(dtype))]
    return max(abs(ex), abs(ew), abs(ex + ew)) > limit


def _block_steps(spec, t: WinogradTransform) -> tuple[int, int, int, int]:
    """(images per block, tile rows per block, tile rows, tile columns): blocks of about
    :data:`_BLOCK_TILES` tiles (whole images when they are smaller, else rows of one image)."""
    th, tw = -(-spec.OH // t.m), -(-spec.OW // t.m)
    if th * tw >= _BLOCK_TILES:
        return 1, -(-_BLOCK_TILES // tw), th, tw
    return -(-_BLOCK_TILES // (th * tw)), th, th, tw


def _blocks(spec, t: WinogradTransform):
    """Image slices and tile-row slices to work through (see :func:`_block_steps`), the GEMMs' width."""
    nstep, rstep, th, tw = _block_steps(spec, t)
    return ([slice(n, min(n + nstep, spec.N)) for n in range(0, spec.N, nstep)],
            [slice(r, min(r + rstep, th)) for r in range(0, th, rstep)])


def _channel_chunk(Og: int, bytes_per_channel: int, tiles: int = 0) -> int:
    """Output channels per job of ``multiply_and_output``: at most :data:`_CHUNK_CHANNELS`, and
    each job's products (``bytes_per_channel`` a channel) within :data:`_PRODUCT_BYTES`; for a block
    of at least :data:`_WIDE_TILES` ``tiles``, :data:`_WIDE_CHUNK_CHANNELS` and :data:`_WIDE_PRODUCT_BYTES`.

    Independent of the thread count: a GEMM's rounding may depend on its size, and the results
    must not depend on the number of threads.
    """
    half = max(8, -(-Og // 2))
    channels, products = _chunk_caps(tiles)
    return max(1, min(Og, channels, half, products // bytes_per_channel))


def _chunk_caps(tiles: int) -> tuple[int, int]:
    """(channels, product bytes) a job may take in a block of ``tiles`` tiles (:func:`_channel_chunk`)."""
    if tiles >= _WIDE_TILES:
        return _WIDE_CHUNK_CHANNELS, max(_PRODUCT_BYTES, _WIDE_PRODUCT_BYTES)
    return _CHUNK_CHANNELS, _PRODUCT_BYTES


def _one_blas_thread():
    """BLAS limited to one thread for the duration: numba's threads run the GEMMs in parallel."""
    return blas_pools().limit(limits=1)


def transform_weights(w, t: WinogradTransform) -> np.ndarray:
    """``U = G g G^T`` for every filter of ``w`` (O, Cg, 3, 3): (alpha**2, O, Cg)."""
    U = np.empty((t.alpha**2,) + w.shape[:2], dtype=w.dtype)
    kernels().weight_transform(np.ascontiguousarray(w), t.in_dtype("G", w.dtype), U)
    return U


class _WeightCache:
    """Transformed weights by content: inference calls with the same weights transform them once.

    The key holds a 64-bit digest of the weights' bytes (``_winograd_kernels.fingerprint``, over
    8-byte words where the weights allow, else 4-byte ones), so weights changed in place, or
    new arrays with other values, miss; two different weight arrays collide with probability
    about 2**-64. An entry also holds the weights' largest exponent (for the range check, which
    then needs no pass over the weights). Entries are read-only; the least recently used go
    first when :data:`WEIGHT_CACHE_BYTES` would be exceeded.

    Every call reads its weights once (the digest): the weights may be a read-only view of an
    array the caller changes in place between calls, so neither the array object nor its
    address says that the values are the same.
    """

    def __init__(self):
        self._entries: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, w, t: WinogradTransform) -> tuple[np.ndarray, int, bool]:
        """``(U, e, finite)``: the transform of ``w`` under ``t``, ``max_exponent(w)`` and whether every
        value of ``w`` is finite."""
        limit = WEIGHT_CACHE_BYTES
        if limit <= 0:
            return (transform_weights(w, t), *exponent_and_finite(w))
        w = np.ascontiguousarray(w)
        key = (*self._digest(w), t.m)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry
            self.misses += 1
        U = transform_weights(w, t)
        U.flags.writeable = False
        entry = (U, *exponent_and_finite(w))
        if U.nbytes <= limit:
            with self._lock:
                self._entries[key] = entry
                total = sum(v[0].nbytes for v in self._entries.values())
                while total > limit:
                    total -= self._entries.popitem(last=False)[1][0].nbytes
        return entry

    @staticmethod
    def _digest(w) -> tuple:
        """What identifies ``w``'s values (C-contiguous): shape, dtype and a digest of its bytes."""
        flat = w.reshape(-1)
        if w.nbytes % 8 == 0 and w.ctypes.data % 8 == 0:  # 8-byte words: half float32's hashing work
            words = flat.view(np.uint64)
        else:
            words = flat.view(np.uint32 if w.nbytes % 4 == 0 else np.uint8)
        return (w.shape, w.dtype.str, words.dtype.str, int(kernels().fingerprint(words)))

    def forget(self, w) -> None:
        """Drop the entries of weights with ``w``'s values, under every transform (one digest)."""
        digest = self._digest(np.ascontiguousarray(w))
        with self._lock:
            for m in TRANSFORMS:
                self._entries.pop((*digest, m), None)

    def __len__(self) -> int:
        return len(self._entries)


WEIGHT_CACHE = _WeightCache()


def release(op, args) -> None:
    """``Backend.release``: forget the transformed weights of a call's weights."""
    if op == "conv2d" and WEIGHT_CACHE_BYTES > 0:
        WEIGHT_CACHE.forget(args[1])


def transformed_weights(w, t: WinogradTransform) -> np.ndarray:
    """``U`` for ``w`` under transform ``t``, from :data:`WEIGHT_CACHE` when it holds them."""
    return WEIGHT_CACHE.get(w, t)[0]


def limits(op, spec) -> str | None:
    """The calls this backend refuses beyond its features: anything but 3x3, stride 1, dilation 1."""
    return unsupported_reason(spec) if op == "conv2d" else None


def workspace_bytes(op, spec) -> int:
    """Memory beyond input and output: transformed weights, one block's tiles, products per job."""
    if op != "conv2d" or unsupported_reason(spec) or 0 in spec.out_shape:
        return 0
    t = TRANSFORMS[choose_tile(spec)]
    nstep, rstep, th, tw = _block_steps(spec, t)  # sizes only: no list of blocks for a huge call
    tiles = min(nstep, spec.N) * min(rstep, th) * tw
    item = np.dtype(spec.dtype).itemsize
    return t.alpha**2 * (spec.O * spec.C // spec.groups + spec.C * tiles) * item + 8 * _chunk_caps(tiles)[1]


def winograd_bound(spec, A: np.ndarray) -> np.ndarray:
    """Bound for Winograd F(m x m, 3x3): the direct bound, amplified by the transforms.

    The tile size ``m`` is the one :func:`choose_tile` picks for ``spec``. The transforms mix
    every input of an ``(m+2) x (m+2)`` tile with every tap, with coefficients whose absolute
    sums make the magnitudes behind one output ``growth`` times larger than direct summation's
    (7.1 for F(2x2), 256 for F(4x4); ``WinogradTransform.growth``); those products belong to
    outputs at most ``m + 1`` away, so ``A`` is taken as its maximum over that neighbourhood.
    """
    from scipy.ndimage import maximum_filter

    t = TRANSFORMS[choose_tile(spec)]
    reach = 2 * t.m + 3
    size = (1,) * (A.ndim - 2) + (reach, reach)  # over (H, W) only, batched or not
    A_near = maximum_filter(A, size=size, mode="constant", cval=0.0) if A.size else A
    return t.growth * direct_bound(spec, A_near)


#: Registered by name, so a plug-in with the same arithmetic can declare ``error_model="winograd"``.
ERROR_MODEL = register_error_model(ErrorModel("winograd", winograd_bound))


def cost_features(op, spec) -> dict[str, float] | None:
    """Work for ``auto``: the element-wise stage's GEMMs (alpha**2 per group), the transforms,
    the weight transform and the per-group GEMM calls; None outside Winograd's limits."""
    if op != "conv2d" or unsupported_reason(spec):
        return None
    m = choose_tile(spec)
    a2 = (m + 2) ** 2
    tiles = spec.N * -(-spec.OH // m) * -(-spec.OW // m)
    G = spec.groups
    Og, Cg = spec.O // G, spec.C // G
    gemm = tiles * a2 * spec.O * Cg
    thin = Og < 8 or Cg < 8
    return {
        "call": 1.0,
        "macs": 0.0 if thin else float(gemm),
        "thin_macs": float(gemm) if thin else 0.0,
        "transforms": float(tiles * a2 * (a2 * spec.C + m * m * spec.O)),
        "weights": float(a2 * 9 * spec.O * Cg),
        "groups": float(G * a2),
    }


COST = CostModel(cost_features, {"groups": 4.74e-08, "macs": 4.06e-11, "thin_macs": 1.08e-09,
                                 "transforms": 7.75e-11, "weights": 1.08e-10}, source="convbench calibrate --threads 1 (non-negative least squares on relative error) from convbench bench --suite resnet50,vgg16,mobilenetv2,large_kernels --batch 1 --threads 1 on the project machine (2-core AMD Zen 5 VM, OpenBLAS with the OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE overrides, numpy 2.4, numba 0.68, torch 2.13 CPU), 2026-11-25: median fit error 1.13x (im2col) to 1.46x (fft)")

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
    checks_finite=True,  # its range check reads every input value: auto needs no scan of its own
    error_model=ERROR_MODEL,
    probe=probe,
    workspace_bytes=workspace_bytes,
    limits=limits,
    release=release,
    auto_rank=40,
    cost=COST,
    description="Winograd F(2x2,3x3) / F(4x4,3x3) (F(6x6,3x3) forced), batched GEMMs over transform positions",
)
