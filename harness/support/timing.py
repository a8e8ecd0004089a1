"""Timing rules shared by ``convbench bench`` and the asv benchmarks.

* Warm-up first: the first call (JIT compilation, workspace allocation, lazy imports) is
  timed on its own, then a few more warm-up calls; ``compile_s`` is the first call's time
  minus the steady-state median, so compile time is reported, never mixed into run time.
* Then runs until a time budget is spent, but at least ``min_runs`` and at most
  ``max_runs``; each run is timed alone with ``time.perf_counter`` and ends with the
  backend's ``sync()`` (CUDA launches return before the work is done).
* ``hot`` cache reuses the same input buffers every run; ``cold`` gives each run fresh
  copies of the inputs, made outside the timed region, so they are not in cache.
* Results: min (the figure least disturbed by other load on the machine, used for
  GFLOP/s), median and IQR (how noisy the measurement was).

Thread counts are pinned with :func:`pinned_threads`, which sets the same count for BLAS,
torch and numba and records what it set.
"""

from __future__ import annotations

import contextlib
import functools
import time
from dataclasses import asdict, dataclass

import numpy as np

from harness.support.machine_state import own_running_threads, wait_for_own_threads

CACHE_MODES = ("hot", "cold")


@dataclass(frozen=True)
class Timing:
    """Seconds per call of one measured callable."""

    min: float
    median: float
    iqr: float
    runs: int
    first_call: float
    compile: float
    cache: str

    def as_dict(self) -> dict:
        return asdict(self)


def time_call(
    fn,
    args=(),
    *,
    sync=None,
    budget_s: float = 0.5,
    min_runs: int = 3,
    max_runs: int = 1000,
    warmup: int = 1,
    settle_s: float = 0.1,
    cache: str = "hot",
    first_call_s: float | None = None,
) -> Timing:
    """Time ``fn(*args)`` under convbench's timing rules.

    Parameters
    ----------
    fn : callable
        The call to time (a backend's op, called directly: no argument checking inside
        the timed region).
    args : tuple
        Its arguments. With ``cache='cold'``, every numpy array among them is copied
        afresh before each run (the copy is not timed).
    sync : callable, optional
        Waits for the device (the backend's ``sync``); called before every clock stop.
    budget_s : float
        Time budget for the measured runs, after warm-up.
    min_runs, max_runs : int
        Bounds on the number of measured runs, whatever the budget.
    warmup : int
        Warm-up calls after the first one (at least the first call is always made).
    settle_s : float
        Warm-up goes on until it has also taken this long: another library's thread pool
        (OpenBLAS, torch's or numba's OpenMP) keeps spinning for a while after its last call
        and slows whatever runs next in the process (winograd: 1.4 ms alone, 2.5 ms right
        after an im2col call, ResNet-50 res4 3x3 at 2 threads).
    cache : {'hot', 'cold'}
    first_call_s : float, optional
        The first call's time, when the caller already made it (with :func:`time_once`,
        e.g. to decide whether the case is affordable); it is then not repeated.
    """
    if cache not in CACHE_MODES:
        raise ValueError(f"cache must be one of {CACHE_MODES}, got {cache!r}")
    if min_runs < 1 or max_runs < min_runs:
        raise ValueError(f"need 1 <= min_runs <= max_runs, got min_runs={min_runs}, max_runs={max_runs}")
    sync = sync or (lambda: None)

    first = time_once(fn, args, sync) if first_call_s is None else first_call_s
    call_for(fn, args, sync, settle_s, min_calls=warmup)

    times = []
    spent = 0.0
    while len(times) < max_runs and (len(times) < min_runs or spent < budget_s):
        run_args = fresh_copies(args) if cache == "cold" else args
        elapsed = _timed(fn, run_args, sync)
        times.append(elapsed)
        spent += elapsed
    t = np.asarray(times)
    q1, median, q3 = np.percentile(t, [25, 50, 75])
    return Timing(
        min=float(t.min()),
        median=float(median),
        iqr=float(q3 - q1),
        runs=len(times),
        first_call=first,
        compile=max(0.0, first - float(median)),
        cache=cache,
    )


#: Seconds after its last call until every thread pool has stopped spinning: OpenBLAS's workers
#: spin for 2^28 cycles (0.1 s at 2.6 GHz) before they sleep. Measured (ResNet-34 and synthetic
#: 7x7/11x11 layers, 2 threads): numba_cpu right after im2col 1.4-1.8x its own time, and still
#: after 30 ms of its own calls or a 30 ms sleep; after a 150 ms sleep, its own time.
POOLS_IDLE_S = 0.15


def let_pools_sleep(seconds: float = POOLS_IDLE_S) -> None:
    """Wait until other libraries' thread pools have gone idle, so that the next timing is not
    shared with a previous library's spinning workers: until no other thread of this process is
    running (:func:`harness.support.machine_state.wait_for_own_threads`; numba's and torch's pools
    sleep within about 5 ms, OpenBLAS's after 0.1 s), at most ``seconds`` (all of it where threads'
    states cannot be read). Waiting, not calling: calls of the next library keep competing with the
    spinning workers until their timeout."""
    if own_running_threads() is None:
        time.sleep(seconds)
    else:
        wait_for_own_threads(seconds)


def call_for(fn, args=(), sync=None, seconds: float = 0.0, *, before=None, min_calls: int = 1,
             max_calls: int | None = None) -> tuple[float, int]:
    """Untimed calls of ``fn(*args)`` (each after ``before()``, when given) until they have taken
    ``seconds`` in all: at least ``min_calls``, at most ``max_calls`` (None: no limit). Warm-up and
    settling: compilation, first touch, and another library's thread pool going quiet.

    Returns the seconds spent in the calls and their number.
    """
    sync = sync or (lambda: None)
    spent, calls = 0.0, 0
    while calls < min_calls or (spent < seconds and (max_calls is None or calls < max_calls)):
        if before is not None:
            before()
        spent += _timed(fn, args, sync)
        calls += 1
    return spent, calls


def time_once(fn, args=(), sync=None) -> float:
    """Seconds for one call of ``fn(*args)``, including ``sync()``."""
    return _timed(fn, args, sync or (lambda: None))


def _timed(fn, args, sync) -> float:
    start = time.perf_counter()
    fn(*args)
    sync()
    return time.perf_counter() - start


def fresh_copies(args):
    """Copies of every array argument (new buffers, not in cache); others as they are."""
    out = []
    for a in args:
        if isinstance(a, np.ndarray):
            copy = a.copy()
            copy.flags.writeable = a.flags.writeable
            out.append(copy)
        else:
            out.append(a)
    return tuple(out)


# -- threads -----------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def blas_pools():
    """threadpoolctl's controller of this process's BLAS libraries, found once: numpy's, and
    scipy's (which numba's ``np.dot`` calls; loaded first so that it is among them)."""
    import scipy.linalg.cython_blas  # noqa: F401
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")


#: The count the last :func:`set_threads` call still in force set (None: never set, or undone to a
#: state convbench did not set), for readers that need it in well under a microsecond.
_SET_BY_US: list = [None]


def threads_set() -> int | None:
    """The thread count :func:`set_threads` put in force (None when the libraries' own counts apply)."""
    return _SET_BY_US[0]


def set_threads(n: int | None) -> tuple[dict, object]:
    """Set ``n`` threads in BLAS (threadpoolctl), torch and numba alike.

    Returns the counts now in force (``blas``, ``torch``, ``numba``; a library that is not
    installed is left out) and a callable that restores the previous counts. ``n=None``
    changes nothing and only reports. torch and numba are imported here, not at module
    import, so that importing the harness stays light.
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"threads must be a positive int or None, got {n!r}")
    from threadpoolctl import threadpool_info, threadpool_limits

    restore = []
    torch, numba = _optional("torch"), _optional("numba")
    if n is not None:
        # numba first: launching its threading layer resets OpenMP's count, torch's included
        if numba is not None:
            previous_nb = numba.get_num_threads()
            numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
            restore.append(lambda: numba.set_num_threads(previous_nb))
        if torch is not None:
            previous = torch.get_num_threads()
            torch.set_num_threads(n)
            restore.append(lambda: torch.set_num_threads(previous))
        limiter = threadpool_limits(limits=n, user_api="blas")
        restore.append(limiter.restore_original_limits)
        before = _SET_BY_US[0]
        _SET_BY_US[0] = n
        restore.append(lambda: _SET_BY_US.__setitem__(0, before))
    counts = {}
    if numba is not None:
        counts["numba"] = numba.get_num_threads()
    blas = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
    if blas:
        counts["blas"] = max(blas)
    if torch is not None:
        counts["torch"] = torch.get_num_threads()

    def undo():
        for step in reversed(restore):
            step()

    return counts, undo


@contextlib.contextmanager
def pinned_threads(n: int | None):
    """Context manager form of :func:`set_threads`: yields the counts, restores on exit."""
    counts, undo = set_threads(n)
    try:
        yield counts
    finally:
        undo()


def _optional(name: str):
    """Import a module if it is installed; None otherwise."""
    try:
        return __import__(name)
    except ImportError:
        return None
