"""Argument checks shared by every op's spec: arrays, ints, (height, width) pairs.

One place decides what a valid array or integer argument is, so every op refuses the same
mistakes with the same message.
"""

from __future__ import annotations

import numbers

import ml_dtypes  # noqa: F401  (registers numpy's "bfloat16" dtype name)
import numpy as np

#: The dtypes every backend takes unless it declares otherwise.
FLOAT_DTYPES = ("float32", "float64")
#: Half precision: stored in 16 bits, summed in float32 (as torch's CPU kernels do), rounded once
#: to the half dtype at the end. A backend takes them only when it declares them (``Backend.dtypes``).
HALF_DTYPES = ("float16", "bfloat16")
#: Every dtype an op accepts.
DTYPES = FLOAT_DTYPES + HALF_DTYPES
#: The dtype a half-precision op accumulates in; float32 and float64 accumulate in themselves.
ACCUMULATION_DTYPES = {"float16": "float32", "bfloat16": "float32"}


def accumulation_dtype(dtype: str) -> str:
    """The dtype the sums of a ``dtype`` op are carried in (float32 for the half dtypes)."""
    return ACCUMULATION_DTYPES.get(str(dtype), str(dtype))


def check_dtype(dtype) -> str:
    """``dtype`` as its name, when it is one of :data:`DTYPES` (TypeError otherwise)."""
    name = getattr(dtype, "name", dtype) if not isinstance(dtype, str) else dtype
    if name not in DTYPES:
        raise TypeError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    return name


def check_array(a, name: str) -> None:
    """The array check every op's arguments go through: a plain float32, float64, float16 or
    bfloat16 (``ml_dtypes``) ndarray in native byte order (TypeError otherwise, saying how to convert)."""
    if isinstance(a, np.ma.MaskedArray):  # the mask would be silently ignored
        raise TypeError(f"{name} is a masked array; its mask would be ignored: pass "
                        f"{name}.filled(value) or {name}.data explicitly")
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype.name not in DTYPES:
        raise TypeError(
            f"{name} has dtype {a.dtype}; the ops take float32, float64, float16 or bfloat16 arrays "
            f"(convert with {name}.astype(np.float32))"
        )
    if not a.dtype.isnative:
        raise TypeError(f"{name} has non-native byte order (dtype {a.dtype.str}); convert with "
                        f"{name}.astype({name}.dtype.newbyteorder('='))")


def is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def positive_int(value, name: str) -> int:
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return int(value)


def pair(value, name: str, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints, each >= minimum, as a (height, width) tuple."""
    if is_int(value):
        items = (value, value)
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(is_int(v) for v in value):
        items = tuple(value)
    else:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(items) < minimum:
        adjective = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name} must be {adjective}, got {value!r}")
    return int(items[0]), int(items[1])
