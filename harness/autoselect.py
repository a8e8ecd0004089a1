"""Choosing a backend per call, as scipy's ``choose_conv_method`` and cuDNN's find mode do.

Two functions, one return type (:class:`Choice`):

* :func:`estimate` predicts each candidate's time from operation counts of the call times
  per-backend constants fitted on this machine (see :data:`DEFAULT_MODEL` and
  ``convbench calibrate``) and picks the smallest. Nothing runs; it costs microseconds, so
  ``backend="auto"`` uses it on every call (``harness.api.resolve_backend``).
* :func:`measure` runs every candidate on the call's shape (seeded random inputs), once per
  distinct spec, and caches the winner in memory and on disk
  (``~/.cache/convbench/autoselect-<key>.json``, or ``$CONVBENCH_CACHE_DIR``). The file is
  keyed by the machine fingerprint (:func:`harness.machine.fingerprint`: CPU, BLAS kernel and
  threads, environment overrides), the library versions and a hash of the backends' source,
  so it is never trusted on another machine, thread count or code version; deleting it only
  costs a re-measurement.

Candidates are the available backends that support the call, except the ``naive`` reference
and the torch baselines: ``include_torch=True`` adds those, so that "auto beats torch" is never
torch beating itself.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from .conv_spec import Conv2dSpec
from .errors import Unsupported
from .registry import backends

#: Backends never chosen: the float64 reference (correct, and orders of magnitude slower).
REFERENCE = frozenset({"naive"})
#: The baselines ``auto`` is compared with; candidates only with ``include_torch=True``.
BASELINES = frozenset({"torch", "torch_cuda"})

#: Per-backend cost-model constants: seconds per unit of each feature of :func:`features`.
#: Fitted by ``convbench calibrate --threads 1`` (non-negative least squares on relative
#: error) from ``convbench bench --suite resnet50,vgg16,mobilenetv2,large_kernels --batch 1
#: --threads 1`` on this project's machine (2-core AMD Zen 5 VM, OpenBLAS with the
#: OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE overrides of the environment, numpy 2.4, scipy, numba
#: 0.68, torch 2.13 CPU), 2026-11-25: over those 72 layers the fit's median error is 1.13x
#: (im2col) to 1.46x (fft), and its picks are the measured fastest on 66 and within 1.8% on
#: geomean (in-sample). A feature missing below was fitted to 0. A calibration file written by
#: ``convbench calibrate`` for this machine (``reports/autoselect-calibration.json``) replaces
#: them; see :func:`model`.
DEFAULT_MODEL: dict[str, dict[str, float]] = {
    "fft": {"call": 0.000129, "cmacs": 3.41e-10, "fft": 4.78e-10, "groups": 3e-10, "outputs": 8.17e-10},
    "im2col": {"cols": 3.25e-10, "groups": 3.86e-07, "macs": 2.25e-11, "thin_macs": 4.17e-11},
    "numba_cpu": {"call": 7.86e-05, "inputs": 2.01e-10, "macs": 2.64e-11, "thin_macs": 4.06e-11},
    "torch": {"call": 3.23e-05, "inputs": 1.58e-10, "macs": 1.98e-11, "outputs": 8.4e-11, "thin_macs": 2.38e-11},
    "winograd": {"groups": 4.74e-08, "macs": 4.06e-11, "thin_macs": 1.08e-09, "transforms": 7.75e-11, "weights": 1.08e-10},
}

CALIBRATION_PATH = Path("reports/autoselect-calibration.json")


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
    """Available backends that declare support for ``op`` on ``spec``, minus the excluded ones."""
    skip = REFERENCE | (frozenset() if include_torch else BASELINES)
    return [b.name for b in backends()
            if b.name not in skip and b.available and b.unsupported_reason(op, spec) is None]


# -- estimate ----------------------------------------------------------------------------
def features(backend: str, op: str, spec) -> dict[str, float] | None:
    """Operation counts that drive ``backend``'s time on ``op``; None when there is no model.

    Every model has a per-call term (``call``) and counts of its main work, in elements or
    multiply-adds; ``thin`` counts multiply-adds of groups with fewer than 8 output or input
    channels (depthwise), which no GEMM or vector loop runs at full rate.
    """
    if op != "conv2d" or not isinstance(spec, Conv2dSpec):
        return None
    G = spec.groups
    Og, Cg = spec.O // G, spec.C // G
    outputs = spec.N * spec.O * spec.OH * spec.OW
    macs = outputs * Cg * spec.KH * spec.KW
    thin = Og < 8 or Cg < 8
    base = {"call": 1.0, "macs": 0.0 if thin else macs, "thin_macs": macs if thin else 0.0}
    if backend == "im2col":
        plain = spec.KH == spec.KW == 1 and spec.stride == (1, 1) and not any(spec.padding)
        cols = 0.0 if plain else spec.N * spec.C * spec.KH * spec.KW * spec.OH * spec.OW
        return {**base, "groups": float(G), "cols": float(cols)}
    if backend == "numba_cpu":
        (sh, sw), (top, bottom, left, right) = spec.stride, spec.padding
        padded = spec.N * spec.C * (spec.H + top + bottom) * (spec.W + left + right)
        return {**base, "inputs": float(padded), "outputs": float(outputs)}
    if backend in BASELINES - {"torch_cuda"}:
        return {**base, "inputs": float(spec.N * spec.C * spec.H * spec.W), "outputs": float(outputs)}
    if backend == "winograd":
        return _winograd_features(spec, base)
    if backend == "fft":
        return _fft_features(spec)
    return None


def _winograd_features(spec, base) -> dict[str, float] | None:
    from impls.winograd import choose_tile, unsupported_reason

    if unsupported_reason(spec):
        return None
    m = choose_tile(spec)
    a2 = (m + 2) ** 2
    tiles = spec.N * -(-spec.OH // m) * -(-spec.OW // m)
    G = spec.groups
    Og, Cg = spec.O // G, spec.C // G
    gemm = tiles * a2 * spec.O * Cg  # the element-wise stage: alpha**2 GEMMs per group
    thin = Og < 8 or Cg < 8
    return {
        "call": 1.0,
        "macs": 0.0 if thin else float(gemm),
        "thin_macs": float(gemm) if thin else 0.0,
        "transforms": float(tiles * a2 * (a2 * spec.C + m * m * spec.O)),
        "weights": float(a2 * 9 * spec.O * Cg),
        "groups": float(G * a2),
    }


def _fft_features(spec) -> dict[str, float]:
    from impls.fft import plan, stride1_spec

    s1 = stride1_spec(spec)  # after splitting stride phases into channels (impls.fft.polyphase)
    p = plan(s1)
    cols = max(spec.N, 1) * p.nth * p.ntw
    L = p.Lh * p.Lw
    Cg = s1.C // s1.groups
    return {
        "call": 1.0,
        "fft": float((cols * (s1.C + s1.O) + s1.O * Cg) * L * math.log2(max(L, 2))),
        "cmacs": float(cols * p.n_freq * s1.O * Cg),
        "groups": float(s1.groups * p.n_freq),
        "outputs": float(spec.N * spec.O * spec.OH * spec.OW),
    }


def model() -> dict:
    """The cost-model constants in force: this machine's calibration file, else the defaults.

    Returns ``{"source": str, "constants": {backend: {feature: seconds per unit}}}``.
    """
    saved = _calibration(str(CALIBRATION_PATH.resolve()), _mtime(CALIBRATION_PATH))
    if saved is not None:
        return saved
    return {"source": "harness.autoselect.DEFAULT_MODEL", "constants": DEFAULT_MODEL}


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
        if saved.get("key") == cache_key(threads=False):
            return {"source": f"{path} (calibrated {saved.get('calibrated_at')})", "constants": saved["constants"]}
    except (OSError, ValueError, KeyError):
        pass  # unreadable or foreign: the defaults apply
    return None


def predict(backend: str, op: str, spec, constants: dict | None = None) -> float | None:
    """Estimated seconds per call of ``backend`` on ``op`` / ``spec``; None without a model."""
    constants = model()["constants"] if constants is None else constants
    counts = features(backend, op, spec)
    if counts is None or backend not in constants:
        return None
    fitted = constants[backend]
    return float(sum(fitted.get(name, 0.0) * value for name, value in counts.items()))


def estimate(op: str, spec, include_torch: bool = False) -> Choice | None:
    """The candidate with the smallest predicted time (nothing is run).

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
    seconds = {}
    for name in candidates(op, spec, include_torch):
        t = predict(name, op, spec)
        if t is not None:
            seconds[name] = t
    if not seconds:
        return None
    return Choice(backend=min(seconds, key=seconds.get), seconds=seconds, method="estimate")


def fit(samples) -> dict[str, dict[str, float]]:
    """Cost-model constants from measured times: ``{backend: {feature: seconds per unit}}``.

    ``samples`` is an iterable of ``(backend, op, spec, seconds)``. Per backend, non-negative
    least squares on the *relative* error ``(predicted - measured) / measured``, so that small
    layers count as much as large ones (a choice is as wrong on a 0.1 ms layer as on a 1 s one).
    """
    from scipy.optimize import nnls

    rows: dict[str, list] = {}
    for backend, op, spec, seconds in samples:
        counts = features(backend, op, spec)
        if counts is not None and seconds > 0 and math.isfinite(seconds):
            rows.setdefault(backend, []).append((counts, seconds))
    constants = {}
    for backend, data in rows.items():
        names = sorted({name for counts, _ in data for name in counts})
        A = np.array([[counts.get(n, 0.0) / t for n in names] for counts, t in data])
        scale = np.linalg.norm(A, axis=0)
        scale[scale == 0] = 1.0  # a feature that is always zero keeps a zero constant
        solution, _ = nnls(A / scale, np.ones(len(data)))
        constants[backend] = {n: float(c) for n, c in zip(names, solution / scale)}
    return constants


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
    hit = _MEMORY.get((key, spec_key))
    if hit is None and use_disk:
        stored = _read_disk(key).get(spec_key)
        if stored is not None:
            hit = _MEMORY[(key, spec_key)] = Choice(stored["backend"], stored["seconds"], "measure", True)
    if hit is not None:
        return Choice(hit.backend, dict(hit.seconds), "measure", True)
    seconds = _time_candidates(op, spec, candidates(op, spec, include_torch), budget_s)
    if not seconds:
        raise Unsupported(f"no candidate backend can run {op} on {spec}")
    choice = Choice(min(seconds, key=seconds.get), seconds, "measure", False)
    _MEMORY[(key, spec_key)] = choice
    if use_disk:
        _write_disk(key, spec_key, choice)
    return choice


def _time_candidates(op, spec, names, budget_s) -> dict[str, float]:
    from .bench import prepare  # bench resolves 'auto' through this module
    from .timing import time_call, time_once

    seconds = {}
    for name in names:
        try:
            case = prepare(name, op, spec, seed=0, limit_s=None)
            time_once(case.fn, case.args, case.sync)  # compilation and first touch, never counted
        except Unsupported:  # a limit found only at run time (e.g. winograd's kernel size)
            continue
        first = time_once(case.fn, case.args, case.sync)
        if first > 3 * min(seconds.values(), default=math.inf):
            seconds[name] = first  # clearly slower: not worth the full timing
            continue
        seconds[name] = time_call(case.fn, case.args, sync=case.sync, budget_s=budget_s, min_runs=3,
                                  warmup=0, first_call_s=first).min
    return seconds


def _spec_key(op: str, spec, include_torch: bool) -> str:
    return f"{op}|{spec!r}|torch={include_torch}"


def cache_key(threads: bool = True) -> str:
    """A short hash of everything a cached choice depends on: machine, versions, backend code,
    and (``threads=True``) the thread counts in force; a calibration is kept across thread
    counts, since it ranks backends rather than predicting absolute times."""
    from .machine import fingerprint

    try:  # scipy's own BLAS joins the fingerprint once numba or scipy loads it: load it first
        import scipy.linalg  # noqa: F401
    except ImportError:
        pass
    machine = fingerprint()
    if threads:
        machine["threads"] = _threads()
    else:
        machine["blas"] = [entry[:3] for entry in machine["blas"]]  # (api, version, kernel): no thread count
        machine.pop("usable_cpus", None)
    blob = json.dumps({"machine": machine, "versions": _versions(), "code": _code_hash()},
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
    from .timing import set_threads

    return set_threads(None)[0]


@lru_cache(maxsize=1)
def _code_hash() -> str:
    import impls

    digest = hashlib.sha256()
    for path in sorted(Path(impls.__path__[0]).glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    """Where measured choices are kept: ``$CONVBENCH_CACHE_DIR``, else ``~/.cache/convbench``."""
    return Path(os.environ.get("CONVBENCH_CACHE_DIR") or Path.home() / ".cache" / "convbench")


def _read_disk(key: str) -> dict:
    path = cache_dir() / f"autoselect-{key}.json"
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return saved.get("entries", {}) if saved.get("key") == key else {}


def _write_disk(key: str, spec_key: str, choice: Choice) -> None:
    from .results_io import write_atomic

    entries = _read_disk(key)
    entries[spec_key] = {"backend": choice.backend, "seconds": choice.seconds}
    try:
        write_atomic(cache_dir() / f"autoselect-{key}.json", json.dumps({"key": key, "entries": entries}, indent=1))
    except OSError:
        pass  # a read-only home only loses the cache, never the choice
