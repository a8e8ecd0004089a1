"""Argument checking for convolutions of any spatial rank (conv1d, conv3d and their transposes).

One dimension-generic spec per op family, with ``torch.nn.functional`` rules: the spatial sizes,
kernel, stride, dilation and padding are tuples with one entry per spatial axis (length for
1-D; depth, height, width for 3-D), arrays are NCL / NCDHW with OIL / OIDHW weights. The feature
names are conv2d's (``harness.ops.conv_spec.CONV2D_FEATURES``), so a backend declares them once,
and a 1-D spec converts to the 2-D spec with a height of one (:meth:`ConvNdSpec.as_conv2d`),
which is how the harness lowers 1-D ops onto 2-D backends.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from harness.ops.args import FLOAT_DTYPES, check_array, is_int, positive_int
from harness.ops.conv_spec import CONV2D_FEATURES, PADDING_MODES, PADDING_STRINGS, Conv2dSpec
from harness.ops.padding import full_pads, same_pads
from harness.ops.transpose_spec import CONV_TRANSPOSE2D_FEATURES, ConvTranspose2dSpec

AXIS_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}
SHAPE_NAMES = {1: "L", 2: "H, W", 3: "D, H, W"}
KERNEL_NAMES = {1: "K", 2: "KH, KW", 3: "KD, KH, KW"}
CONV_ND_FEATURES = CONV2D_FEATURES
CONV_TRANSPOSE_ND_FEATURES = CONV_TRANSPOSE2D_FEATURES


def ntuple(value, n: int, name: str, minimum: int = 1) -> tuple[int, ...]:
    """An int or a tuple of ``n`` ints, each >= ``minimum``, as a tuple (one entry per spatial axis)."""
    if is_int(value):
        items = (int(value),) * n
    elif isinstance(value, (tuple, list)) and len(value) == n and all(is_int(v) for v in value):
        items = tuple(int(v) for v in value)
    else:
        what = "an int" if n == 1 else f"an int or a tuple of {n} ints"
        raise TypeError(f"{name} must be {what}, got {value!r}")
    if min(items) < minimum:
        adjective = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name} must be {adjective}, got {value!r}")
    return items


def spatial_prod(values) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


def needed(*flags) -> frozenset[str]:
    """The feature names of the ``(name, needed)`` pairs that are needed."""
    return frozenset(name for name, on in flags if on)


def require_one_axis(spec) -> None:
    """Only a 1-D spec has a 2-D equivalent (an image of height 1)."""
    if spec.ndim != 1:
        raise ValueError(f"only a 1-D spec has a 2-D equivalent of height 1; this one has {spec.ndim} axes")


def check_nd_arrays(op: str, ndim: int, x, w, bias, out_channels, weight_layout: str) -> bool:
    """The array checks of an N-d conv-like op (``out_channels(w)``: the bias length); returns ``batched``."""
    check_array(x, "x")
    check_array(w, "w")
    if x.ndim not in (ndim + 1, ndim + 2):
        raise ValueError(f"{op} expects a {ndim + 1}-D (C, {SHAPE_NAMES[ndim]}) or {ndim + 2}-D "
                         f"(N, C, {SHAPE_NAMES[ndim]}) input, got x with shape {x.shape}")
    if w.ndim != ndim + 2:
        raise ValueError(f"{op} expects a {ndim + 2}-D weight ({weight_layout}), got w with shape {w.shape}")
    if x.dtype != w.dtype:
        raise TypeError(f"x and w must have the same dtype, got x {x.dtype} and w {w.dtype}")
    if bias is not None:
        check_array(bias, "bias")
        O = out_channels(w)
        if bias.shape != (O,):
            raise ValueError(f"bias must have shape ({O},) to match the output channels, got {bias.shape}")
        if bias.dtype != x.dtype:
            raise TypeError(f"bias dtype {bias.dtype} does not match x and w dtype {x.dtype}")
    return x.ndim == ndim + 2


class _SpatialConvSpec:
    """What the N-d conv specs share: the rank, the input and output shapes, the reduction length.

    Subclasses are frozen dataclasses with ``N, C, O, size, kernel, groups, dtype`` and an
    ``out_dims`` property.
    """

    @property
    def ndim(self) -> int:
        """Spatial axes: 1 for the 1-D ops, 3 for the 3-D ones."""
        return len(self.size)

    @property
    def x_shape(self) -> tuple:
        return (self.N, self.C, *self.size)

    @property
    def out_shape(self) -> tuple:
        return (self.N, self.O, *self.out_dims)

    @property
    def outputs(self):
        return ((self.out_shape, self.dtype),)

    @property
    def n_acc(self) -> int:
        """Products summed into one output (an upper bound for a transposed conv): C/groups times the taps."""
        return self.C // self.groups * spatial_prod(self.kernel)


# -- convolution ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConvNdSpec(_SpatialConvSpec):
    """A resolved N-d convolution: input (N, C, *size), weight (O, C/groups, *kernel).

    ``padding`` holds one ``(before, after)`` pair per spatial axis; ``stride`` and
    ``dilation`` one int per axis.
    """

    N: int
    C: int
    O: int
    size: tuple
    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    groups: int = 1
    padding_mode: str = "zeros"
    bias: bool = False
    dtype: str = "float32"

    @property
    def out_dims(self) -> tuple[int, ...]:
        return tuple((n + b + a - d * (k - 1) - 1) // s + 1 for n, k, s, (b, a), d in
                     zip(self.size, self.kernel, self.stride, self.padding, self.dilation))

    @property
    def padded_dims(self) -> tuple[int, ...]:
        return tuple(n + b + a for n, (b, a) in zip(self.size, self.padding))

    @property
    def w_shape(self) -> tuple:
        return (self.O, self.C // self.groups, *self.kernel)

    @property
    def padded_size(self) -> int:
        return self.N * self.C * spatial_prod(self.padded_dims)

    @property
    def macs(self) -> int:
        return self.N * self.O * spatial_prod(self.out_dims) * self.n_acc

    @property
    def is_depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.C

    @property
    def features(self) -> frozenset[str]:
        """The conv2d feature names this call needs (see ``CONV2D_FEATURES``)."""
        padded = any(b or a for b, a in self.padding)
        return needed(("bias", self.bias), ("stride", any(s != 1 for s in self.stride)),
                      ("dilation", any(d != 1 for d in self.dilation)), ("padding", padded),
                      (f"padding_mode={self.padding_mode}", padded and self.padding_mode != "zeros"),
                      ("asymmetric_padding", any(b != a for b, a in self.padding)),
                      ("depthwise", self.is_depthwise), ("groups", self.groups > 1 and not self.is_depthwise))

    def with_(self, **changes) -> ConvNdSpec:
        """A copy with some fields changed (re-validated)."""
        return checked_conv(replace(self, **changes))

    def as_conv2d(self) -> Conv2dSpec:
        """A 1-D spec as the 2-D one of height 1 (the harness's lowering of 1-D onto 2-D)."""
        require_one_axis(self)
        (L,), (K,), (s,), ((b, a),), (d,) = self.size, self.kernel, self.stride, self.padding, self.dilation
        return Conv2dSpec(self.N, self.C, 1, L, self.O, 1, K, (1, s), (0, 0, b, a), (1, d), self.groups,
                          self.padding_mode, self.bias, self.dtype)


def resolve_padding(padding, kernel, stride, dilation) -> tuple:
    """torch's padding argument (int, tuple, 'same', 'valid', 'full') as ``(before, after)`` per axis."""
    n = len(kernel)
    if isinstance(padding, str):
        if padding not in PADDING_STRINGS:
            raise ValueError(f"padding string must be one of {PADDING_STRINGS}, got {padding!r}")
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same" and any(s != 1 for s in stride):
            raise ValueError(f"padding='same' is not supported for strided convolutions (stride={stride}); "
                             "use explicit padding instead")
        split = same_pads if padding == "same" else full_pads
        return tuple(split(k, d) for k, d in zip(kernel, dilation))
    return tuple((p, p) for p in ntuple(padding, n, "padding", minimum=0))


def _check_nd_dtype(op: str, dtype: str) -> None:
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{op} takes float32 or float64, got {dtype!r} (half precision is implemented for the "
                        "2-D ops only: up-cast the arrays with .astype(np.float32))")


def conv_nd_from_shapes(op: str, x_shape, w_shape, *, bias=False, stride=1, padding=0, dilation=1, groups=1,
                        padding_mode="zeros", dtype="float32") -> ConvNdSpec:
    """Resolve torch-style arguments for a batched input shape (N, C, *size) and a weight shape."""
    x_shape, w_shape = tuple(x_shape), tuple(w_shape)
    n = len(w_shape) - 2
    if n < 1 or len(x_shape) != n + 2:
        raise ValueError(f"{op}: input shape {x_shape} and weight shape {w_shape} do not have matching ranks")
    N, C, *size = x_shape
    O, Cg, *kernel = w_shape
    groups = positive_int(groups, "groups")
    _check_nd_dtype(op, dtype)
    if C % groups:
        raise ValueError(f"input channels C={C} are not divisible by groups={groups}")
    if O % groups:
        raise ValueError(f"output channels O={O} are not divisible by groups={groups}")
    if Cg * groups != C:
        raise ValueError(f"weight of shape {w_shape} expects C/groups={Cg} input channels per group "
                         f"(C={Cg * groups}), but the input has C={C} with groups={groups}")
    if C == 0:
        raise ValueError(f"input has no channels (C=0, shape {x_shape}); {op} needs C >= 1")
    if O == 0:
        raise ValueError(f"weight has no output channels (O=0, shape {w_shape}); {op} needs O >= 1")
    if min(kernel) < 1:
        raise ValueError(f"kernel size must be at least 1 on every axis, got weight shape {w_shape}")
    stride, dilation = ntuple(stride, n, "stride"), ntuple(dilation, n, "dilation")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    pads = resolve_padding(padding, tuple(kernel), stride, dilation)
    return checked_conv(ConvNdSpec(N, C, O, tuple(size), tuple(kernel), stride, pads, dilation, groups,
                                   padding_mode, bool(bias), dtype))


def checked_conv(spec: ConvNdSpec) -> ConvNdSpec:
    """Checks that need the whole spec: each padded axis against the dilated kernel and the padding mode."""
    for axis, size, (before, after), k, d in zip(AXIS_NAMES[spec.ndim], spec.size, spec.padding, spec.kernel,
                                                spec.dilation):
        if size + before + after < d * (k - 1) + 1:
            raise ValueError(f"kernel {axis} {k} (dilated: {d * (k - 1) + 1}) is larger than the padded input "
                             f"{axis} {size}+{before}+{after}={size + before + after}")
        if spec.padding_mode == "reflect" and max(before, after) >= size:
            raise ValueError(f"padding_mode='reflect' needs padding < input {axis} ({size}), "
                             f"got padding ({before}, {after})")
        if spec.padding_mode == "circular" and max(before, after) > size:
            raise ValueError(f"padding_mode='circular' needs padding <= input {axis} ({size}), "
                             f"got padding ({before}, {after})")
    if min(spec.N, spec.C, spec.O, *spec.size) < 0:
        raise ValueError(f"sizes must be non-negative, got input {spec.x_shape}")
    if spec.N > 0 and min(spec.size) == 0:
        raise ValueError(f"an empty input (spatial size {spec.size}) is only accepted in an empty batch (N=0), "
                         f"as in torch; got N={spec.N}")
    return spec


def conv_nd_spec(op: str, ndim: int, x, w, bias=None, stride=1, padding=0, dilation=1, groups=1,
                 padding_mode="zeros"):
    """Check arrays and arguments as ``torch.nn.functional.conv1d`` / ``conv3d`` would.

    Returns
    -------
    spec : ConvNdSpec
        The resolved problem (always batched).
    batched : bool
        False when ``x`` had no batch axis.
    """
    batched = check_nd_arrays(op, ndim, x, w, bias, lambda w: w.shape[0], f"O, C/groups, {KERNEL_NAMES[ndim]}")
    x_shape = x.shape if batched else (1,) + x.shape
    spec = conv_nd_from_shapes(op, x_shape, w.shape, bias=bias is not None, stride=stride, padding=padding,
                               dilation=dilation, groups=groups, padding_mode=padding_mode, dtype=str(x.dtype))
    return spec, batched


# -- transposed convolution ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConvTransposeNdSpec(_SpatialConvSpec):
    """A resolved N-d transposed convolution: input (N, C, *size), weight (C, O/groups, *kernel).

    ``padding`` and ``output_padding`` are one int per axis (torch pads both ends alike).
    """

    N: int
    C: int
    O: int
    size: tuple
    kernel: tuple
    stride: tuple
    padding: tuple
    output_padding: tuple
    dilation: tuple
    groups: int = 1
    bias: bool = False
    dtype: str = "float32"

    @property
    def out_dims(self) -> tuple[int, ...]:
        return tuple((n - 1) * s - 2 * p + d * (k - 1) + op + 1 for n, k, s, p, op, d in
                     zip(self.size, self.kernel, self.stride, self.padding, self.output_padding, self.dilation))

    @property
    def w_shape(self) -> tuple:
        return (self.C, self.O // self.groups, *self.kernel)

    @property
    def macs(self) -> int:
        """Every input element times every tap of its group's kernel (as the forward conv pair)."""
        return self.N * self.C * spatial_prod(self.size) * (self.O // self.groups) * spatial_prod(self.kernel)

    @property
    def features(self) -> frozenset[str]:
        return needed(("bias", self.bias), ("stride", any(s != 1 for s in self.stride)), ("padding", any(self.padding)),
                      ("output_padding", any(self.output_padding)), ("dilation", any(d != 1 for d in self.dilation)),
                      ("depthwise" if self.groups == self.C else "groups", self.groups > 1))

    def with_(self, **changes) -> ConvTransposeNdSpec:
        return checked_transpose(replace(self, **changes))

    def as_conv_transpose2d(self) -> ConvTranspose2dSpec:
        """A 1-D spec as the 2-D one of height 1."""
        require_one_axis(self)
        return ConvTranspose2dSpec(self.N, self.C, 1, self.size[0], self.O, 1, self.kernel[0], (1, self.stride[0]),
                                   (0, self.padding[0]), (0, self.output_padding[0]), (1, self.dilation[0]),
                                   self.groups, self.bias, self.dtype)


def checked_transpose(spec: ConvTransposeNdSpec) -> ConvTransposeNdSpec:
    for axis, op, s, d in zip(AXIS_NAMES[spec.ndim], spec.output_padding, spec.stride, spec.dilation):
        if not (op < s or op < d):
            raise ValueError(f"output_padding must be smaller than stride or dilation; got output_padding={op} "
                             f"with stride={s} and dilation={d} along the {axis}")
    if spec.N < 0:
        raise ValueError(f"N must be non-negative, got {spec.N}")
    if min(spec.size) < 1:
        raise ValueError(f"a transposed convolution needs a non-empty input, got spatial size {spec.size}")
    if min(spec.out_dims) < 1:
        raise ValueError(f"output size {spec.out_dims} is too small: padding {spec.padding} removes more than the "
                         f"transposed convolution produces from an input of size {spec.size}; use less padding")
    return spec


def conv_transpose_nd_from_shapes(op: str, x_shape, w_shape, *, bias=False, stride=1, padding=0, output_padding=0,
                                  groups=1, dilation=1, dtype="float32") -> ConvTransposeNdSpec:
    """Resolve torch-style arguments for a batched input shape and a (C, O/groups, *kernel) weight."""
    x_shape, w_shape = tuple(x_shape), tuple(w_shape)
    n = len(w_shape) - 2
    if n < 1 or len(x_shape) != n + 2:
        raise ValueError(f"{op}: input shape {x_shape} and weight shape {w_shape} do not have matching ranks")
    _check_nd_dtype(op, dtype)
    N, C, *size = x_shape
    Cw, Og, *kernel = w_shape
    groups = positive_int(groups, "groups")
    if Cw != C:
        raise ValueError(f"{op} weight must be (C, O/groups, {KERNEL_NAMES.get(n, '...')}) with C={C} input channels "
                         f"first, got weight shape {w_shape}")
    if C % groups:
        raise ValueError(f"input channels C={C} are not divisible by groups={groups}")
    if min(kernel) < 1:
        raise ValueError(f"kernel size must be at least 1 on every axis, got weight shape {w_shape}")
    if C == 0:
        raise ValueError(f"input has no channels (C=0, shape {x_shape}); {op} needs C >= 1")
    if Og == 0:
        raise ValueError(f"weight has no output channels (O/groups=0, shape {w_shape}); {op} needs O >= 1")
    spec = ConvTransposeNdSpec(N, C, Og * groups, tuple(size), tuple(kernel), ntuple(stride, n, "stride"),
                               ntuple(padding, n, "padding", minimum=0),
                               ntuple(output_padding, n, "output_padding", minimum=0),
                               ntuple(dilation, n, "dilation"), groups, bool(bias), dtype)
    return checked_transpose(spec)


def conv_transpose_nd_spec(op: str, ndim: int, x, w, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                           dilation=1):
    """Check arrays and arguments as ``torch.nn.functional.conv_transpose1d`` / ``conv_transpose3d`` would."""
    def out_channels(w):
        return w.shape[1] * (groups if is_int(groups) and groups > 0 else 1)

    batched = check_nd_arrays(op, ndim, x, w, bias, out_channels, f"C, O/groups, {KERNEL_NAMES[ndim]}")
    x_shape = x.shape if batched else (1,) + x.shape
    spec = conv_transpose_nd_from_shapes(op, x_shape, w.shape, bias=bias is not None, stride=stride,
                                         padding=padding, output_padding=output_padding, groups=groups,
                                         dilation=dilation, dtype=str(x.dtype))
    return spec, batched


# -- suite rows ------------------------------------------------------------------------------------------------
def as_conv_nd(spec, ndim: int) -> ConvNdSpec:
    """A suite row as an N-d conv spec: an N-d row as it is; a 2-D row of height 1 (``H = KH = 1``)
    as a 1-D one (suite files hold 1-D layers that way)."""
    if isinstance(spec, ConvNdSpec) and spec.ndim == ndim:
        return spec
    if ndim == 1 and isinstance(spec, Conv2dSpec) and spec.H == 1 and spec.KH == 1:
        top, bottom, left, right = spec.padding
        return checked_conv(ConvNdSpec(spec.N, spec.C, spec.O, (spec.W,), (spec.KW,), (spec.stride[1],),
                                       ((left, right),), (spec.dilation[1],), spec.groups, spec.padding_mode,
                                       spec.bias, spec.dtype))
    raise ValueError(f"a {ndim}-D op cannot run the suite layer {spec}")


def as_conv_transpose_nd(spec, ndim: int) -> ConvTransposeNdSpec:
    """A suite row describing a transposed conv by its input, output channels, kernel, stride and
    padding (as ``harness.ops.table.transpose_from_layer`` reads 2-D rows)."""
    if isinstance(spec, ConvTransposeNdSpec):
        return spec
    conv = as_conv_nd(spec, ndim)
    return checked_transpose(ConvTransposeNdSpec(conv.N, conv.C, conv.O, conv.size, conv.kernel, conv.stride,
                                                 tuple(b for b, _ in conv.padding), (0,) * ndim, conv.dilation,
                                                 conv.groups, conv.bias, conv.dtype))
