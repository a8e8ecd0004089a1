"""One call of an op, given by its arguments, in the form the verifier's checks read.

The op table's reference and bounds take a *case* (``spec``, ``batched``, ``kwargs`` and a few
flags) and its arrays; a :class:`CallCase` is that, built from a user's own call instead of a
seeded case, so :func:`harness.testing.assert_close` judges one call exactly as the verifier
judges a case.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .conv_spec import conv2d_spec
from .pool_spec import adaptive_pool2d_spec, pool2d_spec
from .separable import depthwise_separable_spec, spatially_separable_spec
from .transpose_spec import conv_transpose2d_spec


@dataclass(frozen=True)
class CallCase:
    """What the op table's ``reference`` and ``bounds`` read of a case."""

    spec: object
    batched: bool
    kwargs: dict = field(default_factory=dict)
    bias: bool = False
    return_indices: bool = False
    output_size: object = None
    fill: str = "normal"

    @property
    def dtype(self) -> str:
        return self.spec.dtype


#: op -> (array argument names in order, spec function (arrays..., **options) -> (spec, batched))
CALLS = {
    "conv2d": (("x", "w", "bias"), conv2d_spec),
    "conv_transpose2d": (("x", "w", "bias"), conv_transpose2d_spec),
    "conv2d_backward": (("x", "w", "grad_out"),
                        lambda x, w, g, bias=False, **kw: _with_bias(conv2d_spec(x, w, None, **kw), bias)),
    "max_pool2d": (("x",), lambda x, **kw: pool2d_spec("max", x, **kw)),
    "avg_pool2d": (("x",), lambda x, **kw: pool2d_spec("avg", x, **kw)),
    "adaptive_max_pool2d": (("x",), lambda x, **kw: adaptive_pool2d_spec("max", x, **kw)),
    "adaptive_avg_pool2d": (("x",), lambda x, **kw: adaptive_pool2d_spec("avg", x, **kw)),
    "max_pool2d_backward": (("x", "grad_out"), lambda x, g, **kw: pool2d_spec("max", x, **kw)),
    "avg_pool2d_backward": (("x", "grad_out"), lambda x, g, **kw: pool2d_spec("avg", x, **kw)),
    "depthwise_separable_conv2d": (("x", "w_depthwise", "w_pointwise", "bias_depthwise", "bias_pointwise"),
                                   depthwise_separable_spec),
    "spatially_separable_conv2d": (("x", "w_column", "w_row", "bias"), spatially_separable_spec),
}


def _with_bias(spec_batched, bias: bool):
    spec, batched = spec_batched
    return spec.with_(bias=bool(bias)), batched


def call_case(op: str, call: dict):
    """``(CallCase, arrays)`` for ``op`` called with the keyword arguments ``call``.

    Raises
    ------
    ValueError, TypeError
        Unknown op, a missing array argument, or arguments the op refuses.
    """
    if op not in CALLS:
        raise ValueError(f"unknown op {op!r}; known ops: {', '.join(sorted(CALLS))}")
    names, make_spec = CALLS[op]
    options = dict(call)
    arrays = [options.pop(name, None) for name in names]
    if arrays[0] is None or (len(names) > 1 and names[1] != "bias" and arrays[1] is None):
        raise TypeError(f"assert_close({op!r}) needs the call's arrays by name: {', '.join(names)}")
    spec, batched = make_spec(*arrays, **options)
    flags = {k: options.pop(k) for k in ("bias", "return_indices", "output_size") if k in options}
    if op == "conv2d_backward":
        flags["bias"] = bool(flags.get("bias", False))
    elif op in ("conv2d", "conv_transpose2d", "spatially_separable_conv2d"):
        flags["bias"] = arrays[names.index("bias")] is not None
    kwargs = {} if op.startswith("adaptive") else options
    return CallCase(spec, batched, kwargs, **flags), arrays
