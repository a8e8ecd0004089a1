"""Cases as text: parse a printed case back (``convbench verify --case``) and short test ids.

A case's ``repr`` (``Conv2dCase(x_shape=(1, 2, 5, 5), w_shape=(3, 2, 3, 3), padding=1)``) is
what the verifier prints; :func:`parse_case` turns it back into the case without ``eval``: only
a call of a known case class with literal arguments is accepted.
:func:`case_id` is the readable, stable name a case gets as a pytest parameter.
"""

from __future__ import annotations

import ast
import re
from dataclasses import fields

from harness.ops.table import OPS, op_of


def case_classes() -> dict[str, type]:
    """Case class name -> class, for every op of the op table."""
    return {info.case_type.__name__: info.case_type for info in OPS.values()}


def parse_case(text: str):
    """The case that ``text`` (a case's ``repr``) describes.

    Raises
    ------
    ValueError
        When ``text`` is not a call of a known case class with literal arguments, or the
        arguments do not make a valid case.
    """
    known = case_classes()
    try:
        call = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ValueError(f"cannot parse case {text!r}: {exc.msg}") from None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in known):
        raise ValueError(f"a case looks like Conv2dCase(x_shape=..., w_shape=...); known case types: "
                         f"{', '.join(sorted(known))}; got {text!r}")
    try:
        args = [ast.literal_eval(a) for a in call.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    except ValueError:
        raise ValueError(f"case arguments must be literals (numbers, strings, tuples): {text!r}") from None
    try:
        case = known[call.func.id](*args, **kwargs)
        case.spec  # noqa: B018 -- builds and checks the call's arguments
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid case {text!r}: {exc}") from None
    return case


# -- ids -----------------------------------------------------------------------------------------------
def _dims(value, sep: str = "x") -> str:
    return sep.join(str(v) for v in value) if isinstance(value, (tuple, list)) else str(value)


def _shape(shape) -> str:
    letters = "nchw" if len(shape) == 4 else "chw"
    return "".join(f"{a}{b}" for a, b in zip(letters, shape))


#: field -> how its (non-default) value reads in an id; fields not listed read as ``name<value>``
_TOKENS = {
    "kernel_size": lambda v: _dims(v if isinstance(v, (tuple, list)) else (v, v)),
    "kernel": _dims,
    "stride": lambda v: f"s{_dims(v)}",
    "padding": lambda v: v if isinstance(v, str) else f"p{_dims(v)}",
    "dilation": lambda v: f"d{_dims(v)}",
    "output_padding": lambda v: f"op{_dims(v)}",
    "groups": lambda v: f"groups{v}",
    "multiplier": lambda v: f"mult{v}",
    "bias": lambda v: "bias",
    "padding_mode": str,
    "ceil_mode": lambda v: "ceil",
    "count_include_pad": lambda v: "nopadcount",
    "divisor_override": lambda v: f"div{v}",
    "return_indices": lambda v: "indices",
    "output_size": lambda v: f"out{_dims(v)}",
    "fill": str,
    "layout": str,
    "M": lambda v: f"m{v}",
    "O": lambda v: f"o{v}",
}


def case_id(case) -> str:
    """A readable id, e.g. ``conv2d-3x3-s2-same-groups4-bias-float32-exact-n1c8h9w9-o8``.

    The op, the kernel, every argument that differs from its default, the dtype, the fill and
    layout when not plain, then the input shape (and output channels). Two cases that differ
    only in their data seed get the same id; :func:`unique_ids` tells them apart.
    """
    tokens = [op_of(case)]
    shape_tokens = []
    for f in fields(case):
        value = getattr(case, f.name)
        if f.name == "x_shape":
            shape_tokens.insert(0, _shape(value))
        elif f.name == "w_shape":
            tokens.append(_dims(value[2:]))
            shape_tokens.append(f"o{case.spec.O}")
        elif f.name == "dtype":
            tokens.append(value)
        elif f.name in ("seed",) or (value == f.default and f.name not in ("kernel_size", "kernel", "O", "M")):
            continue
        elif f.name in ("O", "M"):
            shape_tokens.append(_TOKENS[f.name](value))
        else:
            tokens.append(_TOKENS.get(f.name, lambda v, n=f.name: f"{n}{_dims(v)}")(value))
    text = "-".join(tokens + shape_tokens)
    return re.sub(r"[^A-Za-z0-9_.=-]", "", text.replace("None", "any"))


def unique_ids(cases) -> list[str]:
    """:func:`case_id` of each case, with ``-2``, ``-3``, ... appended to repeats (in order)."""
    seen: dict[str, int] = {}
    ids = []
    for case in cases:
        base = case_id(case)
        seen[base] = seen.get(base, 0) + 1
        ids.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return ids
