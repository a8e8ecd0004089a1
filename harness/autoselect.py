"""Choosing a backend per call, as scipy's ``choose_conv_method`` and cuDNN's find mode do.

Three functions, one return type (:class:`Choice`):

* :func:`estimate` predicts each candidate's time from operation counts of the call times
  per-backend constants fitted on this machine (each backend's ``CostModel``, plus the grouped
  and depthwise terms of :func:`group_features` that every backend gets, and
  ``convbench calibrate``) and picks the smallest. Nothing runs; it costs microseconds; its
  decisions are kept per (op, spec, model in force, thread counts), so a layer called again
  costs one dictionary look-up (:data:`_DECISIONS`).
* :func:`choose` is what ``backend="auto"`` runs (``harness.api.resolve.resolve_backend``): the estimate's pick, unless it predicts other
  candidates within :data:`TIE_MARGIN` (2x) of it; those close calls are then timed once per call
  shape (both orders, best of a few calls each) and the fastest is taken, kept like :func:`measure`'s
  choices. The model ranks candidates that differ by more than its error; inside it, a measurement does.
* :func:`measure` runs every candidate on the call's shape (seeded random inputs), once per
  distinct spec, and caches the winner in memory and on disk
  (``~/.cache/convbench/autoselect-<key>.json``, or ``$CONVBENCH_CACHE_DIR``). The file is
  keyed by the machine fingerprint (:func:`harness.support.machine.fingerprint`: CPU, BLAS kernel and
  threads, environment overrides), the library versions and a hash of the backends' source,
  so it is never trusted on another machine, thread count or code version; deleting it only
  costs a re-measurement.

Candidates are the available backends whose role (``Backend.role``) is ``candidate`` and that
support the call; ``include_torch=True`` adds the ``baseline`` backends, so that "auto beats
torch" is never torch beating itself. The ``reference`` is never a candidate. A backend takes
part through its own ``CostModel`` (plug-ins included); nothing here knows a backend by name.

Calibration: the constants in force are this machine's calibration file
(:func:`calibration_path`, in :func:`cache_dir`, keyed like the choices but without thread
counts) when one was made with this machine, versions and backend code; else each backend's
shipped ``CostModel.defaults``. ``convbench run`` makes one when it is missing
(:func:`needs_calibration`, ``harness.bench.calibration``); ``convbench calibrate`` redoes it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import platform
import sys
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

from harness.backend import registry as _registry
from harness.backend.dispatch import prepare, release as release_inputs
from harness.backend.registry import backends, get_backend
from harness.errors import ResourceLimit, Unsupported
from harness.support import core_speed
from harness.support import machine as _machine
from harness.support.allocator import steady_heap
from harness.support.results_io import write_atomic
from harness.support.timing import call_for, let_pools_sleep, set_threads, threads_set, time_call, time_once

#: The calibration file; None: ``calibration.json`` in :func:`cache_dir` (see :func:`calibration_path`).
CALIBRATION_PATH: Path | None = None


@dataclass(frozen=True)
class Choice:
    """The backend chosen for one call, and the seconds behind the choice.

    ``seconds`` maps each candidate considered to its estimated (``method='estimate'``) or
    measured (``method='measure'``, best of a few runs) time per call; ``cached`` says the
    measurement came from the memory or disk cache.
    """

    backend: str
    seconds: dict = field(default_factory=dict)
    method: str = "estimate"
    cached: bool = False


# -- candidates --------------------------------------------------------------------------
def candidates(op: str, spec, include_torch: bool = False) -> list[str]:
    """Available backends that support ``op`` on ``spec``: every ``candidate``, and with
    ``include_torch=True`` the ``baseline`` backends too (never the ``reference``)."""
    roles = {"candidate", "baseline"} if include_torch else {"candidate"}
    return [b.name for b in backends()
            if b.role in roles and b.available and b.unsupported_reason(op, spec) is None]


def fallback(op: str, spec, finite: bool = True) -> str:
    """The backend ``auto`` runs where no cost model decides: the lowest ``auto_rank`` (then name)
    among the available backends that support the call, whatever their role; ``finite=False`` (the
    data holds NaN or Inf) keeps to those that propagate them element by element (not FFT or Winograd,
    which smear them over a tile). Raises ``Unsupported`` when none can run it."""
    able = [b for b in backends() if b.available and b.unsupported_reason(op, spec) is None
            and (finite or b.propagates_nonfinite(spec.dtype))]
    if not able:
        raise Unsupported(f"no available backend supports {op} on {spec}")
    return min(able, key=lambda b: (b.auto_rank, b.name)).name


# -- estimate ----------------------------------------------------------------------------
def features(backend: str, op: str, spec) -> dict[str, float] | None:
    """Operation counts that drive ``backend``'s time on ``op``: its ``CostModel``'s, plus the
    grouped-convolution terms (:func:`group_features`) that every modelled backend gets; None
    without a model."""
    cost = get_backend(backend).cost
    counts = None if cost is None else cost.features(op, spec)
    return counts if not counts else {**counts, **group_features(op, spec)}


def group_features(op: str, spec) -> dict[str, float]:
    """Terms of a grouped or depthwise ``conv2d``, added to every backend's own counts.

    A backend's own model counts multiply-adds as if the groups were one dense convolution; a
    grouped call runs as ``groups`` small ones (a GEMM or a loop nest each, narrow at a group
    width of 4-16 channels) and costs more per multiply-add, by an amount that differs from
    backend to backend by orders of magnitude. So: ``group_calls`` (the groups: per-group set-up),
    and the multiply-adds again as ``group_macs`` (groups of several channels) or
    ``depthwise_macs`` (one input channel per group), so that each regime gets its own constant
    per backend. ``convbench calibrate`` fits them (grouped and depthwise probe layers); a
    backend's ``CostModel.defaults`` may state them, else they count zero. Empty for ungrouped calls.
    """
    kind = regime(spec) if op == "conv2d" else "dense"
    if kind == "dense":
        return {}
    per_group = spec.C // spec.groups
    macs = float(spec.N * spec.O * spec.OH * spec.OW * per_group * spec.KH * spec.KW)
    return {"group_calls": float(spec.groups), ("depthwise_macs" if kind == "depthwise" else "group_macs"): macs}


def regime(spec) -> str:
    """``dense``, ``grouped`` or ``depthwise`` (one input channel per group): the convolutions whose
    constants the cost model fits apart (:func:`group_features`)."""
    groups = getattr(spec, "groups", 1)
    if groups <= 1:
        return "dense"
    return "depthwise" if spec.C == groups else "grouped"


def default_constants() -> dict[str, dict[str, float]]:
    """Each backend's shipped constants (``CostModel.defaults``), by backend name."""
    return {b.name: dict(b.cost.defaults) for b in backends() if b.cost is not None and b.cost.defaults}


def model() -> dict:
    """The cost-model constants in force: this machine's calibration file, else the defaults.

    Returns ``{"source": str, "constants": {backend: {feature: seconds per unit}}}``.
    """
    path = calibration_path()
    saved = _calibration(str(path.resolve()), _mtime(path))
    defaults = default_constants()
    if saved is not None:  # backends the calibration did not see keep their own constants
        return {"source": saved["source"], "constants": {**defaults, **saved["constants"]}}
    return {"source": "the backends' CostModel.defaults", "constants": defaults}


def calibration_path() -> Path:
    """Where this machine's calibration lives: :data:`CALIBRATION_PATH` when set, else
    ``calibration.json`` in :func:`cache_dir` (never in ``reports/``: it belongs to the machine)."""
    return Path(CALIBRATION_PATH) if CALIBRATION_PATH is not None else cache_dir() / "calibration.json"


def needs_calibration() -> bool:
    """True when no valid calibration exists for this machine, these versions and this backend
    code (a malformed file counts as none, with one warning)."""
    path = calibration_path()
    return _calibration(str(path.resolve()), _mtime(path)) is None


def save_calibration(saved: dict, path: Path | None = None) -> Path:
    """Write a calibration (``{"constants": {backend: {feature: seconds}}, ...}``) atomically,
    stamped with this machine's key, and make it the model in force for later decisions.

    Raises
    ------
    ValueError
        When ``saved["constants"]`` is not ``{backend: {feature: finite non-negative number}}``.
    """
    if not isinstance(saved, dict) or not _valid_constants(saved.get("constants")):
        raise ValueError("a calibration needs 'constants': {backend: {feature: finite non-negative seconds}}")
    out = write_atomic(Path(path) if path is not None else calibration_path(),
                       json.dumps({**saved, "key": calibration_key()}, indent=1, default=str))
    forget()
    return out


def forget() -> None:
    """Drop remembered decisions and calibrations: the next decision reads the model afresh
    (for a calibration written by another process while this one runs)."""
    global _GENERATION
    _GENERATION += 1
    _DECISIONS.clear()
    _TIES.clear()
    _calibration.cache_clear()


#: The cost model's form: bumped when the features change (2: :func:`group_features`; 3: im2col's
#: ``weight_reads``), so that a calibration fitted without them is made again rather than kept with
#: those constants at zero.
MODEL_FORM = 3


def calibration_key() -> str:
    """What a calibration file must be stamped with to apply here: :func:`cache_key` without the
    thread counts, and :data:`MODEL_FORM`."""
    return f"{cache_key(threads=False)}-form{MODEL_FORM}"


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


@lru_cache(maxsize=4)
def _calibration(path: str, mtime: float) -> dict | None:
    """The calibration file's model when it was made on this machine with this code, else None."""
    if not mtime:
        return None
    try:
        saved = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        warnings.warn(f"ignoring unreadable calibration {path} ({exc}); the shipped constants apply", stacklevel=2)
        return None
    constants = saved.get("constants") if isinstance(saved, dict) else None
    if not _valid_constants(constants):
        warnings.warn(f"ignoring calibration {path}: not a convbench calibration (expected "
                      "{'key': ..., 'constants': {backend: {feature: seconds}}}); run `convbench calibrate`",
                      stacklevel=2)
        return None
    if saved.get("key") != calibration_key():
        return None  # made on another machine or code version: the defaults apply
    return {"source": f"{path} (calibrated {saved.get('calibrated_at')})", "constants": constants}


def _valid_constants(constants) -> bool:
    """``{backend: {feature: finite non-negative number}}``."""
    return isinstance(constants, dict) and all(
        isinstance(name, str) and isinstance(fitted, dict) and all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            and v >= 0 for k, v in fitted.items())
        for name, fitted in constants.items())


def predict(backend: str, op: str, spec, constants: dict | None = None) -> float | None:
    """Estimated seconds per call of ``backend`` on ``op`` / ``spec``; None without a model."""
    constants = model()["constants"] if constants is None else constants
    counts = features(backend, op, spec)
    if counts is None or backend not in constants:
        return None
    fitted = constants[backend]
    return float(sum(fitted.get(name, 0.0) * value for name, value in counts.items()))


#: Decisions of :func:`estimate`, by (op, spec, include_torch, thread counts); valid while the
#: model in force is the one of :data:`_DECISIONS_STATE` (emptied when it changes).
_DECISIONS: dict = {}
_DECISIONS_MAX = 4096
_DECISIONS_STATE: list = [None]  # (calibration file setting, forget() generation, registered backends)
_GENERATION = 0  # bumped by forget() / save_calibration(): a new model is in force


def estimate(op: str, spec, include_torch: bool = False) -> Choice | None:
    """The candidate with the smallest predicted time (nothing is run); remembered per call shape.

    A decision is kept per ``(op, spec, include_torch)`` and the thread counts, for as long as
    the model in force stays the same (calibration file setting, :func:`forget` generation,
    registered backends), so a layer called again costs one dictionary look-up instead of one
    prediction per candidate (under a microsecond: ``python -m harness.bench.groups --decision-cost``).

    Parameters
    ----------
    op : str
        ``"conv2d"`` (other ops have no cost model yet).
    spec : Conv2dSpec
        The call.
    include_torch : bool
        Let the torch baselines be chosen.

    Returns
    -------
    Choice or None
        ``method='estimate'`` with the predicted seconds of every modelled candidate; None
        when no candidate has a model (the caller falls back to its own rule).
    """
    # the model in force, as three cheap reads (the registry counts its own changes)
    state = _model_state()
    if state != _DECISIONS_STATE[0]:
        _DECISIONS.clear()
        _TIES.clear()
        _DECISIONS_STATE[0] = state
    key = (op, spec, include_torch, _thread_token())
    try:
        return _DECISIONS[key]
    except KeyError:
        pass
    except TypeError:  # an unhashable spec: decide without remembering
        return _estimate(op, spec, include_torch)
    choice = _estimate(op, spec, include_torch)
    if len(_DECISIONS) >= _DECISIONS_MAX:
        _DECISIONS.clear()
    _DECISIONS[key] = choice
    return choice


# -- choose: estimate, then time the close calls -----------------------------------------
#: :func:`choose` times the candidates the estimate predicts within this factor of its pick: the
#: cost model's per-backend error is 1.2x median and up to 2-2.6x worst on this machine's probe
#: layers, so two candidates predicted closer than 2x can be in either order. Leave-one-suite-out on
#: a calibration of 36 layers (2026-12-02), a shortlist this wide held the measured best on 36/36
#: layers (1.3x: 35/36, the miss 1.28x the best; 1.15x: 33/36) and was timed on 24 of them.
TIE_MARGIN = 2.0
#: ... unless the estimate's pick is predicted to take longer than this per call: timing costs each
#: close candidate about four calls, once per call shape (then kept in memory and on disk).
TIE_MAX_S = 0.1
#: Timed seconds per close candidate (after one untimed call; at least :data:`TIE_MIN_RUNS` calls).
TIE_BUDGET_S = 0.05
TIE_MIN_RUNS = 3
#: Untimed calls per close candidate last at least this long, after the candidate has waited for
#: the other thread pools to go idle (``harness.support.timing.let_pools_sleep``).
TIE_SETTLE_S = 0.03
#: Rounds of a tie-break's timing, each in the reverse order of the last (:func:`time_close_calls`).
#: One: each candidate is timed after the others' pools have gone to sleep, so the order no longer
#: decides (with 30 ms of its own calls instead, two rounds in opposite orders were needed, and a
#: candidate timed in the other's spinning pool still lost: 8 of 36 held-out layers, Zen 4, 2 threads).
TIE_ROUNDS = 1
#: A tie-break timed while a core ran contended (:mod:`harness.support.core_speed`: probed before each
#: candidate and after the last) is timed again, up to this many attempts in all; each candidate keeps
#: its best over the attempts (contention only adds time). One still contended after them decides for
#: this process but is not written to the disk cache, so a later process decides again. On the project
#: machine (2 vCPUs, 2026-12-03) a vCPU was contended a third of the time, in windows of 0.1-20 s, and
#: a winograd layer ran 1.65x slower in one: enough to turn a close call.
TIE_ATTEMPTS = 2
#: Memory a tie-break may use, as a multiple of the call's own (outputs and padded input): it
#: allocates inputs and outputs again for each candidate, so a call near the machine's memory
#: keeps the estimate's pick.
TIE_MEMORY_FACTOR = 4
#: Whether ``auto`` breaks ties by timing (:func:`choose`); ``CONVBENCH_AUTO_TIE_BREAK=0`` in the
#: environment (read at import) or setting this to False keeps it to the estimate alone.
TIE_BREAK: bool = os.environ.get("CONVBENCH_AUTO_TIE_BREAK", "1").strip().lower() not in {"0", "off", "false", "no"}

_TIES: dict = {}  # choose's decisions, by the key of _DECISIONS; emptied with them


#: Seconds :func:`plan` charges a call for running on another backend than the call before it: the
#: previous library's workers keep spinning for about 0.1 s (``harness.support.timing.POOLS_IDLE_S``)
#: and the next library's threads share the cores with them.
PLAN_SWITCH_S = 0.02


def plan(op: str, specs, switch_s: float | None = None, include_torch: bool = False) -> list[str]:
    """One backend per call of a sequence run in order (a network's layers), the one that minimises
    the sequence's time: each call's time on its backend (where :func:`choose` timed close calls, their
    measured times, the others being out of the running; else the estimate's) plus ``switch_s`` (default :data:`PLAN_SWITCH_S`) for each call on
    another backend than the call before it. Dynamic programming over the calls, so a run of layers
    stays on one backend unless leaving it saves more than the switches cost; ``backend="auto"``
    decides one call at a time and cannot see the layers ahead.

    A call without a cost model for any candidate keeps the backend ``auto`` falls back to
    (:func:`fallback`) and no alternative.
    """
    switch = PLAN_SWITCH_S if switch_s is None else switch_s
    if switch < 0:
        raise ValueError(f"switch_s must be >= 0 seconds, got {switch}")
    options = []
    for spec in specs:
        guess = estimate(op, spec, include_torch)
        picked = choose(op, spec, include_torch)
        if guess is None or picked is None:
            options.append({fallback(op, spec): 0.0})
            continue
        # a tie-break's measured times only: the candidates it did not time were predicted over
        # TIE_MARGIN slower than the estimate's pick, and a model time beside measured ones is no comparison
        options.append(dict(picked.seconds) if picked.method == "estimate+measure" else dict(guess.seconds))
    # best[b]: the least time of the calls so far ending on backend b; back[i][b]: the backend before
    best, back = dict(options[0]) if options else {}, []
    for times in options[1:]:
        came_from, now = {}, {}
        for b, t in times.items():
            prev = min(best, key=lambda a: best[a] + (0.0 if a == b else switch))
            came_from[b] = prev
            now[b] = best[prev] + (0.0 if prev == b else switch) + t
        back.append(came_from)
        best = now
    if not best:
        return []
    route = [min(best, key=best.get)]
    for came_from in reversed(back):
        route.append(came_from[route[-1]])
    return route[::-1]


def close_calls(choice: Choice) -> list[str]:
    """The candidates of an estimate predicted within :data:`TIE_MARGIN` of its pick, the pick first."""
    best = choice.seconds[choice.backend]
    close = [n for n, t in choice.seconds.items() if t <= TIE_MARGIN * best]
    return sorted(close, key=lambda n: (n != choice.backend, choice.seconds[n]))


def tie_to_break(choice: Choice) -> list[str]:
    """The close calls (:func:`close_calls`) a tie-break times for this estimate: none when the pick
    has no rival within :data:`TIE_MARGIN` or is predicted over :data:`TIE_MAX_S` a call."""
    close = close_calls(choice)
    return close if len(close) > 1 and choice.seconds[choice.backend] <= TIE_MAX_S else []


def choose(op: str, spec, include_torch: bool = False, may_time=None) -> Choice | None:
    """What ``backend="auto"`` runs: the estimate's pick, unless other candidates are predicted
    within :data:`TIE_MARGIN` of it; then those close candidates are timed on the call's shape
    (seeded random inputs, as :func:`measure` does, best of a few calls) and the fastest is taken.

    The cost model ranks candidates that differ by 2x or more; closer than that its error decides
    (a linear model per backend: 1.2x median, 2-2.6x worst), so the close calls are measured, as
    cuDNN's find mode and MIOpen's find step do, but only among the candidates the model cannot
    separate. A tie-break runs once per call shape, machine, thread count and code version: it is
    kept in memory and on disk with :func:`measure`'s choices; later calls cost a look-up.

    Parameters
    ----------
    op, spec, include_torch
        As for :func:`estimate`.
    may_time : callable, optional
        Returns False when the call may not be timed (``harness.api.resolve`` passes a memory
        check); None: no check.

    Returns
    -------
    Choice or None
        :func:`estimate`'s choice (``method='estimate'``) when there is no tie to break, or
        breaking it is off (:data:`TIE_BREAK`), too costly (:data:`TIE_MAX_S`) or not allowed;
        else ``method='estimate+measure'`` with the measured seconds of the close candidates.
    """
    choice = estimate(op, spec, include_torch)
    if choice is None or not TIE_BREAK:
        return choice
    key = (op, spec, include_torch, _thread_token())
    try:
        return _TIES[key]
    except KeyError:
        pass
    except TypeError:  # unhashable: the estimate alone
        return choice
    close = tie_to_break(choice)
    if not close or (may_time is not None and not may_time()):
        decided = choice
    else:
        decided = _tie_break(op, spec, include_torch, close) or choice
    if len(_TIES) >= _DECISIONS_MAX:
        _TIES.clear()
    _TIES[key] = decided
    return decided


def _tie_break(op: str, spec, include_torch: bool, close: list[str]) -> Choice | None:
    """The fastest of ``close`` timed on ``spec`` (memory, then disk, then a measurement); None when
    none could be timed."""
    key, spec_key = cache_key(), "tie:" + ",".join(close) + "|" + _spec_key(op, spec, include_torch)
    hit = _recall(key, spec_key, "estimate+measure", names=close)
    if hit is not None:
        return hit
    try:
        timed = time_close_calls(op, spec, close)
    except (MemoryError, ResourceLimit):  # the call fits, the timing of several does not
        return None
    if not timed.seconds:
        return None
    choice = Choice(min(timed.seconds, key=timed.seconds.get), timed.seconds, "estimate+measure", False)
    return _remember(key, spec_key, choice, use_disk=timed.contended is None)


class TieTiming(NamedTuple):
    """What a tie-break measured: seconds per call of each close candidate, and why the cores
    counted as contended while it ran (None: they did not, or it could not be told)."""

    seconds: dict
    contended: str | None = None


def time_close_calls(op: str, spec, names) -> TieTiming:
    """Seconds per call of each of ``names`` on ``spec``, as a tie-break times them: in
    :data:`TIE_ROUNDS` rounds, the order reversed each time, per candidate one untimed call, a
    wait for the other thread pools to go idle, a probe of the cores' speed, then best of at least
    :data:`TIE_MIN_RUNS` within :data:`TIE_BUDGET_S`; the best over rounds. Timed again, up to
    :data:`TIE_ATTEMPTS` attempts, while a probe finds a contended core. When the fastest is not
    ``names[0]`` (the estimate's pick), those two are timed once more and keep their best: a core
    slowed between two probes can flip a close call, and it should take two timings to overturn
    the model.

    Timed straight after another library, a candidate is timed in that library's spinning pool:
    numba_cpu right after im2col (OpenBLAS's workers spinning) took 16 ms on the ResNet-50 stem
    where it takes 0.8-0.9 ms, and 9 ms on an 11x11 layer where it takes 4.9 ms (2 threads)."""
    seconds: dict[str, float] = {}
    contended = None
    for _ in range(TIE_ATTEMPTS):
        contended = _time_round(op, spec, names, seconds)
        if contended is None or len(seconds) < 2:
            break
    first = names[0] if names else None
    if len(seconds) > 1 and first in seconds and min(seconds, key=seconds.get) != first:
        # a timing that overturns the estimate's pick is confirmed: the two are timed once more
        _time_round(op, spec, [first, min(seconds, key=seconds.get)], seconds)
    if len(seconds) > 1:
        winner = min(seconds, key=seconds.get)
        case = prepare(get_backend(winner), op, spec, seed=0)
        call_for(case.fn, case.args, case.sync, TIE_SETTLE_S)
        release_inputs(case)
    return TieTiming(seconds, contended)


def _time_round(op: str, spec, names, seconds: dict) -> str | None:
    """One attempt of a tie-break (:data:`TIE_ROUNDS` rounds over ``names``), each candidate's best kept
    in ``seconds``; returns why the machine was not free meanwhile (None: it was;
    :class:`harness.support.core_speed.FreeWatch`: a core ran contended, or other processes wanted ours)."""
    watch = core_speed.FreeWatch()
    watch.start()
    order = list(names)
    for _ in range(TIE_ROUNDS):  # the winner is not woken between rounds: the next round's first would follow it
        for name, t in _time_candidates(op, spec, order, TIE_BUDGET_S, min_runs=TIE_MIN_RUNS,
                                        settle_s=TIE_SETTLE_S, wake_winner=False, quiet=True,
                                        watch=watch).items():
            seconds[name] = min(t, seconds.get(name, math.inf))
        order.reverse()
    return watch.reason()  # after the last candidate (its probe waits for the pools)


def _estimate(op: str, spec, include_torch: bool) -> Choice | None:
    seconds = {}
    for name in candidates(op, spec, include_torch):
        t = predict(name, op, spec)
        if t is not None:
            seconds[name] = t
    if not seconds:
        return None
    return Choice(backend=min(seconds, key=seconds.get), seconds=seconds, method="estimate")


def _model_state() -> tuple:
    return CALIBRATION_PATH, _GENERATION, _registry.REVISION


def decision_state() -> tuple:
    """What a remembered decision depends on besides the call: the model in force (calibration file
    setting, :func:`forget` generation, registered backends) and the thread counts. Callers that
    remember something per decision (``harness.api.resolve.auto_backend``) key it with this."""
    return _model_state() + (TIE_BREAK,) + _thread_token()


def _thread_token() -> tuple:
    """The thread count in force, as cheaply as it can be read: the count convbench's own
    ``harness.support.timing.set_threads`` (``pinned_threads``) put in force for BLAS, torch and
    numba alike (a list read); else torch's (0.05-0.7 us), which a caller may set directly;
    reading BLAS's or numba's costs microseconds each (threadpoolctl, numba's launch check), more
    than the look-up it keys. A count changed directly in a library while convbench's pin is in
    force keeps the decisions made for the pinned count. Without torch loaded, numba's (or none)."""
    pinned = threads_set()
    if pinned is not None:
        return (pinned,)
    torch = sys.modules.get("torch")
    if torch is not None:
        return (torch.get_num_threads(),)
    numba = sys.modules.get("numba")
    return (numba.get_num_threads(),) if numba is not None else ()


#: Weight of the prior in :func:`fit`, in samples: each constant the backend ships is pulled toward
#: (its value x the backend's overall speed on this machine) as strongly as this many samples'
#: squared relative error. With 10-30 probe layers per backend and 5-8 features, least squares alone
#: fitted some constants to zero from two or three samples (winograd's transforms; a fold without
#: a suite's layers), and a held-out layer then got a pick 1.5-1.7x slower than the best.
PRIOR_WEIGHT = 1.0


def fit(samples, prior_weight: float | None = None) -> dict[str, dict[str, float]]:
    """Cost-model constants from measured times: ``{backend: {feature: seconds per unit}}``.

    ``samples`` is an iterable of ``(backend, op, spec, seconds)``. Per backend, non-negative
    least squares on the *relative* error ``(predicted - measured) / measured``, so that small
    layers count as much as large ones (a choice is as wrong on a 0.1 ms layer as on a 1 s one).

    With ``prior_weight`` > 0, the backend's shipped constants (``CostModel.defaults``) act as a
    prior: they are first scaled by one factor to this machine (the median of measured over
    shipped-predicted time), and each shipped, non-zero constant adds a row asking the fitted one
    to equal its scaled value, weighted like ``prior_weight`` samples. Features the backend ships
    no constant for are fitted from the samples alone. ``prior_weight=0``: plain least squares;
    None: :data:`PRIOR_WEIGHT`.
    """
    from scipy.optimize import nnls

    prior_weight = PRIOR_WEIGHT if prior_weight is None else prior_weight
    rows: dict[str, list] = {}
    for backend, op, spec, seconds in samples:
        counts = features(backend, op, spec)
        if counts is not None and seconds > 0 and math.isfinite(seconds):
            rows.setdefault(backend, []).append((counts, seconds))
    shipped = default_constants() if prior_weight > 0 else {}
    constants = {}
    for backend, data in rows.items():
        names = sorted({name for counts, _ in data for name in counts})
        A = np.array([[counts.get(n, 0.0) / t for n in names] for counts, t in data])
        b = np.ones(len(data))
        prior = _scaled_prior(shipped.get(backend, {}), data)
        picked = [(k, prior[n]) for k, n in enumerate(names) if prior.get(n, 0.0) > 0]
        if picked:
            extra = np.zeros((len(picked), len(names)))
            for row, (k, value) in enumerate(picked):
                extra[row, k] = math.sqrt(prior_weight) / value
            A = np.vstack([A, extra])
            b = np.concatenate([b, np.full(len(picked), math.sqrt(prior_weight))])
        scale = np.linalg.norm(A, axis=0)
        scale[scale == 0] = 1.0  # a feature that is always zero keeps a zero constant
        solution, _ = nnls(A / scale, b)
        constants[backend] = {n: float(c) for n, c in zip(names, solution / scale)}
    return constants


def _scaled_prior(shipped: dict, data) -> dict[str, float]:
    """The shipped constants times the median of measured / shipped-predicted time over ``data``
    (``{}`` when the shipped constants predict none of the samples)."""
    ratios = [t / p for counts, t in data
              if (p := sum(shipped.get(n, 0.0) * v for n, v in counts.items())) > 0]
    if not ratios:
        return {}
    factor = float(np.median(ratios))
    return {n: c * factor for n, c in shipped.items() if c > 0}


# -- measure -----------------------------------------------------------------------------
_MEMORY: dict[tuple[str, str], Choice] = {}


def measure(op: str, spec, include_torch: bool = False, budget_s: float = 0.05,
            use_disk: bool = True) -> Choice:
    """Time every candidate on ``spec`` once per distinct spec and return the fastest.

    Each candidate runs on seeded random inputs of the call's shape: one untimed call
    (compilation, first touch), then best of at least 3 runs within ``budget_s``. A candidate
    whose first call is over 3x the best time so far is not timed further. The winner and all
    times are kept in memory and on disk (see the module docstring); a later call with the
    same spec, machine, threads and versions returns them with ``cached=True``.

    Raises
    ------
    Unsupported
        When no candidate can run the call.
    """
    key, spec_key = cache_key(), _spec_key(op, spec, include_torch)
    hit = _recall(key, spec_key, "measure", use_disk)
    if hit is not None:
        return hit
    seconds = _time_candidates(op, spec, candidates(op, spec, include_torch), budget_s)
    if not seconds:
        raise Unsupported(f"no candidate backend can run {op} on {spec}")
    return _remember(key, spec_key, Choice(min(seconds, key=seconds.get), seconds, "measure", False), use_disk)


def _recall(key: str, spec_key: str, method: str, use_disk: bool = True, names=None) -> Choice | None:
    """A choice measured before for ``spec_key`` (this process's memory, else the disk cache), as a
    ``cached`` copy; with ``names``, one stored on disk counts only when it timed nothing else."""
    hit = _MEMORY.get((key, spec_key))
    if hit is None and use_disk:
        stored = _read_disk(key).get(spec_key)
        if stored is not None and (names is None or set(stored["seconds"]) <= set(names)):
            hit = _MEMORY[(key, spec_key)] = Choice(stored["backend"], stored["seconds"], method, True)
    return None if hit is None else Choice(hit.backend, dict(hit.seconds), method, True)


def _remember(key: str, spec_key: str, choice: Choice, use_disk: bool = True) -> Choice:
    """Keep a measured ``choice`` in memory and (``use_disk``) in the disk cache; returns it."""
    _MEMORY[(key, spec_key)] = choice
    if use_disk:
        _write_disk(key, spec_key, choice)
    return choice


def _time_candidates(op, spec, names, budget_s, min_runs: int = 3, settle_s: float = 0.1,
                     wake_winner: bool = True, quiet: bool = False, watch=None) -> dict[str, float]:
    """Best-of times per call of ``names`` on ``spec``; with ``wake_winner``, the fastest one's case runs
    last again, for ``settle_s``, so that its thread pools are the ones awake when the caller goes on.
    With ``quiet``, each candidate first waits for the thread pools to go idle (:func:`let_pools_sleep`),
    and then probes the cores for ``watch`` (a :class:`harness.support.core_speed.FreeWatch`), when given.

    A candidate whose first call takes over 3x the best so far is called once more before it is kept
    as clearly slower: the first call into one library's thread pool right after another's ran
    (OpenBLAS after numba's or torch's OpenMP pool) took 19-25 ms where it takes 1.3-2.4 ms warm
    (a 128-channel 28x28 3x3 layer, 2 threads, this machine), and it would have decided alone.
    """
    steady_heap()  # the heap the benchmarks time in (harness.support.allocator)
    seconds, cases = {}, {}
    for name in names:
        try:
            case = prepare(get_backend(name), op, spec, seed=0)
            time_once(case.fn, case.args, case.sync)  # compilation and first touch, never counted
            if quiet:
                let_pools_sleep()
                if watch is not None:
                    watch.probe()
        except Unsupported:  # a limit found only at run time (e.g. winograd's kernel size)
            continue
        cases[name] = case
        first = time_once(case.fn, case.args, case.sync)
        if first > 3 * min(seconds.values(), default=math.inf):
            first = min(first, time_once(case.fn, case.args, case.sync))
            if first > 3 * min(seconds.values()):
                seconds[name] = first  # clearly slower: not worth the full timing
                continue
        seconds[name] = time_call(case.fn, case.args, sync=case.sync, budget_s=budget_s, min_runs=min_runs,
                                  warmup=0, settle_s=settle_s, first_call_s=first).min
    if len(cases) > 1 and wake_winner:  # its thread pools are then the awake ones
        case = cases[min(seconds, key=seconds.get)]
        call_for(case.fn, case.args, case.sync, settle_s)
    for case in cases.values():
        release_inputs(case)
    return seconds


def _spec_key(op: str, spec, include_torch: bool) -> str:
    return f"{op}|{spec!r}|torch={include_torch}"


def cache_key(threads: bool = True) -> str:
    """A short hash of everything a cached choice depends on: machine, versions, backend code,
    and (``threads=True``) the thread counts in force; a calibration is kept across thread
    counts, since it ranks backends rather than predicting absolute times."""
    # every library whose BLAS joins the fingerprint is loaded first, so that the key does not depend
    # on what the process happened to import before (a calibration made by `convbench calibrate` was
    # not found by a later benchmark process that had not imported torch yet: another BLAS list)
    versions = _versions()  # imports scipy, numba and torch
    try:  # scipy's own BLAS joins the fingerprint once numba or scipy loads it: load it first
        import scipy.linalg  # noqa: F401
    except ImportError:
        pass
    machine = _machine.fingerprint()  # looked up at call time: tests stand in another machine
    machine["blas"] = sorted({tuple(entry) for entry in machine["blas"]})
    if threads:
        machine["threads"] = _threads()
    else:
        machine["blas"] = [entry[:3] for entry in machine["blas"]]  # (api, version, kernel): no thread count
        machine.pop("usable_cpus", None)
    blob = json.dumps({"machine": machine, "versions": versions, "code": _code_hash()},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@lru_cache(maxsize=1)
def _versions() -> dict:
    out = {"python": platform.python_version(), "numpy": np.__version__}
    for name in ("scipy", "numba", "torch"):
        try:
            out[name] = getattr(__import__(name), "__version__", None)
        except ImportError:
            continue
    return out


def _threads() -> dict:
    """Thread counts in force for BLAS, numba and torch."""
    return set_threads(None)[0]


def _code_hash() -> str:
    """A hash of every registered backend's name, ops and implementation source files (plug-ins
    included), so a choice is never trusted after a backend's code changed or it is gone."""
    return _hash_sources(tuple((b.name, repr(sorted(b.ops)), tuple(sorted(_source_files(b)))) for b in backends()))


@lru_cache(maxsize=8)
def _hash_sources(declared: tuple) -> str:
    digest = hashlib.sha256()
    for name, ops, files in declared:
        digest.update(f"{name}|{ops}".encode())
        for path in files:
            try:
                digest.update(path.encode() + Path(path).read_bytes())
            except OSError:
                digest.update(path.encode())
    return digest.hexdigest()[:16]


def _source_files(declared) -> set[str]:
    """The files a backend's op implementations live in, and every sibling module of theirs."""
    files = set()
    for fn in declared.ops.values():
        try:
            path = inspect.getsourcefile(inspect.unwrap(fn))
        except TypeError:  # a builtin or C callable: its module's file, if any
            path = getattr(inspect.getmodule(fn), "__file__", None)
        if path:
            files.add(str(Path(path).resolve()))
    return {str(p) for f in files for p in Path(f).parent.glob("*.py")}


def cache_dir() -> Path:
    """Where measured choices are kept: ``$CONVBENCH_CACHE_DIR``, else ``~/.cache/convbench``."""
    return Path(os.environ.get("CONVBENCH_CACHE_DIR") or Path.home() / ".cache" / "convbench")


def _read_disk(key: str) -> dict:
    """The cached choices for ``key``; an unreadable or malformed file is ignored with one warning."""
    path = cache_dir() / f"autoselect-{key}.json"
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        warnings.warn(f"ignoring unreadable auto cache {path} ({exc}); it will be rebuilt", stacklevel=2)
        return {}
    entries = saved.get("entries") if isinstance(saved, dict) else None
    if not isinstance(entries, dict) or saved.get("key") != key:
        warnings.warn(f"ignoring malformed auto cache {path}; it will be rebuilt", stacklevel=2)
        return {}
    known = {b.name for b in backends()}
    return {spec_key: entry for spec_key, entry in entries.items()
            if isinstance(entry, dict) and entry.get("backend") in known and isinstance(entry.get("seconds"), dict)}


def _write_disk(key: str, spec_key: str, choice: Choice) -> None:
    entries = _read_disk(key)
    entries[spec_key] = {"backend": choice.backend, "seconds": choice.seconds}
    try:
        write_atomic(cache_dir() / f"autoselect-{key}.json", json.dumps({"key": key, "entries": entries}, indent=1))
    except OSError:
        pass  # a read-only home only loses the cache, never the choice
