"""Argument checking for conv_transpose2d, with ``torch.nn.functional.conv_transpose2d`` rules.

A transposed convolution is the adjoint (gradient with respect to the input) of the conv2d
with the same stride, padding, dilation and groups: every input pixel scatters a copy of
the kernel, scaled by itself, into the output at ``stride`` steps. Sizes per axis::

    OH = (H - 1) * stride - 2 * padding + dilation * (KH - 1) + output_padding + 1

Per-side padding ``padding=((top, bottom), (left, right))`` (JAX ``lax`` / ONNX ``pads``
style; torch has none for transposed convolutions) crops ``top`` rows of the uncropped output
at the top and ``bottom`` at the bottom (``2 * padding`` above becomes ``top + bottom``).

``output_padding`` adds rows/columns at the bottom/right only; it picks one of the ``stride``
input sizes that the forward conv maps to the same output size, so torch demands
``output_padding < stride`` or ``output_padding < dilation`` on each axis.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from harness.ops.args import check_array, check_dtype, is_int, pair, positive_int
from harness.ops.padding import per_side_pads

#: Every feature a conv_transpose2d call can need beyond a plain stride-1 unpadded one.
CONV_TRANSPOSE2D_FEATURES = frozenset(
    {"bias", "stride", "padding", "asymmetric_padding", "output_padding", "dilation", "groups", "depthwise"}
)


@dataclass(frozen=True)
class ConvTranspose2dSpec:
    """A resolved conv_transpose2d problem. ``x`` is (N, C, H, W); ``w`` is (C, O/groups, KH, KW).

    ``padding`` (top, left) and ``output_padding`` are (height, width) pairs; ``padding_end``
    is the (bottom, right) padding when it differs (None: symmetric, torch's only form);
    :attr:`pads` gives all four.
    """

    N: int
    C: int
    H: int
    W: int
    O: int
    KH: int
    KW: int
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    output_padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    bias: bool = False
    dtype: str = "float32"
    padding_end: tuple[int, int] | None = None

    @property
    def pads(self) -> tuple[int, int, int, int]:
        """Explicit ``(top, bottom, left, right)`` cropped from the uncropped output."""
        bottom, right = self.padding if self.padding_end is None else self.padding_end
        return (self.padding[0], bottom, self.padding[1], right)

    @property
    def OH(self) -> int:
        top, bottom, _, _ = self.pads
        return _out_size(self.H, self.KH, self.stride[0], top + bottom, self.output_padding[0], self.dilation[0])

    @property
    def OW(self) -> int:
        _, _, left, right = self.pads
        return _out_size(self.W, self.KW, self.stride[1], left + right, self.output_padding[1], self.dilation[1])

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.C, self.H, self.W)

    @property
    def w_shape(self) -> tuple[int, int, int, int]:
        return (self.C, self.O // self.groups, self.KH, self.KW)

    @property
    def out_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.O, self.OH, self.OW)

    @property
    def outputs(self):
        """(shape, dtype) of each output, for checking what a backend returns."""
        return ((self.out_shape, self.dtype),)

    @property
    def n_acc(self) -> int:
        """An upper bound on the products summed into one output: C/groups * KH * KW."""
        return self.C // self.groups * self.KH * self.KW

    @property
    def macs(self) -> int:
        """Multiply-adds: every input pixel times every tap, as its forward conv pair."""
        return self.N * self.C * self.H * self.W * (self.O // self.groups) * self.KH * self.KW

    @property
    def features(self) -> frozenset[str]:
        need = set()
        if self.bias:
            need.add("bias")
        if self.stride != (1, 1):
            need.add("stride")
        top, bottom, left, right = self.pads
        if any(self.pads):
            need.add("padding")
        if top != bottom or left != right:
            need.add("asymmetric_padding")
        if any(self.output_padding):
            need.add("output_padding")
        if self.dilation != (1, 1):
            need.add("dilation")
        if self.groups > 1:
            need.add("depthwise" if self.groups == self.C else "groups")
        return frozenset(need)

    def with_(self, **changes) -> ConvTranspose2dSpec:
        return _checked(replace(self, **changes))

    @classmethod
    def from_shapes(cls, x_shape, w_shape, *, bias=False, stride=1, padding=0, output_padding=0,
                    groups=1, dilation=1, dtype="float32") -> ConvTranspose2dSpec:
        """Resolve torch-style arguments for a 4-D input shape and a (C, O/groups, KH, KW) weight."""
        x_shape, w_shape = tuple(x_shape), tuple(w_shape)
        if len(x_shape) != 4:
            raise ValueError(f"expected a 4-D input shape (N, C, H, W), got {x_shape}")
        if len(w_shape) != 4:
            raise ValueError(f"expected a 4-D weight shape (C, O/groups, KH, KW), got {w_shape}")
        dtype = check_dtype(dtype)
        N, C, H, W = x_shape
        Cw, Og, KH, KW = w_shape
        groups = positive_int(groups, "groups")
        if Cw != C:
            raise ValueError(
                f"conv_transpose2d weight must be (C, O/groups, KH, KW) with C={C} input channels "
                f"first, got weight shape {w_shape}"
            )
        if C % groups:
            raise ValueError(f"input channels C={C} are not divisible by groups={groups}")
        if min(KH, KW) < 1:
            raise ValueError(f"kernel size must be at least 1x1, got weight shape {w_shape}")
        if C == 0:  # torch refuses both, with a RuntimeError
            raise ValueError(f"input has no channels (C=0, shape {x_shape}); conv_transpose2d needs C >= 1")
        if Og == 0:
            raise ValueError(f"weight has no output channels (O/groups=0, shape {w_shape}); "
                             "conv_transpose2d needs O >= 1")
        per_side = per_side_pads(padding)
        padding_end = None
        if per_side is not None:
            top, bottom, left, right = per_side
            padding = (top, left)
            padding_end = (bottom, right) if (bottom, right) != (top, left) else None
        spec = cls(
            N, C, H, W, Og * groups, KH, KW,
            padding_end=padding_end,
            stride=pair(stride, "stride"),
            padding=pair(padding, "padding", minimum=0),
            output_padding=pair(output_padding, "output_padding", minimum=0),
            dilation=pair(dilation, "dilation"),
            groups=groups, bias=bool(bias), dtype=dtype,
        )
        return _checked(spec)


def _out_size(size, k, stride, both_pads, out_pad, dilation) -> int:
    return (size - 1) * stride - both_pads + dilation * (k - 1) + out_pad + 1


def _checked(spec: ConvTranspose2dSpec) -> ConvTranspose2dSpec:
    for axis, op, s, d in (("height", spec.output_padding[0], spec.stride[0], spec.dilation[0]),
                           ("width", spec.output_padding[1], spec.stride[1], spec.dilation[1])):
        if not (op < s or op < d):
            raise ValueError(
                f"output_padding must be smaller than stride or dilation; got output_padding={op} "
                f"with stride={s} and dilation={d} along the {axis}"
            )
    for name in ("N", "C", "H", "W", "O"):
        if getattr(spec, name) < 0:
            raise ValueError(f"{name} must be non-negative, got {getattr(spec, name)}")
    if spec.H < 1 or spec.W < 1:
        raise ValueError(f"conv_transpose2d needs a non-empty image, got H={spec.H}, W={spec.W}")
    if spec.OH < 1 or spec.OW < 1:
        raise ValueError(
            f"output size {spec.OH}x{spec.OW} is too small: padding {spec.pads} removes more than "
            f"the transposed convolution produces from a {spec.H}x{spec.W} input; use less padding"
        )
    return spec


def conv_transpose2d_spec(x, w, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Check arrays and arguments as ``torch.nn.functional.conv_transpose2d`` would.

    Returns
    -------
    spec : ConvTranspose2dSpec
    batched : bool
        False when ``x`` was a 3-D (C, H, W) input.
    """
    check_array(x, "x")
    check_array(w, "w")
    if x.ndim not in (3, 4):
        raise ValueError(f"expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got x with shape {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"expected a 4-D weight (C, O/groups, KH, KW), got w with shape {w.shape}")
    if x.dtype != w.dtype:
        raise TypeError(f"x and w must have the same dtype, got x {x.dtype} and w {w.dtype}")
    O = w.shape[1] * (groups if is_int(groups) and groups > 0 else 1)
    if bias is not None:
        check_array(bias, "bias")
        if bias.shape != (O,):
            raise ValueError(f"bias must have shape ({O},) = (O/groups * groups,), got {bias.shape}")
        if bias.dtype != x.dtype:
            raise TypeError(f"bias dtype {bias.dtype} does not match x and w dtype {x.dtype}")
    batched = x.ndim == 4
    spec = ConvTranspose2dSpec.from_shapes(
        x.shape if batched else (1,) + x.shape, w.shape, bias=bias is not None, stride=stride,
        padding=padding, output_padding=output_padding, groups=groups, dilation=dilation, dtype=str(x.dtype),
    )
    return spec, batched
