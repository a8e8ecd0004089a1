"""The one dispatch path: every call of every op on every backend goes through :func:`run_op`.

In order: the backend must be available and support the call (``Unsupported`` with the reason
otherwise), the call must fit in memory (``ResourceLimit`` before anything is allocated), the
arrays reach the backend as read-only views (so no backend can modify the caller's data), and
whatever it returns is checked against the op record's expected outputs (``BackendError``).
Public functions, the verifier, the lowerings' sub-calls and ``auto``'s measurements all use it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from harness.errors import BackendError, ResourceLimit
from harness.ops.table import op_info


def read_only(a):
    """A view that cannot be written through (None stays None)."""
    if a is None:
        return None
    view = a.view()
    view.flags.writeable = False
    return view


_MEMORY_CACHE = {"at": -1.0, "bytes": None}
_MEMORY_TTL_S = 0.5


def available_memory_bytes() -> int | None:
    """MemAvailable, capped by a cgroup memory limit when one is set; None when unknown.

    Read at most every half second: lowerings call the guard once per sub-call.
    """
    now = time.monotonic()
    if now - _MEMORY_CACHE["at"] < _MEMORY_TTL_S:
        return _MEMORY_CACHE["bytes"]
    limits = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            text = f.read().strip()
        if text.isdigit():
            limits.append(int(text))
    except OSError:
        pass
    _MEMORY_CACHE.update(at=now, bytes=min(limits) if limits else None)
    return _MEMORY_CACHE["bytes"]


def memory_bytes(declared, op: str, spec) -> int:
    """Bytes a call allocates: its outputs, a padded input copy, and the backend's workspace."""
    return op_info(op).memory_bytes(spec) + int(declared.workspace_bytes(op, spec))


def check_memory(declared, op: str, spec, extra_bytes: int = 0) -> None:
    """Refuse, before allocating anything, a call that cannot fit in available memory."""
    need = memory_bytes(declared, op, spec) + int(extra_bytes)
    have = available_memory_bytes()
    if have is not None and need > have:
        raise ResourceLimit(
            f"{op} on {declared.name!r} would need about {need / 2**30:.1f} GiB (outputs, padded input and "
            f"workspace) but only {have / 2**30:.1f} GiB is available"
        )


def check_outputs(declared, op: str, spec, out) -> tuple:
    """The backend's return value as a tuple, checked against the record's expected outputs."""
    outs = out if isinstance(out, tuple) else (out,)
    expected = op_info(op).outputs(spec)
    if len(outs) != len(expected):
        raise BackendError(f"backend {declared.name!r} {op} returned {len(outs)} outputs, expected {len(expected)}")
    for i, (y, want) in enumerate(zip(outs, expected)):
        label = f"{op} output {i}" if len(expected) > 1 else op
        if want is None:
            if y is not None:
                raise BackendError(f"backend {declared.name!r} {label} should be None")
            continue
        shape, dtype = want
        if not isinstance(y, np.ndarray):
            raise BackendError(f"backend {declared.name!r} {label} returned {type(y).__name__}, not a numpy.ndarray")
        if y.shape != tuple(shape):
            raise BackendError(f"backend {declared.name!r} {label} returned shape {y.shape}, expected {tuple(shape)}")
        if y.dtype.name != dtype:
            raise BackendError(f"backend {declared.name!r} {label} returned dtype {y.dtype}, expected {dtype}")
    return outs


def run_op(declared, op: str, spec, *arrays) -> tuple:
    """Call ``declared``'s ``op`` on checked, batched (4-D) arrays; a tuple of its checked outputs."""
    fn = declared.check(op, spec)
    check_memory(declared, op, spec)
    return check_outputs(declared, op, spec, fn(*[read_only(a) for a in arrays], spec))


def run_conv2d(declared, x, w, bias, spec, batched=True) -> np.ndarray:
    """conv2d through :func:`run_op`, for batched or unbatched ``x``."""
    (y,) = run_op(declared, "conv2d", spec, x if batched else x[np.newaxis], w, bias)
    return y if batched else y[0]


def run_case(declared, op: str, spec, batched: bool, arrays) -> tuple:
    """Run ``op`` on arrays as a user passes them (batched or not); the non-None outputs.

    Unbatched arrays gain the batch axis the backend expects (on the op's batched inputs) and
    lose it again on its batched outputs.
    """
    info = op_info(op)
    args = [a if batched or a is None or i not in info.batched_inputs else a[np.newaxis]
            for i, a in enumerate(arrays)]
    outs = run_op(declared, op, spec, *args)
    return tuple(y if batched or i not in info.batched_outputs else y[0]
                 for i, y in enumerate(outs) if y is not None)


@dataclass(frozen=True)
class Prepared:
    """A call ready to time: ``fn(*args)`` runs the op; ``sync`` waits for the device;
    ``release()`` makes the backend forget what it kept from these inputs (``Backend.release``)."""

    fn: object
    args: tuple
    sync: object
    release: object = None


def release(prepared) -> None:
    """The backend forgets what it kept from a timing's seeded inputs (the ``release`` of a
    :class:`Prepared` or a ``harness.bench.paired.Contender``, where the case has one): no caller
    passes them again, and winograd's weight cache would otherwise hold one entry per timed layer."""
    forget = getattr(prepared, "release", None)
    if forget is not None:
        forget()


def prepare(declared, op: str, spec, seed: int = 0) -> Prepared:
    """The backend's implementation and seeded, read-only inputs for timing ``op`` on ``spec``.

    Raises ``Unsupported`` with the reason (unavailable, op or feature missing, no benchmark
    inputs for the op) and ``ResourceLimit`` before generating inputs that would not fit.
    """
    from harness.errors import Unsupported

    info = op_info(op)
    fn = declared.check(op, spec)
    if info.bench_inputs is None:
        raise Unsupported(f"{op} has no benchmark inputs (its op record declares none)")
    # the inputs are drawn in float64 and cast: count that temporary with them
    inputs = sum(int(np.prod(getattr(spec, f"{name}_shape", ()), dtype=np.float64)) for name in ("x", "w"))
    check_memory(declared, op, spec, extra_bytes=inputs * (8 + np.dtype(spec.dtype).itemsize))
    arrays = info.bench_inputs(spec, np.random.default_rng(seed))
    args = (*[read_only(a) for a in arrays], spec)
    return Prepared(fn=fn, args=args, sync=declared.sync, release=lambda: declared.release(op, args))
