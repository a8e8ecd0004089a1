"""Speed of the NumPy backends (im2col, fft, winograd) against torch, in one process.

Run:  .venv/bin/python benchmarks/measure_numpy_backends.py [--threads 2] [--repeat 5]
      [--backends im2col,fft,winograd] [--layers resnet50,vgg16,large_kernel]
      .venv/bin/python benchmarks/measure_numpy_backends.py --accuracy   (errors, not speed)

Threads are pinned (threadpoolctl for BLAS, which ``fft`` also follows for its transforms,
and ``torch.set_num_threads``) so every backend gets the same cores. Each figure is the minimum
over ``--repeat`` rounds after one warm-up; a round times every backend once, so a burst of
load from other processes on a shared machine hits all of them alike.
GFLOP/s counts 2 * MACs of the direct formula, padding taps included, bias ignored.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import harness

# (label, N, C, H, W, O, K, padding); stride 1 throughout (the layers where all three compete)
LAYERS = {
    "resnet50": [
        ("res2.3x3.b1", 1, 64, 56, 56, 64, 3, 1),
        ("res2.3x3.b8", 8, 64, 56, 56, 64, 3, 1),
        ("res3.3x3.b1", 1, 128, 28, 28, 128, 3, 1),
        ("res3.3x3.b8", 8, 128, 28, 28, 128, 3, 1),
        ("res4.3x3.b1", 1, 256, 14, 14, 256, 3, 1),
        ("res4.3x3.b8", 8, 256, 14, 14, 256, 3, 1),
        ("res5.3x3.b1", 1, 512, 7, 7, 512, 3, 1),
        ("res5.3x3.b8", 8, 512, 7, 7, 512, 3, 1),
        ("res2.1x1.64-256.b1", 1, 64, 56, 56, 256, 1, 0),
        ("res2.1x1.64-256.b8", 8, 64, 56, 56, 256, 1, 0),
        ("res4.1x1.1024-256.b1", 1, 1024, 14, 14, 256, 1, 0),
        ("res4.1x1.1024-256.b8", 8, 1024, 14, 14, 256, 1, 0),
    ],
    "vgg16": [
        ("conv1_2.b1", 1, 64, 224, 224, 64, 3, 1),
        ("conv3_2.b1", 1, 256, 56, 56, 256, 3, 1),
        ("conv4_2.b1", 1, 512, 28, 28, 512, 3, 1),
    ],
    "large_kernel": [
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


def best_times(fns: dict, repeat: int, clock=time.perf_counter) -> dict:
    """Min time of each callable, timed in interleaved rounds so that load bursts hit all alike."""
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
    from harness import tolerance
    from impls import winograd

    torch = harness.get_backend("torch").ops["conv2d"]
    rows = [("fft", None, k) for k in (3, 7, 15, 31)] + [("winograd", m, 3) for m in (2, 4)]
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
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--accuracy", action="store_true", help="measure errors instead of speed")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: process CPU time, steadier on a busy machine (use with --threads 1)")
    args = parser.parse_args(argv)
    if args.accuracy:
        accuracy()
        return 0

    from threadpoolctl import threadpool_limits

    from impls.torch import load_torch

    load_torch().set_num_threads(args.threads)
    names = ["torch"] + [b for b in args.backends.split(",") if b]
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    rng = np.random.default_rng(0)
    print(f"threads={args.threads} repeat={args.repeat} dtype={args.dtype} clock={args.clock}")
    header = f"{'layer':28s}" + "".join(f"{n:>20s}" for n in names)
    with threadpool_limits(args.threads):
        for suite in args.layers.split(","):
            print(f"\n[{suite}]  GFLOP/s (ratio to torch)")
            print(header)
            for label, N, C, H, W, O, K, pad in LAYERS[suite]:
                x = rng.standard_normal((N, C, H, W)).astype(args.dtype)
                w = rng.standard_normal((O, C, K, K)).astype(args.dtype)
                spec = harness.Conv2dSpec.from_shapes(x.shape, w.shape, padding=pad, dtype=args.dtype)
                flops = 2 * spec.N * spec.O * spec.OH * spec.OW * spec.n_acc
                row = f"{suite[:6]}.{label:21s}"
                fns = {n: (lambda n=n: harness.conv2d(x, w, padding=pad, backend=n)) for n in names}
                times = best_times(fns, args.repeat, clock)
                base = times["torch"]
                for name in names:
                    t = times[name]
                    row += f"{'unsupported':>20s}" if t is None else f"{flops / t / 1e9:12.1f} ({base / t:4.2f}x)"
                if K == 1:  # im2col runs one (O x C) @ (C x H*W) GEMM per image
                    row += f"   sgemm {sgemm_rate(O, H * W, C, args.repeat):.1f}"
                print(row, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
