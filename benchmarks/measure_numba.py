"""Speed of ``numba_cpu`` against torch on ResNet-50 and MobileNetV2 depthwise layers, in one process.

Run:  .venv/bin/python benchmarks/measure_numba.py [--threads 2] [--repeat 7] [--batch 1]
      [--suites resnet50,mobilenetv2_dw] [--dtype float32] [--ptx]

Threads are pinned equally (``harness.support.timing.pinned_threads``: BLAS, torch and numba). Compilation is measured first and separately (``warmup()``); each
figure is then the minimum over 2 rounds of ``--repeat`` consecutive timed calls of the backends'
``conv2d`` ops, each round after one untimed call (the machine is shared, so the minimum is the
least disturbed run). Both ops take and return NumPy arrays. GFLOP/s counts 2 * MACs of the direct formula (padding taps included,
bias ignored). Ratios > 1 mean numba_cpu is faster.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from harness.ops.conv_spec import Conv2dSpec
from harness.backend.registry import get_backend
from harness.support.timing import pinned_threads

# (label, C, H, O, K, stride, padding) — square images; groups == C for the depthwise suite
LAYERS = {
    "resnet50": [
        ("conv1.7x7s2", 3, 224, 64, 7, 2, 3),
        ("res2.1x1.64-64", 64, 56, 64, 1, 1, 0),
        ("res2.3x3.64", 64, 56, 64, 3, 1, 1),
        ("res2.1x1.64-256", 64, 56, 256, 1, 1, 0),
        ("res2.1x1.256-64", 256, 56, 64, 1, 1, 0),
        ("res3.1x1.256-128", 256, 56, 128, 1, 1, 0),
        ("res3.3x3s2.128", 128, 56, 128, 3, 2, 1),
        ("res3.3x3.128", 128, 28, 128, 3, 1, 1),
        ("res3.1x1.128-512", 128, 28, 512, 1, 1, 0),
        ("res3.down.1x1s2.256-512", 256, 56, 512, 1, 2, 0),
        ("res4.3x3s2.256", 256, 28, 256, 3, 2, 1),
        ("res4.3x3.256", 256, 14, 256, 3, 1, 1),
        ("res4.1x1.1024-256", 1024, 14, 256, 1, 1, 0),
        ("res4.1x1.256-1024", 256, 14, 1024, 1, 1, 0),
        ("res5.3x3s2.512", 512, 14, 512, 3, 2, 1),
        ("res5.3x3.512", 512, 7, 512, 3, 1, 1),
        ("res5.1x1.2048-512", 2048, 7, 512, 1, 1, 0),
        ("res5.1x1.512-2048", 512, 7, 2048, 1, 1, 0),
    ],
    "mobilenetv2_dw": [  # every depthwise row of harness/suites/mobilenetv2.csv
        ("dw32.112", 32, 112, 32, 3, 1, 1),
        ("dw96.112s2", 96, 112, 96, 3, 2, 1),
        ("dw144.56", 144, 56, 144, 3, 1, 1),
        ("dw144.56s2", 144, 56, 144, 3, 2, 1),
        ("dw192.28", 192, 28, 192, 3, 1, 1),
        ("dw192.28s2", 192, 28, 192, 3, 2, 1),
        ("dw384.14", 384, 14, 384, 3, 1, 1),
        ("dw576.14", 576, 14, 576, 3, 1, 1),
        ("dw576.14s2", 576, 14, 576, 3, 2, 1),
        ("dw960.7", 960, 7, 960, 3, 1, 1),
    ],
}


def best_times(fns, args, repeat: int, rounds: int = 2) -> list[float]:
    """Minimum seconds of each function: ``rounds`` rounds, each timing every function
    ``repeat`` times in a row after one untimed call.

    Calls are grouped per function, not interleaved: numba (libgomp) and torch each keep
    their OpenMP threads spinning for a while after a parallel region, so alternating single
    calls makes each library's idle spinners compete with the other's workers.
    """
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for k, fn in enumerate(fns):
            fn(*args)  # untimed: first-touch allocations, torch's primitive cache, other spinners
            for _ in range(repeat):
                start = time.perf_counter()
                fn(*args)
                best[k] = min(best[k], time.perf_counter() - start)
    return best


def measure(suite: str, batch: int, dtype: str, repeat: int, backends=("numba_cpu", "torch")):
    rng = np.random.default_rng(0)
    rows = []
    for label, C, H, O, K, stride, pad in LAYERS[suite]:
        groups = C if suite == "mobilenetv2_dw" else 1
        spec = Conv2dSpec.from_shapes((batch, C, H, H), (O, C // groups, K, K), stride=stride,
                                      padding=pad, groups=groups, dtype=dtype)
        x = rng.standard_normal(spec.x_shape).astype(dtype)
        w = rng.standard_normal(spec.w_shape).astype(dtype)
        gflop = 2 * math.prod(spec.out_shape) * spec.n_acc / 1e9
        row = {"layer": label}
        fns = [get_backend(name).ops["conv2d"] for name in backends]
        for name, seconds in zip(backends, best_times(fns, (x, w, None, spec), repeat)):
            row[name] = gflop / seconds
        rows.append(row)
        print(f"{suite:15s} {label:26s} " + "  ".join(f"{n} {row[n]:7.1f}" for n in backends)
              + f"  ratio {row[backends[0]] / row[backends[1]]:5.2f}", flush=True)
    geo = math.exp(sum(math.log(r[backends[0]] / r[backends[1]]) for r in rows) / len(rows))
    print(f"{suite:15s} geometric-mean ratio {backends[0]}/{backends[1]}: {geo:.3f}\n", flush=True)
    return rows, geo


def ptx_report() -> None:
    """numba_cuda's kernels compiled for sm_90 (no GPU needed): shared memory, registers, spills."""
    from impls import _numba_cuda_kernels as k

    for dtype in ("float32", "float64"):
        start = time.perf_counter()
        ptx = k.compile_ptx(dtype, cc=(9, 0))
        seconds = time.perf_counter() - start
        usage = k.ptxas_usage(ptx) or "ptxas not installed"
        print(f"numba_cuda {dtype} sm_90: compile_ptx {seconds:.2f} s, "
              f"shared {k.ptx_shared_bytes(ptx)} B, ptxas: {usage}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--suites", default="resnet50,mobilenetv2_dw")
    parser.add_argument("--ptx", action="store_true", help="also report numba_cuda's sm_90 PTX figures")
    args = parser.parse_args(argv)
    if args.ptx:
        ptx_report()

    from impls import numba_cpu

    start = time.perf_counter()
    seconds = numba_cpu.warmup()
    print(f"numba_cpu warmup (compile or load from cache: 4 kernels x 2 dtypes): {seconds:.2f} s "
          f"(import + warmup {time.perf_counter() - start:.2f} s)")
    with pinned_threads(args.threads) as counts:
        print(f"threads {counts}, batch {args.batch}, {args.dtype}, min of {args.repeat}; GFLOP/s")
        for suite in args.suites.split(","):
            measure(suite, args.batch, args.dtype, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
