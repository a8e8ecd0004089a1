"""Argument checking and normalisation for conv2d, with torch.nn.functional semantics.

Every way into conv2d (the public call, the verifier, the benchmarks, the analysis) goes
through :func:`conv2d_spec` or :meth:`Conv2dSpec.from_shapes`, so one set of rules decides
what is valid and backends only ever see a normalised :class:`Conv2dSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from harness.ops.args import check_array, check_dtype, is_int, pair, positive_int
from harness.ops.padding import full_pads, per_side_pads, same_lower_pads, same_pads

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
PADDING_STRINGS = ("same", "same_lower", "valid", "full")

#: Every feature a conv2d call can require beyond a plain, unpadded, dense convolution.
#: A backend declares the subset it implements; :attr:`Conv2dSpec.features` says what a call needs.
CONV2D_FEATURES = frozenset(
    {
        "bias",
        "stride",
        "dilation",
        "padding",
        "asymmetric_padding",
        "groups",
        "depthwise",
        "padding_mode=reflect",
        "padding_mode=replicate",
        "padding_mode=circular",
    }
)


@dataclass(frozen=True)
class Conv2dSpec:
    """A fully resolved conv2d problem: shapes and parameters, no data.

    ``padding`` is always explicit ``(top, bottom, left, right)``; ``stride`` and
    ``dilation`` are ``(height, width)`` pairs. Shape names follow NCHW / OIHW.
    """

    N: int
    C: int
    H: int
    W: int
    O: int
    KH: int
    KW: int
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    padding_mode: str = "zeros"
    bias: bool = False
    dtype: str = "float32"

    # -- derived sizes -------------------------------------------------------------
    @property
    def OH(self) -> int:
        top, bottom, _, _ = self.padding
        return (self.H + top + bottom - self.dilation[0] * (self.KH - 1) - 1) // self.stride[0] + 1

    @property
    def OW(self) -> int:
        _, _, left, right = self.padding
        return (self.W + left + right - self.dilation[1] * (self.KW - 1) - 1) // self.stride[1] + 1

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.C, self.H, self.W)

    @property
    def w_shape(self) -> tuple[int, int, int, int]:
        return (self.O, self.C // self.groups, self.KH, self.KW)

    @property
    def out_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.O, self.OH, self.OW)

    @property
    def padded_size(self) -> int:
        """Elements of the input after padding (what a padded copy allocates)."""
        top, bottom, left, right = self.padding
        return self.N * self.C * (self.H + top + bottom) * (self.W + left + right)

    @property
    def out_size(self) -> int:
        return self.N * self.O * self.OH * self.OW

    @property
    def n_acc(self) -> int:
        """Products summed into one output element: C/groups * KH * KW."""
        return self.C // self.groups * self.KH * self.KW

    @property
    def is_depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.C

    @property
    def features(self) -> frozenset[str]:
        """The declared features (see :data:`CONV2D_FEATURES`) this call needs."""
        top, bottom, left, right = self.padding
        need = set()
        if self.bias:
            need.add("bias")
        if self.stride != (1, 1):
            need.add("stride")
        if self.dilation != (1, 1):
            need.add("dilation")
        if any(self.padding):
            need.add("padding")
            if self.padding_mode != "zeros":
                need.add(f"padding_mode={self.padding_mode}")
        if top != bottom or left != right:
            need.add("asymmetric_padding")
        if self.is_depthwise:
            need.add("depthwise")
        elif self.groups > 1:
            need.add("groups")
        return frozenset(need)

    def with_(self, **changes) -> Conv2dSpec:
        """A copy with some fields changed (re-validated)."""
        return _checked(replace(self, **changes))

    # -- construction --------------------------------------------------------------
    @classmethod
    def from_shapes(
        cls,
        x_shape,
        w_shape,
        *,
        bias: bool = False,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        padding_mode="zeros",
        dtype="float32",
    ) -> Conv2dSpec:
        """Resolve torch-style arguments for arrays of the given shapes (4-D input)."""
        x_shape, w_shape = tuple(x_shape), tuple(w_shape)
        if len(x_shape) != 4:
            raise ValueError(f"expected a 4-D input shape (N, C, H, W), got {x_shape}")
        if len(w_shape) != 4:
            raise ValueError(f"expected a 4-D weight shape (O, C/groups, KH, KW), got {w_shape}")
        N, C, H, W = x_shape
        O, Cg, KH, KW = w_shape
        groups = positive_int(groups, "groups")
        dtype = check_dtype(dtype)
        if C % groups:
            raise ValueError(f"input channels C={C} are not divisible by groups={groups}")
        if O % groups:
            raise ValueError(f"output channels O={O} are not divisible by groups={groups}")
        if Cg * groups != C:
            raise ValueError(
                f"weight of shape {w_shape} expects C/groups={Cg} input channels per group "
                f"(C={Cg * groups}), but the input has C={C} with groups={groups}"
            )
        if C == 0:
            # torch answers an (N, 0, OH, OW) output here, contradicting the weight's O;
            # refusing is clearer than copying that
            raise ValueError(f"input has no channels (C=0, shape {x_shape}); conv2d needs C >= 1")
        if O == 0:
            raise ValueError(f"weight has no output channels (O=0, shape {w_shape}); conv2d needs O >= 1")
        if min(KH, KW) < 1:
            raise ValueError(f"kernel size must be at least 1x1, got weight shape {w_shape}")
        stride = pair(stride, "stride")
        dilation = pair(dilation, "dilation")
        padding_mode = _padding_mode(padding_mode)
        pads = _resolve_padding(padding, (KH, KW), stride, dilation, (H, W))
        spec = cls(N, C, H, W, O, KH, KW, stride, pads, dilation, groups, padding_mode, bool(bias), dtype)
        return _checked(spec)


def conv2d_spec(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """Check arrays and arguments as ``torch.nn.functional.conv2d`` would.

    Returns
    -------
    spec : Conv2dSpec
        The resolved problem (always batched, 4-D).
    batched : bool
        False when ``x`` was a 3-D (C, H, W) unbatched input.
    """
    check_array(x, "x")
    check_array(w, "w")
    if x.ndim not in (3, 4):
        raise ValueError(
            f"expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got x with shape {x.shape}"
        )
    if w.ndim != 4:
        raise ValueError(f"expected a 4-D weight (O, C/groups, KH, KW), got w with shape {w.shape}")
    if x.dtype != w.dtype:
        raise TypeError(f"x and w must have the same dtype, got x {x.dtype} and w {w.dtype}")
    if bias is not None:
        check_array(bias, "bias")
        if bias.shape != (w.shape[0],):
            raise ValueError(f"bias must have shape ({w.shape[0]},) to match O, got {bias.shape}")
        if bias.dtype != x.dtype:
            raise TypeError(f"bias dtype {bias.dtype} does not match x and w dtype {x.dtype}")
    batched = x.ndim == 4
    x_shape = x.shape if batched else (1,) + x.shape
    spec = Conv2dSpec.from_shapes(
        x_shape,
        w.shape,
        bias=bias is not None,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
        dtype=str(x.dtype),
    )
    return spec, batched


def _resolve_padding(padding, kernel, stride, dilation, size=None) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` from an int, an (h, w) pair, ``((top, bottom), (left, right))``
    or a string: 'same' (torch: the odd extra row/column after = ONNX SAME_UPPER, stride 1 only),
    'same_lower' (ONNX SAME_LOWER: the extra one before; any stride), 'valid', 'full'."""
    if isinstance(padding, str) and padding == "same_lower":
        return (same_lower_pads(size[0], kernel[0], stride[0], dilation[0])
                + same_lower_pads(size[1], kernel[1], stride[1], dilation[1]))
    if isinstance(padding, str):
        if padding not in PADDING_STRINGS:
            raise ValueError(
                f"padding string must be one of {PADDING_STRINGS}, got {padding!r}"
            )
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same" and stride != (1, 1):
            raise ValueError(
                f"padding='same' is not supported for strided convolutions (stride={stride}); "
                "use explicit padding instead"
            )
        split = same_pads if padding == "same" else full_pads
        return split(kernel[0], dilation[0]) + split(kernel[1], dilation[1])
    per_side = per_side_pads(padding)
    if per_side is not None:
        return per_side
    ph, pw = pair(padding, "padding", minimum=0)
    return (ph, ph, pw, pw)


def _checked(spec: Conv2dSpec) -> Conv2dSpec:
    """Checks that need the whole spec: sizes of the padded input against the kernel."""
    top, bottom, left, right = spec.padding
    for axis, size, before, after, k, d in (
        ("height", spec.H, top, bottom, spec.KH, spec.dilation[0]),
        ("width", spec.W, left, right, spec.KW, spec.dilation[1]),
    ):
        if size + before + after < d * (k - 1) + 1:
            raise ValueError(
                f"kernel {axis} {k} (dilated: {d * (k - 1) + 1}) is larger than the padded input "
                f"{axis} {size}+{before}+{after}={size + before + after}"
            )
        if spec.padding_mode == "reflect" and max(before, after) >= size:
            raise ValueError(
                f"padding_mode='reflect' needs padding < input {axis} ({size}), "
                f"got padding ({before}, {after})"
            )
        if spec.padding_mode == "circular" and max(before, after) > size:
            raise ValueError(
                f"padding_mode='circular' needs padding <= input {axis} ({size}), "
                f"got padding ({before}, {after})"
            )
        if spec.padding_mode == "replicate" and size == 0 and (before or after):
            raise ValueError(f"padding_mode='replicate' cannot pad an empty {axis}")
    for name in ("N", "C", "H", "W", "O"):
        if getattr(spec, name) < 0:
            raise ValueError(f"{name} must be non-negative, got {getattr(spec, name)}")
    if spec.N > 0 and min(spec.H, spec.W) == 0:
        # torch: "Only zero batch or zero channel inputs are supported", whatever the padding
        raise ValueError(f"an empty image (H={spec.H}, W={spec.W}) is only accepted in an empty batch "
                         f"(N=0), as in torch; got N={spec.N}")
    return spec


def _padding_mode(mode) -> str:
    if mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {mode!r}")
    return mode
