"""How the verifier runs, references and bounds each op of the convolution family.

Each op's ``call`` goes through the public function (argument parsing, unbatched inputs and
the read-only inputs included); its ``reference`` is the same call on float64 copies with the
reference backend. Error bounds follow from each op's arithmetic, on the magnitudes ``A`` that
the same op computes on absolute values (every op here is linear in each argument with
non-negative coefficients, so that is the sum of absolute terms behind each output):

* conv_transpose2d: the conv2d direct model with ``n = C/groups * KH * KW`` (an upper bound on
  the taps that reach one output).
* conv2d_backward: the direct model per gradient with its own reduction length:
  ``O/groups * KH * KW`` for grad_input (times 9 when reflect/replicate/circular padding folds
  border gradients back), ``N * OH * OW`` for grad_weight and grad_bias.
* max pooling (values and indices) and adaptive max pooling: bit-exact (bound 0): a maximum
  involves no rounding.
* average pooling: a sum of ``k`` terms and one division, worst case ``(k + 1) * u * A``.
* pooling backward: each input pixel sums at most one share per window covering it (at most
  ``KH * KW``), plus the division for average pooling: worst case again.
* separable convolutions: two direct sums in a row; stage 1's error reaches the output through
  ``|w2|``, so ``(gamma_1 + gamma_2) * A`` with ``A`` the two-stage magnitude.

A backend whose ``error_model`` is not ``direct`` (FFT, Winograd) computes these ops as
convolutions (the lowerings, or a native transform of the same size); its bound is the model's
bound on each such conv2d at the largest magnitude, one global number per output, as its
conv2d error is global.
"""

from __future__ import annotations

import numpy as np

from . import conv_family, pooling
from .api import run_conv2d
from .lowering import grad_input_spec, grad_weight_spec, transpose_as_conv2d_spec
from .tolerance import K_SIGMA, UNIT_ROUNDOFF, error_bound


def _u(dtype: str) -> float:
    return UNIT_ROUNDOFF[dtype] + UNIT_ROUNDOFF["float64"]


def direct(dtype: str, n_terms: int, A) -> np.ndarray:
    """The direct model of ``harness.tolerance`` for a sum of ``n_terms`` products."""
    return _u(dtype) * (K_SIGMA * np.sqrt(n_terms) + 2.0) * np.abs(A)


def worst_case(dtype: str, n_roundings: int, A) -> np.ndarray:
    """``n`` roundings each of at most ``u * A``: rigorous, for short sums."""
    return _u(dtype) * n_roundings * np.abs(A)


def model_bound(declared, specs, A, floor: float = 0.0) -> float:
    """A non-direct backend's bound: its model on each lowered conv2d spec at the largest ``A``.

    ``floor`` (the largest single product, max|input| * max|weight|) keeps the scale honest
    where every output is a structural zero: a transform still mixes the non-zero inputs.
    """
    top = np.full((1, 1, 1, 1), max(float(np.max(np.abs(A))) if np.size(A) else 0.0, floor))
    return float(sum(np.max(error_bound(declared.error_model, s, top)) for s in specs))


def _abs(arrays):
    return [None if a is None else np.abs(np.asarray(a, dtype=np.float64)) for a in arrays]


def _largest(*arrays) -> float:
    """The product of the arrays' largest finite magnitudes."""
    out = 1.0
    for a in arrays:
        a = np.abs(np.asarray(a, dtype=np.float64))
        a = a[np.isfinite(a)]
        out *= float(a.max()) if a.size else 0.0
    return out


def _non_direct(declared, op) -> bool:
    """Transform methods (FFT, Winograd) bound each computed conv by their own model."""
    return declared.error_model != "direct"


# -- conv_transpose2d ----------------------------------------------------------------------------------
def transpose_call(backend, case, arrays):
    x, w, b = arrays
    return (conv_family.conv_transpose2d(x, w, b, backend=backend, **case.kwargs),)


def transpose_bounds(backend, reference, case, arrays):
    (A,) = transpose_call(reference, case, _abs(arrays))
    spec = case.spec
    if _non_direct(backend, "conv_transpose2d"):
        return (model_bound(backend, [transpose_as_conv2d_spec(spec)], A, _largest(arrays[0], arrays[1])),)
    return (direct(spec.dtype, spec.n_acc + spec.bias, A),)


# -- conv2d_backward -----------------------------------------------------------------------------------
def backward_call(backend, case, arrays):
    x, w, go = arrays
    out = conv_family.conv2d_backward(x, w, go, bias=case.bias, backend=backend, **case.kwargs)
    return tuple(g for g in out if g is not None)


def backward_bounds(backend, reference, case, arrays):
    A = backward_call(reference, case, _abs(arrays))
    spec = case.spec
    fold = 9 if spec.padding_mode != "zeros" else 1
    lengths = [spec.O // spec.groups * spec.KH * spec.KW * fold, max(1, spec.N * spec.OH * spec.OW),
               max(1, spec.N * spec.OH * spec.OW)]
    if _non_direct(backend, "conv2d_backward"):
        x, w, go = arrays
        bounds = [model_bound(backend, [transpose_as_conv2d_spec(grad_input_spec(spec))], A[0], _largest(go, w)),
                  model_bound(backend, [grad_weight_spec(spec)], A[1], _largest(x, go))]
        if spec.bias:  # grad_bias is a plain sum in the lowering
            bounds.append(direct(spec.dtype, lengths[2], A[2]))
        return tuple(bounds)
    return tuple(direct(spec.dtype, n, a) for n, a in zip(lengths, A))


# -- pooling -------------------------------------------------------------------------------------------
def max_pool_call(backend, case, arrays):
    out = pooling.max_pool2d(arrays[0], return_indices=case.return_indices, backend=backend, **case.kwargs)
    return out if case.return_indices else (out,)


def avg_pool_call(backend, case, arrays):
    return (pooling.avg_pool2d(arrays[0], backend=backend, **case.kwargs),)


def adaptive_max_call(backend, case, arrays):
    out = pooling.adaptive_max_pool2d(arrays[0], case.output_size, case.return_indices, backend=backend)
    return out if case.return_indices else (out,)


def adaptive_avg_call(backend, case, arrays):
    return (pooling.adaptive_avg_pool2d(arrays[0], case.output_size, backend=backend),)


def max_backward_call(backend, case, arrays):
    return (pooling.max_pool2d_backward(*arrays, backend=backend, **case.kwargs),)


def avg_backward_call(backend, case, arrays):
    return (pooling.avg_pool2d_backward(*arrays, backend=backend, **case.kwargs),)


def exact_bounds(call):
    """Bit-exact outputs (maxima and their indices)."""
    def bounds(backend, reference, case, arrays):
        return tuple(0.0 for _ in call(reference, case, arrays))

    return bounds


def avg_pool_bounds(backend, reference, case, arrays):
    (A,) = avg_pool_call(reference, case, _abs(arrays))
    return (worst_case(case.dtype, case.spec.n_acc + 1, A),)


def adaptive_avg_bounds(backend, reference, case, arrays):
    (A,) = adaptive_avg_call(reference, case, _abs(arrays))
    return (worst_case(case.dtype, case.spec.n_acc + 1, A),)


def pool_backward_bounds(call):
    """Each pixel sums at most one share per covering window (+ the division for average pooling)."""
    def bounds(backend, reference, case, arrays):
        x, go = arrays
        (A,) = call(reference, case, [np.asarray(x, np.float64), np.abs(np.asarray(go, np.float64))])
        return (worst_case(case.dtype, case.spec.window + 2, A),)

    return bounds


# -- separable -----------------------------------------------------------------------------------------
def depthwise_separable_call(backend, case, arrays):
    return (conv_family.depthwise_separable_conv2d(*arrays, backend=backend, **case.kwargs),)


def spatially_separable_call(backend, case, arrays):
    return (conv_family.spatially_separable_conv2d(*arrays, backend=backend, **case.kwargs),)


def _two_stage_bounds(call, op, stages, first_weight):
    def bounds(backend, reference, case, arrays):
        (A,) = call(reference, case, _abs(arrays))
        spec = case.spec
        first, second = stages(spec)
        if _non_direct(backend, op):
            # stage 1's error, at most e1 per intermediate value, is summed through |w2| by stage 2
            x, w1, w2, b1 = first_weight(arrays)
            batched = x if case.batched else x[np.newaxis]
            A1 = run_conv2d(reference, *_abs([batched, w1, b1]), first.with_(dtype="float64"))
            e1 = model_bound(backend, [first], A1, _largest(x, w1))
            reach = float(np.abs(np.asarray(w2, np.float64)).reshape(w2.shape[0], -1).sum(axis=1).max(initial=0))
            return (e1 * reach + model_bound(backend, [second], A, _largest(x, w1, w2)),)
        gamma = K_SIGMA * (np.sqrt(first.n_acc + 1) + np.sqrt(second.n_acc + 1)) + 4.0
        return (_u(spec.dtype) * gamma * np.abs(A),)

    return bounds


depthwise_separable_bounds = _two_stage_bounds(
    depthwise_separable_call, "depthwise_separable_conv2d", lambda s: (s.depthwise, s.pointwise),
    lambda a: (a[0], a[1], a[2], a[3]))
spatially_separable_bounds = _two_stage_bounds(
    spatially_separable_call, "spatially_separable_conv2d", lambda s: (s.column, s.row),
    lambda a: (a[0], a[1], a[2], None))

