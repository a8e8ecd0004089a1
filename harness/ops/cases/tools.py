"""The case framework shared by every op: a base for case classes, fills, layouts, argument
helpers, shrinking steps and the seeded random-case loop (conv2d's cases are in ``harness/ops/cases/conv2d.py``).

A case class is a frozen dataclass deriving from :class:`CaseBase`, declared with
``@dataclass(frozen=True, repr=False)`` so that the base's reproducer ``repr`` is kept.
"""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np

from harness.ops.cases.extreme import EXTREME_FILLS, input_scale

SMALL_INT = 4  # |value| of the small-integer fills (ties for max pooling, exact sums elsewhere)


class CaseBase:
    """What every case class shares: a reproducer ``repr``, ``batched`` and the call's ``kwargs``.

    Subclasses set ``REPR_ALWAYS`` (how many leading fields the ``repr`` always shows; the others
    only when they differ from their default) and ``KWARGS`` (the fields passed to the op as
    keyword arguments, in the form the user wrote them). ``x_shape`` is the input's shape.
    """

    REPR_ALWAYS = 2
    KWARGS: tuple = ()

    def __repr__(self) -> str:
        return case_repr(self, always=self.REPR_ALWAYS)

    @property
    def batched(self) -> bool:
        """True for an (N, C, H, W) input, False for an unbatched (C, H, W) one."""
        return len(self.x_shape) == 4

    @property
    def kwargs(self) -> dict:
        """The keyword arguments of the call, as the user wrote them."""
        return {name: getattr(self, name) for name in self.KWARGS}


def case_repr(case, always: int = 1) -> str:
    """``Name(field=value, ...)``: the first ``always`` fields, then those that differ from their default."""
    parts = []
    for i, f in enumerate(fields(case)):
        value = getattr(case, f.name)
        if i < always or value != f.default:
            parts.append(f"{f.name}={value!r}")
    return f"{type(case).__name__}({', '.join(parts)})"


def fill(rng, shape, kind: str, dtype: str, *, nonfinite_ok: bool = True) -> np.ndarray:
    """Values of ``shape``: standard normal, small integers (``exact``, or ``ties`` where the result
    is not exact but equal values matter, as for max pooling), or normal with NaN/Inf planted."""
    if kind in ("exact", "ties"):
        a = rng.integers(-SMALL_INT, SMALL_INT + 1, size=shape).astype(np.float64)
    else:
        a = rng.standard_normal(shape)
        if kind in ("nan", "inf") and nonfinite_ok:
            plant_nonfinite(rng, a, kind)
        elif kind in EXTREME_FILLS:  # for an input; weights stay normal (see harness.ops.cases.extreme)
            a *= input_scale(kind, dtype)
    return a.astype(dtype)


def laid_out(a, layout: str):
    """``a`` in ``layout`` (see :func:`in_layout`); None stays None."""
    return None if a is None else in_layout(a, layout)


def in_layout(a: np.ndarray, layout: str) -> np.ndarray:
    """The same values in another memory layout (what a caller's arrays can look like)."""
    if layout == "contiguous":
        return np.ascontiguousarray(a)
    if layout == "channels_last":  # stored with channels innermost (NHWC / OHWI), viewed as NCHW
        order = (0, 2, 3, 1) if a.ndim == 4 else (1, 2, 0)
        inverse = np.argsort(order)
        return np.ascontiguousarray(a.transpose(order)).transpose(inverse)
    if layout == "strided":  # every other element of a larger buffer along the last axis
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
        big[..., ::2] = a
        return big[..., ::2]
    raise ValueError(f"unknown layout {layout!r}; known: contiguous, channels_last, strided")


def plant_nonfinite(rng, x: np.ndarray, kind: str) -> None:
    """Overwrite about 2% of ``x`` (at least one element) with NaN (``kind='nan'``) or +-Inf, in place."""
    if x.size == 0:
        return
    count = max(1, x.size // 50)
    where = rng.choice(x.size, size=count, replace=False)
    values = np.nan if kind == "nan" else rng.choice([np.inf, -np.inf], size=count)
    x.reshape(-1)[where] = values


def valid(case) -> bool:
    """True when the case's spec can be built (its arguments are legal)."""
    try:
        case.spec
    except (ValueError, TypeError):
        return False
    return True


def set_axis(shape, axis, value) -> tuple:
    shape = list(shape)
    shape[axis] = value
    return tuple(shape)


def shrink_image(case, field: str = "x_shape") -> list:
    """One-step simpler images: batch 1, one row/column fewer, half the rows/columns."""
    shape = getattr(case, field)
    out = []
    if len(shape) == 4 and shape[0] > 1:
        out.append(replace(case, **{field: (1,) + tuple(shape[1:])}))
    for axis in (-2, -1):
        if shape[axis] > 1:
            out.append(replace(case, **{field: set_axis(shape, axis, shape[axis] - 1)}))
            out.append(replace(case, **{field: set_axis(shape, axis, max(1, shape[axis] // 2))}))
    return out


def plain_args(case, defaults: dict) -> list:
    """The case with one argument at a time set back to its plain value."""
    return [replace(case, **{name: plain}) for name, plain in defaults.items() if getattr(case, name) != plain]


def pick(rng, options, p=None):
    return options[rng.choice(len(options), p=p)]


def pair_arg(rng, lo: int, hi: int):
    """An int or a pair in [lo, hi), not all equal to lo."""
    if rng.random() < 0.5:
        return int(rng.integers(lo + 1, hi))
    a, b = (int(v) for v in rng.integers(lo, hi, size=2))
    return (a, b) if (a, b) != (lo, lo) else (a, lo + 1)


def as_pair(value) -> tuple[int, int]:
    """An int argument as ``(value, value)``; a pair as a tuple."""
    return (value, value) if isinstance(value, int) else tuple(value)


def draw_cases(draw, features, dtypes, count: int, seed: int, nonfinite: bool) -> list:
    """``count`` cases from ``draw(rng, wanted, forced, dtype, nonfinite)`` (None = invalid, redraw).

    Case ``i`` forces feature ``i mod len(features)`` on (so every declared feature is hit every
    ``len(features)`` cases), turns others on with probability 0.3 and alternates dtypes; a case
    needing an undeclared feature is redrawn (up to 50 times, from the same generator).
    """
    features, dtypes = sorted(features), sorted(dtypes)
    cases = []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        forced = features[i % len(features)] if features else None
        wanted = {f for f in features if rng.random() < 0.3} | ({forced} if forced else set())
        dtype = dtypes[(i // max(1, len(features))) % len(dtypes)] if dtypes else "float32"
        for _attempt in range(50):
            case = draw(rng, wanted, forced, dtype, nonfinite)
            if case is not None and valid(case) and case.spec.features <= set(features):
                cases.append(case)
                break
    return cases


def both_dtypes(rows) -> list:
    return [replace(case, dtype=dt) for case in rows for dt in ("float32", "float64")]
