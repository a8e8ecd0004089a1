"""asv benchmarks of conv2d: every registered backend on every layer of the chosen suites.

Parameters come from the registry and the suite files, so a new backend or suite row is
benchmarked without editing this file. One layer per parameter value (labels such as
``resnet50.res3_3x3``), so a regression points at the layer that regressed.

Environment variables choose the grid (defaults keep a full run to a reasonable time):

* ``CONVBENCH_ASV_SUITES``  comma-separated suites, or ``all`` (default ``resnet50,mobilenetv2``)
* ``CONVBENCH_ASV_BATCHES`` comma-separated batch sizes (default ``1``)
* ``CONVBENCH_ASV_DTYPES``  comma-separated dtypes (default ``float32``)
* ``CONVBENCH_ASV_THREADS`` comma-separated thread counts for every backend (default: every
  usable CPU); a parameter, so the count is recorded with each result
* ``CONVBENCH_ASV_LIMIT``   skip cases estimated above this many seconds per call (default 2)

Four classes: ``Conv2d`` (``time_conv2d``, ``track_gflops``; setup warms the case up, so JIT
compilation is never timed), ``Conv2dMemory`` (``peakmem_conv2d``, the process's resident peak),
``Conv2dTracedMemory`` (``track_peak_bytes``, the call's own allocations), ``Layer`` (``track_cpr``,
a property of the layer, so one value per layer and batch, not per backend) and ``MachineState``
(how busy the machine was: other processes' busy cores, load, steal, CPU frequency; see
:mod:`harness.support.machine_state`).

Repeated rounds: ``time_conv2d`` runs in ``rounds`` = 3 processes per combination, which asv
interleaves with the other benchmarks' rounds (``asv run`` interleaves rounds by default), each
taking 2 to 4 samples (``repeat``) of one call (``number``). A disturbance of a few seconds then
hits one round of many benchmarks rather than every sample of one, and the spread asv records
(and ``asv compare`` tests differences against) covers several points in time. ``MachineState``
has rounds too, so the machine is sampled at several points of the run; a result beside a high
``track_busy_cores`` was taken on a busy machine. ``--quick`` still runs one round of one call.
Unavailable backends, unsupported features or ops, and cases over the limit are skipped
by ``setup`` raising ``NotImplementedError`` with the reason (a limit that only a call finds,
``harness.Unsupported`` from the backend's op, skips the same way). Timing rules are
:mod:`harness.support.timing`'s, shared with ``convbench bench``.

Cost: asv runs every (benchmark, parameter combination) in a process of its own. This
project's ``asv.conf.json`` sets ``launch_method`` to ``forkserver``: this module is imported
once, and each of those processes is a fork of it. So everything every process would repeat
(torch, numba, threadpoolctl, numba's compiler, the backends' probes) is done here, at import
(:func:`_preload`), and a skipped combination costs a fork and a dictionary look-up (~30 ms,
against ~2.8 s for a fresh interpreter). Nothing here may start a thread pool or a GPU
driver, which would not survive the fork: GNU OpenMP (numba's threading layer, torch) aborts
or hangs in a forked child once the parent used it, and a CUDA context cannot cross a fork.
Thread counts are therefore set in ``setup``, and the backends on other devices are probed in
a short-lived child process (:func:`_probe_apart`). What remains is the calls themselves: a
case is called once by ``peakmem_conv2d``, twice by ``time_conv2d`` under ``--quick`` (warm-up,
run) and at least twice by ``track_gflops``.
"""

import json
import os
import select
import signal
import sys

from harness.ops.table import op_info
from harness import suites
from harness.bench.runner import op_spec, prepare
from harness.errors import Unsupported
from harness.backend.registry import backends, get_backend
from harness.support import timing  # a module: asv would take a bare `time_call` for a benchmark
from harness.support import allocator

allocator.steady_heap()  # large buffers stay in the heap, as in `convbench bench` (harness.support.allocator)


def _env_list(name, default):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _suite_names():
    """The suites of ``CONVBENCH_ASV_SUITES``; ``all`` stands for every shipped suite."""
    chosen = _env_list("CONVBENCH_ASV_SUITES", "resnet50,mobilenetv2")
    if "all" in chosen:
        return suites.names()
    return chosen


def _threads():
    value = os.environ.get("CONVBENCH_ASV_THREADS")
    if value:
        return [int(n) for n in value.split(",") if n.strip()]
    return [len(os.sched_getaffinity(0))]


SUITES = _suite_names()
LAYERS = {layer.label: layer for name in SUITES for layer in suites.layers(name, batch=1)}
BACKENDS = [b.name for b in backends()]
BATCHES = [int(b) for b in _env_list("CONVBENCH_ASV_BATCHES", "1")]
DTYPES = _env_list("CONVBENCH_ASV_DTYPES", "float32")
THREADS = _threads()
LIMIT_S = float(os.environ.get("CONVBENCH_ASV_LIMIT", "2"))


# -- done once, where asv's forkserver imports this module ------------------------------------
def _backend_reasons(names):
    """``{name: why it is unavailable, or None}`` for the named backends (probes them)."""
    return {name: get_backend(name).reason for name in names}


def _probe_apart(names, timeout_s=120.0):
    """:func:`_backend_reasons` for backends whose probe may start a GPU driver, run in a
    forked child so that this process (which asv forks for every benchmark) never holds a
    driver context. Without ``fork`` there is no forkserver either, and they are probed here.
    If the child fails or hangs, ``{}``: each benchmark process then probes for itself."""
    if not names:
        return {}
    if not hasattr(os, "fork"):
        return _backend_reasons(names)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: probe, report, leave without running the parent's exit handlers
        status = 1
        try:
            os.close(read_end)
            with os.fdopen(write_end, "w") as out:
                json.dump(_backend_reasons(names), out)
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end) as report:
        if select.select([report], [], [], timeout_s)[0]:
            text = report.read()
        else:
            os.kill(pid, signal.SIGKILL)
            text = ""
    _, status = os.waitpid(pid, 0)
    if status != 0 or not text:
        print(f"bench_conv2d: probing {', '.join(names)} in a child process failed (wait status {status}); "
              "each benchmark process probes for itself", file=sys.stderr)
        return {}
    return json.loads(text)


def _start_numba_compiler():
    """Set up numba's compiler (LLVM, target context, registries), which it does on first use:
    ~0.4 s that every process loading a cached kernel would otherwise pay again. A serial
    function starts no threading layer; a parallel one (or ``numba.set_num_threads``) would."""
    try:
        import numba
    except ImportError:
        return

    @numba.njit(cache=False)
    def first_compile(value):
        return value + 1

    first_compile(1)


def _preload():
    """Probe every backend (CPU ones here, which imports torch and numba; others apart) and
    set up what each benchmark process would otherwise repeat. Returns ``{backend: reason}``
    for the unavailable ones."""
    reasons = _backend_reasons([b.name for b in backends() if b.device == "cpu"])
    reasons.update(_probe_apart([name for name in BACKENDS if name not in reasons]))
    import threadpoolctl  # noqa: F401  (timing.set_threads' import)

    _start_numba_compiler()
    return {name: why for name, why in reasons.items() if why}


UNAVAILABLE = _preload()


# -- benchmarks -------------------------------------------------------------------------------
class _Conv2dCase:
    """The grid and the case every conv2d benchmark class prepares (not a benchmark itself)."""

    params = [BACKENDS, list(LAYERS), BATCHES, DTYPES, THREADS]
    param_names = ["backend", "layer", "batch", "dtype", "threads"]
    timeout = 600  # per process; the slowest cases (fft on dilated layers) take ~40 s a call

    def _prepare(self, backend, layer, batch, dtype, threads):
        """``self.case``, ready to call with ``threads`` threads; the layer entry and spec.

        Skips (NotImplementedError with the reason) come first, before anything is allocated.
        """
        if backend in UNAVAILABLE:
            raise NotImplementedError(f"backend {backend!r} is unavailable: {UNAVAILABLE[backend]}")
        entry = LAYERS[layer]
        spec = entry.spec.with_(N=batch, dtype=dtype)
        # NotImplementedError (harness.Unsupported) with the reason = asv's "skipped"
        self.case = prepare(backend, entry.op, spec, seed=0, limit_s=LIMIT_S)
        timing.set_threads(threads)
        return entry, spec


class Conv2d(_Conv2dCase):
    # Warm-up is done in setup, not by asv (and again in each round's process: a fork starts
    # cold). Three interleaved rounds of 2-4 samples (at most 0.5 s of samples per round) of
    # one call each (asv --quick takes one).
    rounds = 3
    number = 1
    repeat = (2, 4, 0.5)
    warmup_time = 0

    def setup(self, backend, layer, batch, dtype, threads):
        key = (backend, layer, batch, dtype, threads)
        if getattr(self, "prepared_for", None) == key:
            return  # asv re-runs setup between samples: the case is ready and warm already
        entry, spec = self._prepare(backend, layer, batch, dtype, threads)
        # FLOPs of the op the row names (a transposed conv's are not its Conv2dSpec fields')
        self.flops = op_info(entry.op).counts(op_spec(entry.op, spec))["flops_dense"]
        # warm-up: JIT compilation is never timed (and a limit found only by calling skips here)
        self.first_call_s = timing.time_once(self.case.fn, self.case.args, self.case.sync)
        self.prepared_for = key

    def time_conv2d(self, backend, layer, batch, dtype, threads):
        self.case.fn(*self.case.args)
        self.case.sync()

    def track_gflops(self, backend, layer, batch, dtype, threads):
        # setup's warm-up was the first call; then runs for 0.2 s, the fastest counts. A call
        # slower than that is timed once, as time_conv2d is under --quick: three runs of the
        # slowest cases (fft takes 3-40 s on some) would add about a quarter to a full run. No
        # settling: each benchmark runs in its own process, where no other pool is spinning.
        measured = timing.time_call(self.case.fn, self.case.args, sync=self.case.sync, budget_s=0.2,
                                    min_runs=1, warmup=0, settle_s=0.0, first_call_s=self.first_call_s)
        return self.flops / measured.min / 1e9

    track_gflops.unit = "GFLOP/s"


class Conv2dMemory(_Conv2dCase):
    """Peak memory: asv's peakmem is the process's maximum resident set, a high-water mark
    that a warm-up call would reach just the same, so there is none (nothing here is timed)."""

    def setup(self, backend, layer, batch, dtype, threads):
        self._prepare(backend, layer, batch, dtype, threads)

    def peakmem_conv2d(self, backend, layer, batch, dtype, threads):
        try:
            self.case.fn(*self.case.args)
        except Unsupported as exc:  # a limit only the call finds (Conv2d's warm-up finds it in setup)
            from asv_runner.benchmarks.mark import SkipNotImplemented

            print(f"asv: skipped: {exc!r}")
            raise SkipNotImplemented(str(exc)) from exc


class Conv2dTracedMemory(_Conv2dCase):
    """The backend's own peak: the most memory one call holds at once, as tracemalloc traces it.

    asv's ``peakmem`` above is the process's resident high-water mark, which the interpreter,
    torch and numba (~250 MB) dominate, so every backend reads about the same. tracemalloc
    follows every allocation made through Python's and NumPy's allocators (NumPy arrays,
    numba's arrays) from the call's start to its end; the inputs, allocated in setup, are not
    counted. Memory a library allocates by its own means (torch's CPU allocator, BLAS scratch
    space) is not traced: torch's figure covers only what it allocates through NumPy.
    """

    def setup(self, backend, layer, batch, dtype, threads):
        self._prepare(backend, layer, batch, dtype, threads)
        # one untraced call: JIT compilation and first-use caches are not the call's memory
        timing.time_once(self.case.fn, self.case.args, self.case.sync)

    def track_peak_bytes(self, backend, layer, batch, dtype, threads):
        import tracemalloc

        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            out = self.case.fn(*self.case.args)
            self.case.sync()
            peak = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
        del out
        return peak

    track_peak_bytes.unit = "bytes"


class Layer:
    """Properties of a layer, whatever the backend: one process per layer and batch (MACs grow
    with the batch, parameters do not)."""

    params = [list(LAYERS), BATCHES]
    param_names = ["layer", "batch"]

    def track_cpr(self, layer, batch):
        entry = LAYERS[layer]
        counts = op_info(entry.op).counts(op_spec(entry.op, entry.spec.with_(N=batch)))
        return counts["macs"] / counts["params"]

    track_cpr.unit = "MACs/param"


class MachineState:
    """The machine while the benchmarks ran: one value per round (rounds interleave with the other
    benchmarks'), over a 0.5 s window in which this process sleeps. See :mod:`harness.support.machine_state`."""

    rounds = 3
    timeout = 60

    def setup(self):
        from harness.support import machine_state

        self.window = machine_state.measure_window(0.5)

    def track_busy_cores(self):
        return _nan_if_none(self.window.busy_cores)

    track_busy_cores.unit = "cores"

    def track_load1(self):
        return _nan_if_none(self.window.load1)

    track_load1.unit = "load"

    def track_steal_pct(self):
        return _nan_if_none(self.window.steal_pct)

    track_steal_pct.unit = "%"

    def track_cpu_mhz(self):
        return _nan_if_none(self.window.cpu_mhz_after)

    track_cpu_mhz.unit = "MHz"


def _nan_if_none(value):
    return float("nan") if value is None else float(value)
