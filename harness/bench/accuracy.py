"""How close each transform backend comes to its error bound: ``python -m harness.bench.accuracy``.

For FFT (3x3 to 31x31 kernels), Winograd (each tile size) and im2col, in float32 and float64:
the largest error in units of the backend's own bound (``harness.ops.tolerance``; 1 fails) and
the largest |error| / max A over seeded standard normal data (C = O = 16, 32x32 images, batch 2,
'same' padding). The error models' docstrings quote these figures; speed is measured by
``python -m harness.bench.groups`` (paired rounds against torch) and ``convbench bench``.
"""

from __future__ import annotations

import argparse
import inspect

import numpy as np

from harness.backend.registry import get_backend, with_role
from harness.ops import tolerance
from harness.ops.conv_spec import Conv2dSpec


def accuracy(seeds: int = 5) -> None:
    """Max error in units of each backend's bound, and max |error| / max A, over seeded data."""
    # the tile is forced through the backend's own module (its TILE setting), found from its op
    winograd = inspect.getmodule(get_backend("winograd").ops["conv2d"])
    reference = get_backend(with_role("baseline")).ops["conv2d"]
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
                spec = Conv2dSpec.from_shapes(x.shape, w.shape, padding=K // 2, dtype=dtype)
                s64 = spec.with_(dtype="float64")
                ref = lambda a, b, c: reference(a, b, c, s64)  # noqa: E731
                y = get_backend(name).ops["conv2d"](x, w, None, spec)
                expected = ref(x.astype(np.float64), w.astype(np.float64), None)
                A = tolerance.magnitude(ref, x, w, None)
                model = get_backend(name).model
                units = max(units, tolerance.compare(y, expected, tolerance.error_bound(model, spec, A)).max_units)
                rel = max(rel, float(np.abs(y - expected).max() / A.max()))
            print(f"{name:10s} {tile or '-':>5} {K:4d}x{K:<2d} {dtype:8s} {units:10.4f} {rel:14.3g}")
    winograd.TILE = None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.bench.accuracy", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeded inputs per row (default 5)")
    accuracy(parser.parse_args(argv).seeds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
