"""One integer column per axis for a verification row: what ``stride``'s ``"(2, 1)"`` means, split.

The case's own fields stay in the row as given (an int, a pair or a string such as
``"same"``, so the reproducer is the call as written); these columns are the resolved sizes
from the case's spec, one integer each, for filtering and grouping in pandas.
"""

from __future__ import annotations

#: The columns :func:`axis_columns` may fill, in order (absent where an op has no such axis).
AXIS_COLUMNS = ("N", "C", "H", "W", "O", "KH", "KW", "OH", "OW", "stride_h", "stride_w", "pad_top", "pad_bottom",
                "pad_left", "pad_right", "dilation_h", "dilation_w")


def axis_columns(spec) -> dict:
    """Integer sizes of ``spec``: ``N, C, H, W`` (input), ``O, KH, KW`` (weight or window),
    ``OH, OW``, ``stride_h/_w``, ``pad_top/_bottom/_left/_right``, ``dilation_h/_w``.

    A separable spec reports its first (depthwise or column) convolution's geometry with the
    whole op's input and output. Specs without an axis leave it out.

    >>> from harness.ops.conv_spec import Conv2dSpec
    >>> s = Conv2dSpec.from_shapes((2, 3, 9, 8), (4, 3, 3, 1), stride=(2, 1), padding=(1, 0))
    >>> {k: axis_columns(s)[k] for k in ("N", "KW", "stride_h", "stride_w", "pad_top", "pad_left")}
    {'N': 2, 'KW': 1, 'stride_h': 2, 'stride_w': 1, 'pad_top': 1, 'pad_left': 0}
    """
    inner = getattr(spec, "depthwise", None) or getattr(spec, "column", None) or spec
    out = {}
    for name in ("N", "C", "H", "W"):
        if isinstance(getattr(spec, name, None), int):
            out[name] = getattr(spec, name)
    for name in ("O", "KH", "KW"):
        if isinstance(getattr(inner, name, None), int):
            out[name] = getattr(inner, name)
    kernel = getattr(inner, "kernel", None)
    if isinstance(kernel, tuple) and len(kernel) == 2:
        out["KH"], out["KW"] = map(int, kernel)
    shape = getattr(spec, "out_shape", None)
    if isinstance(shape, tuple) and len(shape) == 4:
        out["OH"], out["OW"] = int(shape[2]), int(shape[3])
    for name in ("OH", "OW"):
        if isinstance(getattr(spec, name, None), int):
            out[name] = getattr(spec, name)
    for name in ("stride", "dilation"):
        pair = getattr(inner, name, None)
        if isinstance(pair, tuple) and len(pair) == 2:
            out[f"{name}_h"], out[f"{name}_w"] = map(int, pair)
    padding = getattr(inner, "pads", None) or getattr(inner, "padding", None)  # pads: per-side pooling/transposed
    if isinstance(padding, tuple) and len(padding) == 4:
        out.update(zip(("pad_top", "pad_bottom", "pad_left", "pad_right"), map(int, padding)))
    elif isinstance(padding, tuple) and len(padding) == 2:  # pooling and transposed: symmetric per axis
        out.update(pad_top=int(padding[0]), pad_bottom=int(padding[0]), pad_left=int(padding[1]),
                   pad_right=int(padding[1]))
    return {k: out[k] for k in AXIS_COLUMNS if k in out}
