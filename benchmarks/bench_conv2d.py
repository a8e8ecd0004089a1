"""asv benchmarks of conv2d: every registered backend on every layer of the chosen suites.

Parameters come from the registry and the suite files, so a new backend or suite row is
benchmarked without editing this file. One layer per parameter value (labels such as
``resnet50.res3_3x3``), so a regression points at the layer that regressed.

Environment variables choose the grid (defaults keep a full run to a reasonable time):

* ``CONVBENCH_ASV_SUITES``  comma-separated suites (default ``resnet50,mobilenetv2``)
* ``CONVBENCH_ASV_BATCHES`` comma-separated batch sizes (default ``1``)
* ``CONVBENCH_ASV_DTYPES``  comma-separated dtypes (default ``float32``)
* ``CONVBENCH_ASV_THREADS`` threads for every backend (default: every usable CPU)
* ``CONVBENCH_ASV_LIMIT``   skip cases estimated above this many seconds per call (default 2)

Unavailable backends, unsupported features or ops, and cases over the limit are skipped
by ``setup`` raising ``NotImplementedError`` with the reason. Timing rules are
:mod:`harness.timing`'s, shared with ``convbench bench``.
"""

import os

from harness import metrics, suites
from harness.bench import op_spec, prepare
from harness.registry import backends
from harness import timing  # a module: asv would take a bare `time_call` for a benchmark


def _env_list(name, default):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _threads():
    value = os.environ.get("CONVBENCH_ASV_THREADS")
    return int(value) if value else len(os.sched_getaffinity(0))


SUITES = _env_list("CONVBENCH_ASV_SUITES", "resnet50,mobilenetv2")
LAYERS = {layer.label: layer for name in SUITES for layer in suites.layers(name, batch=1)}
BACKENDS = [b.name for b in backends()]
BATCHES = [int(b) for b in _env_list("CONVBENCH_ASV_BATCHES", "1")]
DTYPES = _env_list("CONVBENCH_ASV_DTYPES", "float32")
LIMIT_S = float(os.environ.get("CONVBENCH_ASV_LIMIT", "2"))


class Conv2d:
    params = [BACKENDS, list(LAYERS), BATCHES, DTYPES]
    param_names = ["backend", "layer", "batch", "dtype"]
    timeout = 300
    # the pinned thread count is part of the benchmark's identity: record it per run
    threads = _threads()

    def setup(self, backend, layer, batch, dtype):
        timing.set_threads(self.threads)
        entry = LAYERS[layer]
        self.spec = entry.spec.with_(N=batch, dtype=dtype)
        # NotImplementedError (harness.Unsupported) with the reason = asv's "skipped"
        self.case = prepare(backend, entry.op, self.spec, seed=0, limit_s=LIMIT_S)
        # FLOPs of the op the row names (a transposed conv's are not its Conv2dSpec fields')
        self.op, self.op_spec = entry.op, op_spec(entry.op, self.spec)
        self.flops = metrics.analyse_op(self.op, self.op_spec)["flops_dense"]
        self.case.fn(*self.case.args)  # warm-up: JIT compilation is never timed
        self.case.sync()

    def time_conv2d(self, backend, layer, batch, dtype):
        self.case.fn(*self.case.args)
        self.case.sync()

    def peakmem_conv2d(self, backend, layer, batch, dtype):
        self.case.fn(*self.case.args)

    def track_gflops(self, backend, layer, batch, dtype):
        measured = timing.time_call(self.case.fn, self.case.args, sync=self.case.sync, budget_s=0.2, min_runs=3)
        return self.flops / measured.min / 1e9

    track_gflops.unit = "GFLOP/s"

    def track_cpr(self, backend, layer, batch, dtype):
        counts = metrics.analyse_op(self.op, self.op_spec)
        return counts["macs"] / counts["params"]

    track_cpr.unit = "MACs/param"
