"""The backend registry: one frozen declaration per backend, one dict of them.

Built-in backends live in ``impls/<name>.py`` (file stem == backend name), each exposing a
module-level ``BACKEND`` declaration. Those modules import nothing heavy at import time;
``probe()`` says whether the backend can really run here, and returns the reason when not.
Users add their own with :func:`register_backend`.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Callable, Mapping

from harness.backend.dispatch import run_op
from harness.errors import Unsupported
from harness.ops.args import DTYPES, FLOAT_DTYPES
from harness.ops.table import OPS, table_version
from harness.ops.tolerance import ErrorModel, error_model as as_error_model


class _OpFeatures(Mapping):
    """Op name -> every feature a call of it can need: a live view of the op table."""

    def __getitem__(self, op):
        return OPS[op].features

    def __iter__(self):
        return iter(OPS)

    def __len__(self):
        return len(OPS)


#: Every op the harness knows, with every feature a call of it can need (from ``harness.ops.table``).
OP_FEATURES: Mapping[str, frozenset[str]] = _OpFeatures()

#: What a backend is to the harness: ``reference`` (the definition, used to verify the baseline;
#: never chosen by ``auto``), ``baseline`` (the float64 verification reference and what speed is
#: measured against; chosen by ``auto`` only on request) or ``candidate`` (everything else).
ROLES = ("reference", "baseline", "candidate")

#: Suffix of a backend's view with every lowerable op lowered (``get_backend("torch:lowered")``).
LOWERED_SUFFIX = ":lowered"

RESERVED_NAMES = frozenset({"auto", "all"})


def _always_available() -> str | None:
    return None


def _nothing_to_sync() -> None:
    return None


def _no_workspace(op, spec) -> int:
    return 0


def _no_limits(op, spec) -> str | None:
    return None


def _nothing_to_release(op, args) -> None:
    return None


@dataclass(frozen=True)
class CostModel:
    """How a backend costs, for ``backend="auto"``: ``features(op, spec)`` gives operation counts
    of a call (None: no model for it), and its time is their dot product with fitted constants
    (seconds per unit). ``defaults`` are the constants shipped with the backend, each with the
    measurement behind them in ``source``; ``convbench calibrate`` refits them per machine."""

    features: Callable[..., dict | None]
    defaults: Mapping[str, float] = field(default_factory=dict)
    source: str = ""


@dataclass(frozen=True)
class Backend:
    """What one backend is and what it can do.

    Attributes
    ----------
    name : str
        Registry key; for built-ins, the stem of its file in ``impls/``.
    device : str
        ``"cpu"`` or ``"cuda"``.
    ops : Mapping[str, Callable]
        Op name -> implementation. ``conv2d`` implementations are called as
        ``fn(x, w, bias, spec)`` with a 4-D ``x`` and a resolved
        :class:`~harness.ops.conv_spec.Conv2dSpec`; they return the (N, O, OH, OW) output.
        The other ops (arrays always batched, 4-D, read-only; ``spec`` last) are::

            conv_transpose2d(x, w, bias, ConvTranspose2dSpec) -> y
            conv2d_backward(x, w, grad_out, Conv2dSpec) -> (grad_input, grad_weight, grad_bias or None)
            max_pool2d(x, Pool2dSpec) -> (y, int64 indices or None)     avg_pool2d(x, Pool2dSpec) -> y
            adaptive_max_pool2d(x, AdaptivePool2dSpec) -> (y, indices or None)
            adaptive_avg_pool2d(x, AdaptivePool2dSpec) -> y
            max_pool2d_backward(x, grad_out, Pool2dSpec) -> grad_input   (avg_pool2d_backward alike)
            depthwise_separable_conv2d(x, w_dw, w_pw, b_dw, b_pw, DepthwiseSeparableSpec) -> y
            spatially_separable_conv2d(x, w_column, w_row, bias, SpatiallySeparableSpec) -> y

        Ops a backend leaves out but that ``harness.ops.lowering`` can build from its conv2d are
        added at registration (see ``lowered``).
    features : Mapping[str, frozenset[str]]
        Op name -> the optional features it implements (see ``OP_FEATURES``).
    dtypes : frozenset[str]
        Array dtypes it accepts (default float32 and float64). ``float16`` and ``bfloat16``
        only when declared: a call in a dtype the backend does not declare raises
        ``Unsupported`` rather than being silently up-cast.
    exact : bool
        True when integer-valued data whose partial sums are exactly representable gives a
        bit-exact result (direct summation, GEMM). False for FFT and Winograd, whose
        transforms round even then; the verifier then holds them to ``error_model``.
    deterministic : bool
        Same inputs give the same bits, run after run and for any thread count.
    nonfinite : bool
        NaN/Inf in the input reach exactly the outputs whose window holds them, as in torch.
        False for transform methods (FFT, Winograd) that smear one NaN over a whole tile.
    checks_finite : bool
        For a backend with ``nonfinite`` False: it reads every input value anyway and, under
        :func:`harness.support.finite_guard.requiring_finite`, raises ``NonFiniteData`` for NaN/Inf,
        so ``auto`` need not scan the data first (see that module).
    nonfinite_dtypes : frozenset[str] or None
        The dtypes ``nonfinite`` holds for (None: all it takes). torch's bfloat16 convolutions
        on the CPU turn some Inf into NaN and spread NaN beyond their windows, so torch leaves
        bfloat16 out; the verifier reports such cases *unsupported* with the reason.
    error_model : str
        Which rounding-error bound the verifier applies (see ``harness.ops.tolerance``).
    probe : Callable[[], str | None]
        Returns None when the backend can run here, else the reason it cannot.
    sync : Callable[[], None]
        Waits for queued work (asynchronous devices); benchmarks call it before stopping a clock.
    workspace_bytes : Callable[[op, spec], int]
        Memory the backend allocates beyond its output and a padded copy of the input
        (column buffers, spectra, float64 accumulators); used to refuse calls that cannot fit.
    limits : Callable[[op, spec], str | None]
        Limits beyond the declared features (e.g. Winograd: 3x3 kernels, stride 1 only):
        None when the call is within them, else the reason. ``unsupported_reason`` includes
        them, and the verifier draws its random cases within them.
    release : Callable[[op, args], None]
        Forgets what the backend derived from these inputs and kept (a cache of transformed
        weights, say): the harness calls it after timing seeded inputs that no caller will pass
        again (``auto``'s tie-break, ``harness.autoselect.measure``), so that they do not hold
        memory or push a caller's entries out. ``args`` are the op's arguments, ``spec`` last.
    auto_rank : int
        Preference of ``backend="auto"`` among backends that support a call (lower first).
    lowered : frozenset[str]
        The ops in ``ops`` that the harness provides by lowering onto the backend's own ops
        (see ``harness.ops.lowering``); filled in at registration, never declared by a backend.
    """

    name: str
    device: str
    ops: Mapping[str, Callable]
    features: Mapping[str, frozenset[str]]
    dtypes: frozenset[str] = frozenset(FLOAT_DTYPES)
    exact: bool = True
    deterministic: bool = True
    nonfinite: bool = True
    checks_finite: bool = False
    nonfinite_dtypes: frozenset[str] | None = None
    error_model: str | ErrorModel = "direct"
    role: str = "candidate"
    cost: CostModel | None = None
    probe: Callable[[], str | None] = _always_available
    sync: Callable[[], None] = _nothing_to_sync
    workspace_bytes: Callable[..., int] = _no_workspace
    limits: Callable[..., str | None] = _no_limits
    release: Callable[..., None] = _nothing_to_release
    auto_rank: int = 50
    description: str = ""
    origin: str = "builtin"
    import_error: str | None = field(default=None, repr=False)
    lowered: frozenset[str] = frozenset()

    @property
    def model(self) -> ErrorModel:
        """The error model the verifier holds this backend to."""
        return as_error_model(self.error_model)

    def propagates_nonfinite(self, dtype: str) -> bool:
        """NaN/Inf reach exactly the outputs whose window holds them, in ``dtype`` (see ``nonfinite``)."""
        return self.nonfinite and (self.nonfinite_dtypes is None or dtype in self.nonfinite_dtypes)

    def op_impl(self, op: str) -> str | None:
        """``"native"``, ``"lowered"`` (provided by the harness), or None when ``op`` is absent."""
        if op not in self.ops:
            return None
        return "lowered" if op in self.lowered else "native"

    @cached_property
    def reason(self) -> str | None:
        """Why the backend is unavailable here, or None when it is available."""
        if self.import_error:
            return self.import_error
        try:
            return self.probe()
        except Exception as exc:  # a probe that crashes is itself the reason
            return f"probe failed: {type(exc).__name__}: {exc}"

    @property
    def available(self) -> bool:
        return self.reason is None

    def unsupported_reason(self, op: str, spec) -> str | None:
        """None if this backend can run ``op`` on ``spec``, else why not."""
        if op not in self.ops:
            return f"backend {self.name!r} does not implement {op}"
        if spec.dtype not in self.dtypes:
            return f"backend {self.name!r} does not support dtype {spec.dtype}"
        missing = sorted(spec.features - self.features.get(op, frozenset()))
        if missing:
            return f"backend {self.name!r} does not support {op} feature(s): {', '.join(missing)}"
        return self.limits(op, spec)

    def check(self, op: str, spec) -> Callable:
        """The implementation of ``op`` for ``spec``; raises Unsupported with the reason."""
        if not self.available:
            raise Unsupported(f"backend {self.name!r} is unavailable: {self.reason}")
        why = self.unsupported_reason(op, spec)
        if why:
            raise Unsupported(why)
        return self.ops[op]


_REGISTRY: dict[str, Backend] = {}  # as declared (native ops only); lowerings are added by _complete()
_BUILTINS: dict[str, Backend] = {}  # as declared in impls/, restored when a user's replacement is removed
_COMPLETE: dict[str, tuple] = {}  # name -> (op table version, backend with lowerings, as declared)
_BUILTINS_LOADED = False
#: Bumped whenever the registered backends change (built-ins loaded, a registration, a removal), so
#: that a cache per set of backends (``harness.autoselect``'s decisions) checks one integer.
REVISION = 0


def _revised() -> None:
    global REVISION
    REVISION += 1


def _load_builtins() -> None:
    """Import each ``impls/<name>.py`` once and register its ``BACKEND``."""
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    import impls

    for module in sorted(pkgutil.iter_modules(impls.__path__), key=lambda m: m.name):
        if module.name.startswith("_"):
            continue
        try:
            declared = importlib.import_module(f"impls.{module.name}").BACKEND
        except Exception as exc:  # keep the backend listed, with the reason it cannot load
            declared = Backend(
                name=module.name,
                device="unknown",
                ops={},
                features={},
                import_error=f"impls/{module.name}.py failed to load: {type(exc).__name__}: {exc}",
            )
        if declared.name != module.name:
            raise RuntimeError(
                f"impls/{module.name}.py declares backend {declared.name!r}; "
                "a built-in backend's name must equal its file stem"
            )
        _check_declaration(declared)
        _BUILTINS[declared.name] = declared
        _REGISTRY.setdefault(declared.name, declared)
    _revised()


def _complete(name: str) -> Backend:
    """Backend ``name`` with the harness's lowerings for the op table as it is now: an op
    registered later (``harness.ops.table.register_op``) reaches every backend, built-ins too."""
    version = table_version()
    cached = _COMPLETE.get(name)
    if cached is None or cached[0] != version or cached[2] is not _REGISTRY[name]:
        cached = (version, with_lowerings(_REGISTRY[name]), _REGISTRY[name])
        _COMPLETE[name] = cached
    return cached[1]


def backends() -> list[Backend]:
    """Every registered backend, available or not (see ``Backend.reason``), by name."""
    _load_builtins()
    return [_complete(name) for name in sorted(_REGISTRY)]


def with_role(role: str, device: str = "cpu", exclude=()) -> str | None:
    """The first available backend (by name) with ``role`` on ``device``, other than ``exclude``."""
    for b in backends():
        if b.role == role and b.device == device and b.available and b.name not in exclude:
            return b.name
    return None


def get_backend(name) -> Backend:
    """The declaration registered under ``name``; ValueError lists the known names."""
    _load_builtins()
    if isinstance(name, Backend):
        return name
    if not isinstance(name, str):
        raise TypeError(f"backend must be a name (str), got {type(name).__name__}")
    if name.endswith(LOWERED_SUFFIX):
        return lowered_view(name[: -len(LOWERED_SUFFIX)])
    try:
        return _complete(name)
    except KeyError:
        known = ", ".join(["auto"] + sorted(_REGISTRY))
        raise ValueError(f"unknown backend {name!r}; known backends: {known}") from None


def lowered_view(name: str) -> Backend:
    """Backend ``name`` with every op that has a harness lowering lowered, natives set aside.

    ``get_backend("im2col:lowered")`` returns it; the verifier uses it to check the lowered
    path of a backend that also has a native one.
    """
    version = table_version()
    if name not in _LOWERED_VIEWS or _LOWERED_VIEWS[name][0] != version:
        _LOWERED_VIEWS[name] = (version, with_lowerings(get_backend(name), drop_native=True))
    return _LOWERED_VIEWS[name][1]


_LOWERED_VIEWS: dict[str, tuple[int, Backend]] = {}


def register_backend(
    name: str,
    *,
    device: str = "cpu",
    features=None,
    dtypes=FLOAT_DTYPES,
    exact: bool = False,
    deterministic: bool = False,
    nonfinite: bool = True,
    checks_finite: bool = False,
    error_model="direct",
    probe: Callable[[], str | None] | None = None,
    sync: Callable[[], None] | None = None,
    limits: Callable[..., str | None] | None = None,
    auto_rank: int = 100,
    role: str = "candidate",
    cost: CostModel | None = None,
    description: str = "",
    replace: bool = False,
    override_reference: bool = False,
    **ops: Callable,
) -> Backend:
    """Register a backend of your own, e.g. ``register_backend("mine", conv2d=my_conv2d)``.

    Parameters
    ----------
    name : str
        A Python identifier, not already registered (unless ``replace=True``).
    features : None, iterable of str, or mapping op -> iterable of str
        What each op implements. None claims every feature of every given op, so the
        verifier tests them all. An iterable applies to every given op.
    exact, deterministic : bool
        Claims the verifier holds you to (bit-exact integer results; same bits every run).
        Off by default: claim them once your backend earns them.
    nonfinite, checks_finite : bool
        Whether NaN/Inf reach exactly the outputs whose windows hold them, as in torch; if not,
        whether your op raises ``harness.support.finite_guard.NonFiniteData`` for them while
        ``finite_required()`` is on (so ``auto`` need not scan the data before calling it).
    limits : callable, optional
        ``limits(op, spec)`` -> None, or why a call outside your backend's limits (say, kernel
        sizes it does not handle) is unsupported; the verifier then draws cases within them.
    error_model : str, ErrorModel or callable
        The rounding your algorithm does: a registered model name (``direct``, ``fft``, ...),
        or your own ``ErrorModel`` / ``bound(spec, A)`` callable.
    role : str
        ``candidate`` (default). ``reference`` and ``baseline`` are what every other backend is
        judged and timed against: claiming one, or replacing a backend that holds one, needs
        ``override_reference=True``, and every verdict then names the override.
    cost : CostModel, optional
        Operation counts and constants so that ``backend="auto"`` can choose your backend.
    **ops : callable
        Op name -> implementation, e.g. ``conv2d=fn`` with ``fn(x, w, bias, spec)``.
    """
    _load_builtins()
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"backend name must be a Python identifier, got {name!r}")
    if name in RESERVED_NAMES:
        raise ValueError(f"backend name {name!r} is reserved")
    if name in _REGISTRY and not replace:
        raise ValueError(f"backend {name!r} is already registered (pass replace=True to replace it)")
    guarded = [r for r in (role, _REGISTRY[name].role if name in _REGISTRY else None) if r in ("reference", "baseline")]
    if guarded and not override_reference:
        raise ValueError(
            f"backend {name!r} would be a {guarded[0]}: every other backend is verified or timed against it. "
            "Pass override_reference=True to do so on purpose (every verdict will then say so)"
        )
    if not ops:
        raise ValueError(f"register_backend({name!r}) needs at least one op, e.g. conv2d=fn")
    for op, fn in ops.items():
        if op not in OP_FEATURES:
            raise ValueError(f"unknown op {op!r}; known ops: {', '.join(sorted(OP_FEATURES))}")
        if not callable(fn):
            raise TypeError(f"{op} implementation must be callable, got {type(fn).__name__}")
    declared = Backend(
        name=name,
        device=device,
        ops=dict(ops),
        features=_normalise_features(features, ops),
        dtypes=frozenset(dtypes),
        exact=exact,
        deterministic=deterministic,
        nonfinite=nonfinite,
        checks_finite=checks_finite and not nonfinite,
        error_model=error_model,
        probe=probe or _always_available,
        sync=sync or _nothing_to_sync,
        limits=limits or _no_limits,
        auto_rank=auto_rank,
        role=role,
        cost=cost,
        description=description,
        origin="user",
    )
    unknown = declared.dtypes - set(DTYPES)
    if unknown:
        raise ValueError(f"unsupported dtypes {sorted(unknown)}; choose from {DTYPES}")
    _check_declaration(declared)
    _REGISTRY[name] = declared
    _revised()
    _LOWERED_VIEWS.pop(name, None)
    declared = get_backend(name)
    if guarded:
        REFERENCE_OVERRIDES[name] = f"{guarded[0]} {name!r} overridden by a user registration"
    return declared


#: Reference and baseline backends replaced or added with ``override_reference=True``: name -> note.
#: The verifier prints these with every verdict.
REFERENCE_OVERRIDES: dict[str, str] = {}


def _check_declaration(declared: Backend) -> None:
    """Refuse a declaration whose role, error model or cost model is not one the harness knows."""
    if declared.role not in ROLES:
        raise ValueError(f"backend {declared.name!r}: role must be one of {ROLES}, got {declared.role!r}")
    as_error_model(declared.error_model)  # ValueError/TypeError naming the known models
    if declared.cost is not None and not isinstance(declared.cost, CostModel):
        raise TypeError(f"backend {declared.name!r}: cost must be a CostModel, got {type(declared.cost).__name__}")


def with_lowerings(declared: Backend, drop_native: bool = False) -> Backend:
    """``declared`` plus every op the harness can lower onto it (native ops are kept).

    The lowerings are the op records' (``harness.ops.table``), tried in table order (later ones
    may use earlier ones); each sub-call goes through :func:`harness.backend.dispatch.run_op`.
    With ``drop_native=True`` every op that has a lowering is lowered even where the backend
    has a native one: the ``<name>:lowered`` view that lets the verifier check both paths.
    """
    ops, features = dict(declared.ops), dict(declared.features)
    lowered = set(declared.lowered)
    if drop_native:
        for name, op in OPS.items():
            if op.lowering is not None:
                ops.pop(name, None)
                features.pop(name, None)
        lowered = set()
    current = replace(declared, ops=ops, features=features, lowered=frozenset(lowered))
    for name, op in OPS.items():
        low = op.lowering
        if low is None or name in current.ops or not all(n in current.ops for n in low.needs):
            continue
        if not low.applies(current):
            continue
        current = replace(current, ops=dict(current.ops, **{name: low.build(current, run_op)}),
                          features=dict(current.features, **{name: low.features(current)}),
                          lowered=current.lowered | {name})
    if drop_native:
        current = replace(current, name=f"{declared.name}:lowered",
                          description=f"{declared.name} with every harness lowering in place of native ops")
    return current


def unregister_backend(name: str) -> None:
    """Remove a user-registered backend (built-ins stay; a replaced built-in comes back)."""
    declared = get_backend(name)
    if declared.origin == "builtin":
        raise ValueError(f"backend {name!r} is built in and cannot be removed")
    if name in _BUILTINS:
        _REGISTRY[name] = _BUILTINS[name]
    else:
        del _REGISTRY[name]
    _revised()
    _LOWERED_VIEWS.pop(name, None)
    REFERENCE_OVERRIDES.pop(name, None)


def _normalise_features(features, ops) -> dict[str, frozenset[str]]:
    if features is None:
        return {op: OP_FEATURES[op] for op in ops}
    if isinstance(features, Mapping):
        per_op = {op: frozenset(features.get(op, ())) for op in ops}
    elif isinstance(features, str):
        raise TypeError("features must be an iterable of feature names, not one string")
    else:
        given = frozenset(features)
        per_op = {op: given for op in ops}
    for op, declared in per_op.items():
        unknown = declared - OP_FEATURES[op]
        if unknown:
            raise ValueError(
                f"unknown {op} feature(s) {sorted(unknown)}; known: {', '.join(sorted(OP_FEATURES[op]))}"
            )
    return per_op
