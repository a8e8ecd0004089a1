"""Speed of the NumPy backends (im2col, fft, winograd) against torch, in one process.

Run:  .venv/bin/python benchmarks/measure_numpy_backends.py [--threads 2] [--repeat 5]
      [--backends im2col,fft,winograd] [--layers resnet50,vgg16,large_kernel] [--vs im2col]
      .venv/bin/python benchmarks/measure_numpy_backends.py --accuracy   (errors, not speed)

``resnet50`` and ``vgg16`` are every 3x3 stride-1 layer and every 1x1 layer of those suites
(``harness/suites``) at batch 1 and 8 — where the three compete; ``large_kernel`` is a fixed
set of 15x15 to 31x31 layers. ``--vs B`` adds each backend's speed-up over ``B`` per layer and
geometric means per set. The pseudo-backend ``winograd:nocache`` is ``winograd`` with its
transformed-weights cache off (the weights transformed in every call, as in training).

Threads are pinned (threadpoolctl for BLAS, which ``fft`` also follows for its transforms,
``torch.set_num_threads`` and ``numba.set_num_threads``) so every backend gets the same cores.
Each figure is the minimum over ``--repeat`` rounds after one warm-up; a round times every
backend once, so a burst of load from other processes on a shared machine hits all of them
alike. GFLOP/s counts 2 * MACs of the direct formula, padding taps included, bias ignored.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

import harness
from harness import suites

#: batch sizes of the suite-derived sets
BATCHES = (1, 8)


def suite_layers(name: str) -> list[tuple]:
    """(label, N, C, H, W, O, K, padding) of a suite's 3x3 stride-1 and 1x1 layers at :data:`BATCHES`."""
    rows = []
    for batch in BATCHES:
        for label, spec in suites.load(name, batch=batch):
            square = spec.KH == spec.KW and spec.dilation == (1, 1) and spec.groups == 1
            if square and ((spec.KH == 3 and spec.stride == (1, 1)) or (spec.KH == 1 and spec.stride == (1, 1))):
                rows.append((f"{label.split('.', 1)[1]}.b{batch}", batch, spec.C, spec.H, spec.W, spec.O,
                             spec.KH, spec.padding[0]))
    return rows


# (label, N, C, H, W, O, K, padding); stride 1 throughout (the layers where all three compete)
LAYERS = {
    "resnet50": lambda: suite_layers("resnet50"),
    "vgg16": lambda: suite_layers("vgg16"),
    "large_kernel": lambda: [
        ("k15.c32", 1, 32, 64, 64, 32, 15, 7),
        ("k15.c64", 1, 64, 64, 64, 64, 15, 7),
        ("k21.c64", 1, 64, 64, 64, 64, 21, 10),
        ("k31.c32", 1, 32, 64, 64, 32, 31, 15),
        ("k31.c64", 1, 64, 64, 64, 64, 31, 15),
        ("k31.c64.b4", 4, 64, 64, 64, 64, 31, 15),
    ],
}


def best_time(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def best_times(fns: dict, repeat: int, clock=time.perf_counter, runs: int = 3, settle_s: float = 0.1) -> dict:
    """Min time of each callable over ``repeat`` rounds of ``runs`` timed calls each.

    Each round visits every callable in turn, so a burst of load from other processes hits all
    alike; within a round a callable first runs untimed for ``settle_s`` seconds and then
    ``runs`` timed calls in a row, because the thread pool of the one before it (OpenBLAS,
    torch's OpenMP, numba's) keeps spinning for a while after its last call and slows whatever
    runs next (measured: winograd 1.4 ms alone, 2.5 ms right after an im2col call, on ResNet-50
    res4 3x3 at 2 threads; OpenBLAS's threads spin up to 2**28 cycles).
    """
    best = {}
    for name, fn in fns.items():
        try:
            fn()  # warm-up, and the moment to find out it is unsupported
            best[name] = float("inf")
        except NotImplementedError:
            best[name] = None
    for _ in range(repeat):
        for name, fn in fns.items():
            if best[name] is not None:
                settled = clock() + settle_s
                while clock() < settled:
                    fn()
                for _ in range(runs):
                    t0 = clock()
                    fn()
                    best[name] = min(best[name], clock() - t0)
    return best


def sgemm_rate(M: int, N: int, K: int, repeat: int) -> float:
    """GFLOP/s of a bare float32 (M, K) @ (K, N): the ceiling a 1x1 layer can reach."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((M, K), dtype=np.float32)
    b = rng.standard_normal((K, N), dtype=np.float32)
    return 2 * M * N * K / best_time(lambda: a @ b, repeat) / 1e9


def accuracy(seeds: int = 5) -> None:
    """Max error in units of each backend's bound, and max |error| / max A, over seeded data."""
    from harness.ops import tolerance
    from impls import winograd

    torch = harness.get_backend("torch").ops["conv2d"]
    rows = [("fft", None, k) for k in (3, 7, 15, 31)] + [("winograd", m, 3) for m in (2, 4, 6)]
    rows += [("im2col", None, 3)]
    print("backend     tile kernel dtype     max units   max |err| / max A   (C=O=16, 32x32, N=2)")
    for name, tile, K in rows:
        winograd.TILE = tile
        for dtype in ("float32", "float64"):
            units, rel = 0.0, 0.0
            for seed in range(seeds):
                rng = np.random.default_rng(seed)
                x = rng.standard_normal((2, 16, 32, 32)).astype(dtype)
                w = rng.standard_normal((16, 16, K, K)).astype(dtype)
                spec = harness.Conv2dSpec.from_shapes(x.shape, w.shape, padding=K // 2, dtype=dtype)
                s64 = spec.with_(dtype="float64")
                ref = lambda a, b, c: torch(a, b, c, s64)  # noqa: E731
                y = harness.get_backend(name).ops["conv2d"](x, w, None, spec)
                expected = ref(x.astype(np.float64), w.astype(np.float64), None)
                A = tolerance.magnitude(ref, x, w, None)
                model = harness.get_backend(name).error_model
                units = max(units, tolerance.compare(y, expected, tolerance.error_bound(model, spec, A)).max_units)
                rel = max(rel, float(np.abs(y - expected).max() / A.max()))
            print(f"{name:10s} {tile or '-':>5} {K:4d}x{K:<2d} {dtype:8s} {units:10.4f} {rel:14.3g}")
    winograd.TILE = None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backends", default="im2col,fft,winograd")
    parser.add_argument("--layers", default="resnet50,vgg16,large_kernel")
    parser.add_argument("--vs", default=None, metavar="BACKEND", help="also print speed-ups over this backend")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--accuracy", action="store_true", help="measure errors instead of speed")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: process CPU time, steadier on a busy machine (use with --threads 1)")
    args = parser.parse_args(argv)
    if args.accuracy:
        accuracy()
        return 0

    from harness.support.timing import pinned_threads

    names = ["torch"] + [b for b in args.backends.split(",") if b]
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    rng = np.random.default_rng(0)
    print(f"threads={args.threads} repeat={args.repeat} dtype={args.dtype} clock={args.clock}")
    header = f"{'layer':32s}" + "".join(f"{n:>20s}" for n in names)
    if args.vs:
        header += "".join(f"{n + '/' + args.vs:>22s}" for n in names if n not in ("torch", args.vs))
    with pinned_threads(args.threads):
        for suite in args.layers.split(","):
            print(f"\n[{suite}]  GFLOP/s (ratio to torch)")
            print(header)
            speedups = {}  # (backend, baseline) -> per-layer ratios
            for label, N, C, H, W, O, K, pad in LAYERS[suite]():
                x = rng.standard_normal((N, C, H, W)).astype(args.dtype)
                w = rng.standard_normal((O, C, K, K)).astype(args.dtype)
                spec = harness.Conv2dSpec.from_shapes(x.shape, w.shape, padding=pad, dtype=args.dtype)
                flops = 2 * spec.N * spec.O * spec.OH * spec.OW * spec.n_acc
                row = f"{suite[:6]}.{label:25s}"
                times = best_times({n: _call(n, x, w, pad) for n in names}, args.repeat, clock)
                for name in names:
                    t = times[name]
                    row += f"{'unsupported':>20s}" if t is None else f"{flops / t / 1e9:12.1f} ({times['torch'] / t:4.2f}x)"
                    if t is not None:
                        speedups.setdefault((name, "torch"), []).append(times["torch"] / t)
                for name in names:
                    if args.vs and name not in ("torch", args.vs):
                        t, base = times[name], times[args.vs]
                        row += f"{'-':>22s}" if t is None or base is None else f"{base / t:21.2f}x"
                        if t is not None and base is not None:
                            speedups.setdefault((name, args.vs), []).append(base / t)
                if K == 1 and pad == 0:  # im2col runs one (O x C) @ (C x H*W) GEMM per image
                    row += f"   sgemm {sgemm_rate(O, H * W, C, args.repeat):.1f}"
                print(row, flush=True)
            for (name, base), ratios in speedups.items():
                if name != base:
                    geomean = math.exp(sum(map(math.log, ratios)) / len(ratios))
                    print(f"  geomean {name}/{base}: {geomean:.2f}x over {len(ratios)} layers "
                          f"(min {min(ratios):.2f}x, max {max(ratios):.2f}x)")
    return 0


def _call(name: str, x, w, pad):
    """A no-argument call of backend ``name`` (``winograd:nocache``: its weight cache off)."""
    if name == "winograd:nocache":
        from impls import winograd

        def uncached():
            saved, winograd.WEIGHT_CACHE_BYTES = winograd.WEIGHT_CACHE_BYTES, 0
            try:
                return harness.conv2d(x, w, padding=pad, backend="winograd")
            finally:
                winograd.WEIGHT_CACHE_BYTES = saved

        return uncached
    return lambda: harness.conv2d(x, w, padding=pad, backend=name)


if __name__ == "__main__":
    raise SystemExit(main())
