"""The op table: one :class:`Op` record per op, everything the harness knows about it.

In the spirit of PyTorch's OpInfo ``op_db``: a record holds an op's features, its spec type,
the arrays a backend receives and the outputs it must return, its operation and byte counts,
its lowering onto other ops, its verification cases and error bound, and how a benchmark
builds its inputs. The registry, the dispatch path, the verifier, the benchmarks, the
metrics, the reports and the command line read these records and nothing else about an op.

Adding an op is one module (its spec, cases and, if any, lowering) plus one
:func:`register_op` call; ``tests/test_op_table.py`` adds a toy op that way and checks it is
wired everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from harness.ops import lowering, metrics
from harness.ops.cases import backward as backward_cases
from harness.ops.cases import conv2d as conv2d_cases
from harness.ops.cases import pool as pool_cases
from harness.ops.cases import separable as separable_cases
from harness.ops.cases import transpose as transpose_cases
from harness.ops.conv_spec import CONV2D_FEATURES, Conv2dSpec, conv2d_spec
from harness.ops.pool_spec import (ADAPTIVE_POOL2D_FEATURES, AVG_POOL2D_FEATURES, MAX_POOL2D_FEATURES,
                                   AdaptivePool2dSpec, Pool2dSpec, adaptive_pool2d_spec, pool2d_spec)
from harness.ops.separable import (DEPTHWISE_SEPARABLE_FEATURES, DepthwiseSeparableSpec, SpatiallySeparableSpec,
                                   depthwise_separable_spec, spatially_separable_spec)
from harness.ops.tolerance import gamma, largest, model_bound, output_rounding, storage_roundings, worst_case
from harness.ops.transpose_spec import CONV_TRANSPOSE2D_FEATURES, ConvTranspose2dSpec, conv_transpose2d_spec


@dataclass(frozen=True)
class BoundContext:
    """What an op's error bound may use beyond the case: the backend's error model, and the
    reference conv2d (float64) for the magnitudes of intermediate stages."""

    model: object  # harness.ops.tolerance.ErrorModel
    reference_conv2d: Callable  # (x, w, bias, spec) -> y, 4-D, float64


def _absolute(arrays):
    return tuple(None if a is None else np.abs(np.asarray(a, dtype=np.float64)) for a in arrays)


@dataclass(frozen=True)
class Op:
    """Everything the harness knows about one op.

    Attributes
    ----------
    name : str
        The op's name, as backends implement it (``Backend.ops``) and the CLI takes it.
    features : frozenset of str
        Every optional feature a call can need (a backend declares the subset it implements).
    spec_type : type
        The resolved spec a backend receives last (its ``features`` say what a call needs).
    inputs : tuple of str
        The arrays a backend receives, in order (None where optional and absent).
    make_spec : callable
        ``make_spec(*arrays, **options)`` -> ``(spec, batched)``: the op's argument checks, as
        its public function applies them (arrays in :attr:`inputs` order, options by name).
    batched_inputs, batched_outputs : tuple of int
        Which inputs and outputs carry the batch axis (an unbatched call adds and drops it).
    outputs : callable
        ``outputs(spec)`` -> ``(shape, dtype)`` per output, None where the output must be None.
    counts : callable
        ``counts(spec)`` -> ``out_shape``, ``macs``, ``flops_dense``, ``flops_useful``, ``params``
        and, where defined, ``bytes`` (minimal traffic), ``intensity`` and ``cpr``.
    table_cases, random_cases : callable
        Hand-picked cases; ``random_cases(features, dtypes, count, seed, nonfinite=True)``.
    error_inputs : callable
        Calls the op must refuse: ``(id, call kwargs, exception type, message regex)`` for its
        public function (``harness.<name>``); every record's are checked by ``tests/test_op_table.py``.
    case_type : type or tuple of types
        The op's case class(es); its name appears in reproducers.
    bounds : callable
        ``bounds(ctx, case, arrays, A)`` -> one per-element error bound per output, with ``A``
        the op's outputs on :attr:`magnitude_inputs` (computed in float64 by the reference).
    magnitude_inputs : callable
        The float64 inputs whose outputs bound the summed magnitudes (absolute values by default).
    lowering : harness.ops.lowering.Lowering or None
        How the harness provides the op from other ops of a backend.
    from_layer : callable or None
        A suite row's Conv2dSpec -> this op's spec (suites describe every layer conv-like).
    bench_inputs : callable or None
        ``bench_inputs(spec, rng)`` -> the arrays a benchmark times the op on; None: not benchmarked.
    structural_zeros : bool
        The correct output is mostly zero by construction (a transposed conv's gaps, the
        non-maxima of max-pool backward): the verifier does not mark such cases mistrusted.
    """

    name: str
    features: frozenset
    spec_type: type
    inputs: tuple
    make_spec: Callable
    outputs: Callable
    counts: Callable
    table_cases: Callable
    random_cases: Callable
    case_type: object
    bounds: Callable
    batched_inputs: tuple = (0,)
    batched_outputs: tuple = (0,)
    magnitude_inputs: Callable = _absolute
    error_inputs: Callable = list
    lowering: lowering.Lowering | None = None
    from_layer: Callable | None = None
    bench_inputs: Callable | None = None
    structural_zeros: bool = False
    description: str = field(default="", compare=False)

    def memory_bytes(self, spec) -> int:
        """Bytes a call allocates before any backend workspace: its outputs and a padded input copy."""
        total = 0
        for out in self.outputs(spec):
            if out is not None:
                shape, dtype = out
                total += int(np.prod(shape, dtype=np.float64)) * np.dtype(dtype).itemsize
        padded = getattr(spec, "padded_size", None)
        if padded is None and hasattr(spec, "x_shape"):
            padded = int(np.prod(spec.x_shape, dtype=np.float64))
        return total + int(padded or 0) * np.dtype(spec.dtype).itemsize


OPS: dict[str, Op] = {}
_VERSION = [0]  # bumped on every change, so the registry re-derives backends' lowerings


def register_op(op: Op) -> Op:
    """Add ``op`` to the table (a later record of the same name replaces it)."""
    if not isinstance(op, Op):
        raise TypeError(f"register_op takes an Op record, got {type(op).__name__}")
    OPS[op.name] = op
    _VERSION[0] += 1
    return op


def unregister_op(name: str) -> None:
    """Remove an op added with :func:`register_op` (tests and plug-ins)."""
    if OPS.pop(name, None) is not None:
        _VERSION[0] += 1


def table_version() -> int:
    """A number that changes whenever an op is registered or removed."""
    return _VERSION[0]


def op_info(op: str) -> Op:
    """The record of ``op``; ValueError lists the known ops."""
    try:
        return OPS[op]
    except (KeyError, TypeError):
        raise ValueError(f"unknown op {op!r}; known ops: {', '.join(OPS)}") from None


def op_features() -> dict[str, frozenset]:
    """Op name -> every feature a call of it can need."""
    return {name: op.features for name, op in OPS.items()}


def op_of(case) -> str:
    """The op a case belongs to."""
    for name, info in OPS.items():
        if isinstance(case, info.case_type):
            return name
    raise TypeError(f"{type(case).__name__} is not a case of any known op")


def as_dtype(spec, dtype: str):
    """``spec`` with its dtype changed (the float64 reference runs on it)."""
    if hasattr(spec, "with_dtype"):
        return spec.with_dtype(dtype)
    return replace(spec, dtype=dtype)


# -- counts ------------------------------------------------------------------------------------------------
def _shape_text(shape) -> str:
    return "x".join(map(str, shape))


def _with_traffic(counts: dict, spec, elements: int) -> dict:
    """Add ``bytes`` (minimal traffic, ``elements`` moved once), ``intensity`` and ``cpr``."""
    moved = np.dtype(spec.dtype).itemsize * elements
    counts.setdefault("flops_useful", counts["flops_dense"])
    counts["bytes"] = moved
    counts["intensity"] = counts["flops_dense"] / moved if moved else 0.0
    counts["cpr"] = counts["macs"] / counts["params"] if counts["params"] else float("nan")
    return counts


def _conv2d_counts(spec: Conv2dSpec) -> dict:
    return metrics.analyse(spec)


def _transpose_counts(spec: ConvTranspose2dSpec) -> dict:
    # every product lands on a real output (zero-interleaving is a lowering's cost, not the op's)
    params = metrics.transpose_params(spec)
    counts = {"out_shape": _shape_text(spec.out_shape), "macs": metrics.transpose_macs(spec),
              "flops_dense": metrics.transpose_flops(spec), "params": params}
    return _with_traffic(counts, spec, int(np.prod(spec.x_shape)) + params + int(np.prod(spec.out_shape)))


def _pool_counts(spec) -> dict:
    counts = {"out_shape": _shape_text(spec.out_shape), "macs": 0, "flops_dense": metrics.pool_flops(spec),
              "params": 0}
    return _with_traffic(counts, spec, int(np.prod(spec.x_shape)) + int(np.prod(spec.out_shape)))


def _backward_counts(spec: Conv2dSpec) -> dict:
    return {"out_shape": _shape_text(spec.x_shape), "macs": 2 * metrics.macs(spec),
            "flops_dense": sum(metrics.conv2d_backward_flops(spec).values()), "params": metrics.params(spec)}


def _pool_backward_counts(spec) -> dict:
    return {"out_shape": _shape_text(spec.x_shape), "macs": 0, "flops_dense": metrics.pool_backward_flops(spec),
            "params": 0}


def _separable_counts(spec) -> dict:
    counts = metrics.separable_accounting(spec)
    return {"out_shape": _shape_text(spec.out_shape), "macs": counts["macs"], "flops_dense": counts["flops"],
            "params": counts["params"]}


# -- bounds (the arithmetic of each op; see harness.ops.tolerance) -------------------------------------------
def _conv2d_bounds(ctx, case, arrays, A):
    return (ctx.model.bound(case.spec, A[0]),)


def _transpose_bounds(ctx, case, arrays, A):
    spec = case.spec
    if not ctx.model.elementwise:
        return (model_bound(ctx.model, [lowering.transpose_as_conv2d_spec(spec)], A[0], largest(arrays[0], arrays[1])),)
    return (gamma(spec.dtype, spec.n_acc + spec.bias, A[0]),)


def _backward_bounds(ctx, case, arrays, A):
    """grad_input: ``O/groups*KH*KW`` terms (times 9 when non-zero padding folds border gradients
    back); grad_weight and grad_bias: ``N*OH*OW`` terms."""
    spec = case.spec
    fold = 9 if spec.padding_mode != "zeros" else 1
    lengths = [spec.O // spec.groups * spec.KH * spec.KW * fold, max(1, spec.N * spec.OH * spec.OW),
               max(1, spec.N * spec.OH * spec.OW)]
    # in a half dtype, the padded input's gradient is rounded to it and its border folded in it
    # (torch's F.pad backward and the lowering alike): twice the positions that fold onto one pixel
    top, bottom, left, right = spec.padding
    folded = 2 * (1 + top + bottom) * (1 + left + right) if spec.padding_mode != "zeros" else 0
    if not ctx.model.elementwise:
        x, w, go = arrays
        bounds = [model_bound(ctx.model, [lowering.transpose_as_conv2d_spec(lowering.grad_input_spec(spec))], A[0],
                              largest(go, w)),
                  model_bound(ctx.model, [lowering.grad_weight_spec(spec)], A[1], largest(x, go))]
        bounds[0] += np.max(storage_roundings(spec.dtype, folded, A[0]), initial=0)
        if spec.bias:  # grad_bias is a plain sum in the lowering
            bounds.append(gamma(spec.dtype, lengths[2], A[2]))
        return tuple(bounds)
    bounds = [gamma(spec.dtype, n, a) for n, a in zip(lengths, A)]
    bounds[0] = bounds[0] + storage_roundings(spec.dtype, folded, A[0])
    return tuple(bounds)


def _exact_bounds(ctx, case, arrays, A):
    """Maxima and their indices involve no rounding: bit-exact."""
    return tuple(0.0 for _ in A)


def _average_bounds(ctx, case, arrays, A):
    """A sum of ``k`` terms and one division."""
    return (worst_case(case.dtype, case.spec.n_acc + 1, A[0]),)


def _pool_backward_bounds(ctx, case, arrays, A):
    """Each pixel sums at most one share per covering window (+ the division for average pooling);
    in a half dtype torch keeps the shares and their sum in it (charged as half roundings)."""
    n = case.spec.window + 2
    return (worst_case(case.dtype, n, A[0]) + storage_roundings(case.dtype, n, A[0]),)


def _pool_backward_magnitudes(arrays):
    x, go = arrays  # the windows' maxima depend on x's signs: only grad_out is taken absolutely
    return np.asarray(x, np.float64), np.abs(np.asarray(go, np.float64))


def _two_stage_bounds(stages, stage_one):
    """Two direct sums in a row: stage 1's error reaches the output through ``|w2|``."""
    def bounds(ctx, case, arrays, A):
        spec = case.spec
        first, second = stages(spec)
        if not ctx.model.elementwise:
            x, w1, w2, b1 = stage_one(arrays)
            x4 = x if case.batched else x[np.newaxis]
            A1 = ctx.reference_conv2d(*_absolute([x4, w1, b1]), as_dtype(first, "float64"))
            # (a half-precision stage-one result is also rounded to half before stage two)
            e1 = (model_bound(ctx.model, [first], A1, largest(x, w1))
                  + np.max(output_rounding(spec.dtype, A1), initial=0))
            reach = float(np.abs(np.asarray(w2, np.float64)).reshape(w2.shape[0], -1).sum(axis=1).max(initial=0))
            return (e1 * reach + model_bound(ctx.model, [second], A[0], largest(x, w1, w2)),)
        return (gamma(spec.dtype, first.n_acc + 1, A[0]) + gamma(spec.dtype, second.n_acc + 1, A[0])
                + output_rounding(spec.dtype, A[0]),)  # stage one's result rounded to a half dtype

    return bounds


# -- benchmark inputs and suite rows --------------------------------------------------------------------------
def conv_inputs(spec, rng):
    """x, w (and bias when the spec has one), standard normal, for timing."""
    x = rng.standard_normal(spec.x_shape, dtype=np.float64).astype(spec.dtype)
    w = rng.standard_normal(spec.w_shape, dtype=np.float64).astype(spec.dtype)
    b = rng.standard_normal(spec.O).astype(spec.dtype) if spec.bias else None
    return x, w, b


def transpose_from_layer(spec):
    """Suite files describe a transposed conv by its input (N, C, H, W), output channels O,
    kernel, stride, padding and dilation, in a Conv2dSpec's fields (see ``harness/suites``)."""
    if not isinstance(spec, Conv2dSpec):
        return spec
    top, bottom, left, right = spec.padding
    end = (bottom, right) if (bottom, right) != (top, left) else None  # per-side padding carried through
    return ConvTranspose2dSpec(spec.N, spec.C, spec.H, spec.W, spec.O, spec.KH, spec.KW, spec.stride,
                               (top, left), (0, 0), spec.dilation, spec.groups, spec.bias, spec.dtype,
                               end).with_()


def _outputs(spec):
    return spec.outputs


def _grads(spec):
    return ((spec.x_shape, spec.dtype), (spec.w_shape, spec.dtype), ((spec.O,), spec.dtype) if spec.bias else None)


def _grad_input(spec):
    return ((spec.x_shape, spec.dtype),)


def _backward_spec(x, w, grad_out, bias=False, **options):
    """conv2d_backward's arguments: the forward call's, and whether it had a bias."""
    spec, batched = conv2d_spec(x, w, None, **options)
    return spec.with_(bias=bool(bias)), batched


def _pooling(kind, spec_of):
    """A pooling op's spec function: the input first; a backward op's grad_out is checked by its caller."""
    return lambda x, *grad_out, **options: spec_of(kind, x, **options)


def _pool_random(cls):
    return lambda *args, **kw: pool_cases.pool_random_cases(cls, *args, **kw)


def _adaptive_random(cls):
    return lambda *args, **kw: pool_cases.adaptive_random_cases(cls, *args, **kw)


# -- the built-in ops -----------------------------------------------------------------------------------------
for _op in [
    Op("conv2d", CONV2D_FEATURES, Conv2dSpec, ("x", "w", "bias"), conv2d_spec, lambda s: ((s.out_shape, s.dtype),),
       _conv2d_counts, conv2d_cases.table_cases, conv2d_cases.random_cases, conv2d_cases.Conv2dCase, _conv2d_bounds,
       error_inputs=conv2d_cases.error_inputs, bench_inputs=conv_inputs, description="2-D convolution (cross-correlation)"),
    Op("conv_transpose2d", CONV_TRANSPOSE2D_FEATURES, ConvTranspose2dSpec, ("x", "w", "bias"), conv_transpose2d_spec, _outputs,
       _transpose_counts, transpose_cases.table_cases, transpose_cases.random_cases,
       transpose_cases.ConvTranspose2dCase, _transpose_bounds, lowering=lowering.CONV_TRANSPOSE2D,
       from_layer=transpose_from_layer, bench_inputs=conv_inputs, structural_zeros=True,
       description="2-D transposed convolution"),
    Op("conv2d_backward", CONV2D_FEATURES, Conv2dSpec, ("x", "w", "grad_out"), _backward_spec, _grads, _backward_counts,
       backward_cases.table_cases, backward_cases.random_cases, backward_cases.Conv2dBackwardCase, _backward_bounds,
       batched_inputs=(0, 2), batched_outputs=(0,), lowering=lowering.CONV2D_BACKWARD, structural_zeros=True,
       description="gradients of conv2d: grad_input, grad_weight, grad_bias"),
    Op("max_pool2d", MAX_POOL2D_FEATURES, Pool2dSpec, ("x",), _pooling("max", pool2d_spec), _outputs, _pool_counts,
       pool_cases.max_pool_table, _pool_random(pool_cases.MaxPool2dCase), pool_cases.MaxPool2dCase, _exact_bounds,
       batched_outputs=(0, 1), error_inputs=lambda: pool_cases.error_inputs("max_pool2d"),
       description="2-D max pooling (values, optional indices)"),
    Op("avg_pool2d", AVG_POOL2D_FEATURES, Pool2dSpec, ("x",), _pooling("avg", pool2d_spec), _outputs, _pool_counts,
       pool_cases.avg_pool_table, _pool_random(pool_cases.AvgPool2dCase), pool_cases.AvgPool2dCase, _average_bounds,
       error_inputs=lambda: pool_cases.error_inputs("avg_pool2d"),
       description="2-D average pooling"),
    Op("adaptive_max_pool2d", ADAPTIVE_POOL2D_FEATURES, AdaptivePool2dSpec, ("x",), _pooling("max", adaptive_pool2d_spec), _outputs, _pool_counts,
       lambda: pool_cases.adaptive_table("max"), _adaptive_random(pool_cases.AdaptiveMaxPool2dCase),
       pool_cases.AdaptiveMaxPool2dCase, _exact_bounds, batched_outputs=(0, 1),
       error_inputs=lambda: pool_cases.error_inputs("adaptive_max_pool2d"),
       description="adaptive 2-D max pooling"),
    Op("adaptive_avg_pool2d", ADAPTIVE_POOL2D_FEATURES - {"return_indices"}, AdaptivePool2dSpec, ("x",),
       _pooling("avg", adaptive_pool2d_spec), _outputs,
       _pool_counts, lambda: pool_cases.adaptive_table("avg"), _adaptive_random(pool_cases.AdaptiveAvgPool2dCase),
       pool_cases.AdaptiveAvgPool2dCase, _average_bounds, error_inputs=lambda: pool_cases.error_inputs("adaptive_avg_pool2d"),
       description="adaptive 2-D average pooling"),
    Op("max_pool2d_backward", MAX_POOL2D_FEATURES - {"return_indices"}, Pool2dSpec, ("x", "grad_out"),
       _pooling("max", pool2d_spec), _grad_input,
       _pool_backward_counts, lambda: pool_cases.max_pool_table(backward=True),
       _pool_random(pool_cases.MaxPool2dBackwardCase), pool_cases.MaxPool2dBackwardCase,
       _pool_backward_bounds, batched_inputs=(0, 1), magnitude_inputs=_pool_backward_magnitudes,
       structural_zeros=True, description="gradient of max pooling"),
    Op("avg_pool2d_backward", AVG_POOL2D_FEATURES, Pool2dSpec, ("x", "grad_out"), _pooling("avg", pool2d_spec), _grad_input,
       _pool_backward_counts, lambda: pool_cases.avg_pool_table(backward=True),
       _pool_random(pool_cases.AvgPool2dBackwardCase), pool_cases.AvgPool2dBackwardCase,
       _pool_backward_bounds, batched_inputs=(0, 1), magnitude_inputs=_pool_backward_magnitudes,
       structural_zeros=True, description="gradient of average pooling"),
    Op("depthwise_separable_conv2d", DEPTHWISE_SEPARABLE_FEATURES, DepthwiseSeparableSpec,
       ("x", "w_depthwise", "w_pointwise", "bias_depthwise", "bias_pointwise"), depthwise_separable_spec, _outputs, _separable_counts,
       separable_cases.depthwise_table, separable_cases.depthwise_random_cases, separable_cases.DepthwiseSeparableCase,
       _two_stage_bounds(lambda s: (s.depthwise, s.pointwise), lambda a: (a[0], a[1], a[2], a[3])),
       lowering=lowering.DEPTHWISE_SEPARABLE, description="depthwise conv then pointwise 1x1 conv"),
    Op("spatially_separable_conv2d", CONV2D_FEATURES, SpatiallySeparableSpec, ("x", "w_column", "w_row", "bias"),
       spatially_separable_spec,
       _outputs, _separable_counts, separable_cases.spatial_table, separable_cases.spatial_random_cases,
       separable_cases.SpatiallySeparableCase,
       _two_stage_bounds(lambda s: (s.column, s.row), lambda a: (a[0], a[1], a[2], None)),
       lowering=lowering.SPATIALLY_SEPARABLE, description="KHx1 column conv then 1xKW row conv"),
]:
    register_op(_op)


# -- the 1-D and 3-D ops (dimension-generic specs, cases, counts and bounds; lowerings onto 2-D) ------------
from harness.ops import bounds_nd, lowering_nd, lowering_pool3d, metrics_nd  # noqa: E402
from harness.ops.cases import conv_nd as conv_nd_cases  # noqa: E402
from harness.ops.cases import pool_nd as pool_nd_cases  # noqa: E402
from harness.ops.conv_nd_spec import (CONV_ND_FEATURES, CONV_TRANSPOSE_ND_FEATURES, ConvNdSpec,  # noqa: E402
                                      ConvTransposeNdSpec, as_conv_nd, as_conv_transpose_nd, conv_nd_spec,
                                      conv_transpose_nd_spec)
from harness.ops.pool_nd_spec import (AVG_POOL1D_FEATURES, AVG_POOL_ND_FEATURES, MAX_POOL_ND_FEATURES,  # noqa: E402
                                      PoolNdSpec, pool_nd_spec)


def _nd_counts(count):
    """An N-d op's counts with the traffic figures every forward record reports."""
    return lambda spec: _with_traffic(count(spec), spec, metrics_nd.traffic_elements(spec))


def _nd_records(ndim: int) -> list:
    """The conv, transposed conv, backward and pooling records of one spatial rank."""
    d = f"{ndim}d"
    conv, transpose = f"conv{d}", f"conv_transpose{d}"
    C = conv_nd_cases
    cls = {(kind, back): pool_nd_cases.CASE_CLASSES[(ndim, kind, back)] for kind in ("max", "avg")
           for back in (False, True)}
    one = ndim == 1

    def backward_spec(x, w, grad_out, bias=False, **options):
        spec, batched = conv_nd_spec(conv, ndim, x, w, None, **options)
        return spec.with_(bias=bool(bias)), batched

    def pooling(kind):
        return lambda x, *grad_out, **options: pool_nd_spec(kind, ndim, x, **options)

    conv_case, back_case = (C.Conv1dCase, C.Conv1dBackwardCase) if one else (C.Conv3dCase, C.Conv3dBackwardCase)
    transpose_case = C.ConvTranspose1dCase if one else C.ConvTranspose3dCase
    avg_features = AVG_POOL1D_FEATURES if one else AVG_POOL_ND_FEATURES
    low = lowering_nd
    return [
        Op(conv, CONV_ND_FEATURES, ConvNdSpec, ("x", "w", "bias"),
           lambda x, w, bias=None, **o: conv_nd_spec(conv, ndim, x, w, bias, **o), _outputs,
           _nd_counts(metrics_nd.conv_nd_counts), C.conv1d_table if one else C.conv3d_table,
           C.random_cases_of(conv_case), conv_case, bounds_nd.conv_nd_bounds,
           error_inputs=lambda: C.error_inputs(conv, ndim), lowering=low.CONV1D if one else low.CONV3D,
           from_layer=lambda s: as_conv_nd(s, ndim), bench_inputs=conv_inputs,
           description=f"{ndim}-D convolution (cross-correlation)"),
        Op(transpose, CONV_TRANSPOSE_ND_FEATURES, ConvTransposeNdSpec, ("x", "w", "bias"),
           lambda x, w, bias=None, **o: conv_transpose_nd_spec(transpose, ndim, x, w, bias, **o), _outputs,
           _nd_counts(metrics_nd.conv_transpose_nd_counts),
           C.conv_transpose1d_table if one else C.conv_transpose3d_table,
           C.random_cases_of(transpose_case, "transpose"), transpose_case, bounds_nd.conv_transpose_nd_bounds,
           error_inputs=lambda: C.transpose_error_inputs(transpose, ndim),
           lowering=low.CONV_TRANSPOSE1D if one else low.CONV_TRANSPOSE3D,
           from_layer=lambda s: as_conv_transpose_nd(s, ndim), bench_inputs=conv_inputs, structural_zeros=True,
           description=f"{ndim}-D transposed convolution"),
        Op(f"{conv}_backward", CONV_ND_FEATURES, ConvNdSpec, ("x", "w", "grad_out"), backward_spec, _grads,
           metrics_nd.conv_nd_backward_counts, C.conv1d_backward_table if one else C.conv3d_backward_table,
           C.random_cases_of(back_case), back_case, bounds_nd.conv_nd_backward_bounds, batched_inputs=(0, 2),
           lowering=low.CONV1D_BACKWARD if one else low.CONV3D_BACKWARD, structural_zeros=True,
           description=f"gradients of {conv}: grad_input, grad_weight, grad_bias"),
        Op(f"max_pool{d}", MAX_POOL_ND_FEATURES, PoolNdSpec, ("x",), pooling("max"), _outputs,
           _nd_counts(metrics_nd.pool_nd_counts), lambda: pool_nd_cases.pool_table(ndim, "max"),
           pool_nd_cases.pool_nd_random_cases(cls["max", False]), cls["max", False], _exact_bounds,
           batched_outputs=(0, 1), error_inputs=lambda: pool_nd_cases.error_inputs(f"max_pool{d}", ndim),
           lowering=low.pool1d_lowering("max_pool2d", "max_pool1d", 2) if one else lowering_pool3d.MAX_POOL3D,
           description=f"{ndim}-D max pooling (values, optional indices)"),
        Op(f"avg_pool{d}", avg_features, PoolNdSpec, ("x",), pooling("avg"), _outputs,
           _nd_counts(metrics_nd.pool_nd_counts), lambda: pool_nd_cases.pool_table(ndim, "avg"),
           pool_nd_cases.pool_nd_random_cases(cls["avg", False]), cls["avg", False], _average_bounds,
           error_inputs=lambda: pool_nd_cases.error_inputs(f"avg_pool{d}", ndim),
           lowering=low.pool1d_lowering("avg_pool2d", "avg_pool1d", 1, {"divisor_override"}) if one
           else lowering_pool3d.AVG_POOL3D,
           description=f"{ndim}-D average pooling"),
        Op(f"max_pool{d}_backward", MAX_POOL_ND_FEATURES - {"return_indices"}, PoolNdSpec, ("x", "grad_out"),
           pooling("max"), _grad_input, metrics_nd.pool_nd_backward_counts,
           lambda: pool_nd_cases.pool_table(ndim, "max", backward=True),
           pool_nd_cases.pool_nd_random_cases(cls["max", True]), cls["max", True], _pool_backward_bounds,
           batched_inputs=(0, 1), magnitude_inputs=_pool_backward_magnitudes, structural_zeros=True,
           lowering=low.pool1d_lowering("max_pool2d_backward", "max_pool1d_backward", 1) if one
           else lowering_pool3d.MAX_POOL3D_BACKWARD,
           description=f"gradient of {ndim}-D max pooling"),
        Op(f"avg_pool{d}_backward", avg_features, PoolNdSpec, ("x", "grad_out"), pooling("avg"), _grad_input,
           metrics_nd.pool_nd_backward_counts, lambda: pool_nd_cases.pool_table(ndim, "avg", backward=True),
           pool_nd_cases.pool_nd_random_cases(cls["avg", True]), cls["avg", True], _pool_backward_bounds,
           batched_inputs=(0, 1), magnitude_inputs=_pool_backward_magnitudes, structural_zeros=True,
           lowering=low.pool1d_lowering("avg_pool2d_backward", "avg_pool1d_backward", 1, {"divisor_override"})
           if one else lowering_pool3d.AVG_POOL3D_BACKWARD, description=f"gradient of {ndim}-D average pooling"),
    ]


# 1-D first, then 3-D: conv_transpose3d and conv3d_backward lower onto conv3d, registered before them
for _op in sorted(_nd_records(1) + _nd_records(3), key=lambda op: ("pool" in op.name, "backward" in op.name,
                                                                     "transpose" in op.name)):
    register_op(_op)
