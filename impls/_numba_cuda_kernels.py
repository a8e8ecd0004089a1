"""CUDA kernels of ``numba_cuda`` (imported lazily; importing this module imports ``numba.cuda``).

An implicit-GEMM direct convolution. For batch ``n`` and group ``g`` the output is the product

    y[n, g*Og + o, pix] = b[o] + sum_k  w[g*Og + o, k] * patch[k, pix]        k = (c, p, q)

where ``patch[k, (i, j)] = xpad[n, g*Cg + c, i*sh + p*dh, j*sw + q*dw]`` is never materialised:
each thread block owns one output tile of ``TILE_O`` channels x ``TILE_P`` output pixels, walks the
reduction in chunks of ``TILE_K`` and, per chunk, gathers the input patch and the weights into
shared memory (adjacent threads load adjacent pixels and adjacent ``k`` of one weight row, so
global loads are coalesced for stride 1), synchronises, and accumulates. Each of the 16 x 16
threads holds a 4 x 4 register tile whose rows and columns are spaced 16 apart, so a warp reads
16 consecutive shared-memory words (no bank conflicts) and broadcasts the weights.

The input arrives padded (the host applies every padding mode with ``harness.ops.padding.pad_input``),
so the kernel handles stride, dilation, groups and bias, and bounds-checks only the tile edges.
"""

import math
import os
import re
import shutil
import subprocess
import tempfile

from numba import cuda, float32, float64

TILE_O = 64  # output channels per block
TILE_P = 64  # output pixels per block
TILE_K = 16  # reduction items per shared-memory chunk
THREADS = (16, 16)  # (x: pixels, y: channels); each thread computes 4 x 4 outputs
_MICRO = 4

NUMBA_DTYPES = {"float32": float32, "float64": float64}


def _kernel_source(dtype):
    """The Python kernel for one element type (closure constants fix the shared-array types)."""

    def conv2d_kernel(x, w, b, y, cg, og, kh, kw, sh, sw, dh, dw, ow, n_pix, n_red):
        """x: (N, C, Hp, Wp) padded input; w: (O, Cg*KH*KW); b: (O,); y: (N, O, OH*OW)."""
        patch = cuda.shared.array((TILE_K, TILE_P), dtype)
        wtile = cuda.shared.array((TILE_K, TILE_O), dtype)
        acc = cuda.local.array((_MICRO, _MICRO), dtype)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        tid = ty * THREADS[0] + tx
        pix0 = cuda.blockIdx.x * TILE_P
        o0 = cuda.blockIdx.y * TILE_O
        n = cuda.blockIdx.z // (y.shape[1] // og)
        g = cuda.blockIdx.z % (y.shape[1] // og)
        for a in range(_MICRO):
            for c in range(_MICRO):
                acc[a, c] = 0
        khw = kh * kw
        for k0 in range(0, n_red, TILE_K):
            # input patch: 256 threads fill TILE_K x TILE_P; consecutive threads, consecutive pixels
            for e in range(tid, TILE_K * TILE_P, THREADS[0] * THREADS[1]):
                kk = e // TILE_P
                pp = e % TILE_P
                k = k0 + kk
                pix = pix0 + pp
                v = 0.0
                if k < n_red and pix < n_pix:
                    c = k // khw
                    p = (k % khw) // kw
                    q = k % kw
                    i = pix // ow
                    j = pix % ow
                    v = x[n, g * cg + c, i * sh + p * dh, j * sw + q * dw]
                patch[kk, pp] = v
            # weights: consecutive threads read consecutive k of one weight row
            for e in range(tid, TILE_K * TILE_O, THREADS[0] * THREADS[1]):
                oo = e // TILE_K
                kk = e % TILE_K
                v = 0.0
                if k0 + kk < n_red and o0 + oo < og:
                    v = w[g * og + o0 + oo, k0 + kk]
                wtile[kk, oo] = v
            cuda.syncthreads()
            for kk in range(TILE_K):
                for a in range(_MICRO):
                    wv = wtile[kk, ty + THREADS[1] * a]
                    for c in range(_MICRO):
                        acc[a, c] += wv * patch[kk, tx + THREADS[0] * c]
            cuda.syncthreads()
        for a in range(_MICRO):
            o = o0 + ty + THREADS[1] * a
            if o < og:
                for c in range(_MICRO):
                    pix = pix0 + tx + THREADS[0] * c
                    if pix < n_pix:
                        y[n, g * og + o, pix] = acc[a, c] + b[g * og + o]

    return conv2d_kernel


def signature(dtype: str):
    """The one signature each kernel is compiled for (C-contiguous arrays, int64 sizes)."""
    from numba import types

    t = NUMBA_DTYPES[dtype]
    arr = lambda ndim: types.Array(t, ndim, "C")  # noqa: E731
    return (arr(4), arr(2), arr(1), arr(3)) + (types.int64,) * 11


_KERNELS = {}


def kernel(dtype: str):
    """The compiled (lazily, on first launch) kernel for ``dtype``."""
    if dtype not in _KERNELS:
        _KERNELS[dtype] = cuda.jit(_kernel_source(NUMBA_DTYPES[dtype]))
    return _KERNELS[dtype]


def grid(spec) -> tuple[int, int, int]:
    """Blocks: (output-pixel tiles, output-channel tiles, batch x groups)."""
    og = spec.O // spec.groups
    return (math.ceil(spec.OH * spec.OW / TILE_P), math.ceil(og / TILE_O), spec.N * spec.groups)


def compile_ptx(dtype: str, cc=(9, 0)) -> str:
    """PTX of the kernel for ``dtype`` and compute capability ``cc`` (needs NVVM, not a GPU)."""
    ptx, _ = cuda.compile_ptx(_kernel_source(NUMBA_DTYPES[dtype]), signature(dtype), cc=cc)
    return ptx


def ptx_shared_bytes(ptx: str) -> int:
    """Static shared memory declared in a PTX module, in bytes."""
    return sum(int(n) for n in re.findall(r"^(?:\.visible\s+)?\.shared\s.*\[(\d+)\];", ptx, re.M))


def ptxas_usage(ptx: str, arch: str = "sm_90"):
    """Registers, spills and shared memory from ``ptxas -v``; None when ptxas is not installed.

    NVVM from numba-cuda[cu13] may emit a newer PTX ISA version than the installed ptxas
    accepts; the kernel uses no newer instruction, so the version line is lowered to what
    ptxas supports (taken from its own error message).
    """
    ptxas = shutil.which("ptxas")
    if ptxas is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "k.ptx")
        for _ in range(2):
            with open(src, "w") as f:
                f.write(ptx)
            done = subprocess.run([ptxas, f"-arch={arch}", "-v", src, "-o", os.path.join(tmp, "k.cubin")],
                                  capture_output=True, text=True)
            supported = re.search(r"current version is '([\d.]+)'", done.stderr)
            if done.returncode == 0 or not supported:
                break
            ptx = re.sub(r"^\.version [\d.]+", f".version {supported.group(1)}", ptx, flags=re.M)
    if done.returncode != 0:
        raise RuntimeError(f"ptxas failed: {done.stderr.strip()}")
    info = done.stderr
    return {
        "registers": int(re.search(r"Used (\d+) registers", info).group(1)),
        "spill_stores": int(re.search(r"(\d+) bytes spill stores", info).group(1)),
        "spill_loads": int(re.search(r"(\d+) bytes spill loads", info).group(1)),
        "smem": int(m.group(1)) if (m := re.search(r"(\d+) bytes smem", info)) else 0,
    }
