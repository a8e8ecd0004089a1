"""numba_cuda's kernel time per layer on the GPU, hot and cold (L2 flushed), from CUDA events.

Run:  .venv/bin/python -m harness.bench.cuda_events [--suite smoke] [--batch 1] [--runs 20]

Each layer's operands are uploaded once; one untimed launch compiles the kernel; then ``--runs``
launches are timed with CUDA events after a sync (``impls/_numba_cuda_timing.py``), first hot
(operands left in L2 by the previous run), then cold (a copy of twice the L2 size between runs,
untimed). Prints the median and the min-max of each; GFLOP/s counts the dense formula.
"""

from __future__ import annotations

import argparse
import inspect

import numpy as np

from harness import suites
from harness.ops.table import conv_inputs, op_info
from harness.backend.registry import get_backend


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", default="smoke")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    reason = get_backend("numba_cuda").reason
    if reason:
        print(f"numba_cuda is unavailable: {reason}")
        return 2
    numba_cuda = inspect.getmodule(get_backend("numba_cuda").ops["conv2d"])  # the backend's module: time_kernel

    print(f"{'layer':<36} {'hot ms (min-max)':>26} {'cold ms (min-max)':>26} {'hot GF/s':>9}")
    for layer in suites.layers(args.suite, args.batch):
        if layer.op != "conv2d":
            continue
        x, w, b = conv_inputs(layer.spec, np.random.default_rng(0))
        figures = []
        for cold in (False, True):
            t = np.asarray(numba_cuda.time_kernel(x, w, b, layer.spec, runs=args.runs, cold=cold)) * 1e3
            figures.append((np.median(t), t.min(), t.max()))
        gflops = op_info("conv2d").counts(layer.spec)["flops_dense"] / (figures[0][0] / 1e3) / 1e9
        cells = [f"{m:9.4f} ({lo:.4f}-{hi:.4f})" for m, lo, hi in figures]
        print(f"{layer.label:<36} {cells[0]:>26} {cells[1]:>26} {gflops:9.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
