"""3-D max and average pooling (and their backward passes) lowered onto the 2-D pooling ops.

A 3-D window is KD planes of 2-D windows. For depth tap ``kd`` the input planes
``z = od*sd - pd + kd*dd`` of every output depth ``od`` are stacked into the batch and pooled in 2-D
(kernel, stride, padding, dilation and ceil_mode of the height and width axes; both give the
same output height and width, since torch sizes each axis alone); taps with ``z`` in the depth
padding are left out.

* max: the per-tap results are combined with torch's scan rule (a later tap wins only if
  larger, or NaN), which keeps torch's order — depth first — so values and flat indices
  ``z*H*W + (2-D index)`` are torch's.
* average: the 2-D calls sum (``divisor_override=1``), the KD sums are added, and the 3-D
  divisor (:func:`harness.ops.pool_nd_spec.avg_divisors_nd`) divides once.
* backward: max sends each output's gradient through the 2-D backward of the tap that won
  (grad_out masked to the outputs whose maximum lies in that tap's plane); average sends
  ``grad_out / divisor`` through every tap's 2-D backward with ``divisor_override=1``.
  Each plane's gradient is added back at its depth ``z``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from harness.ops.lowering import Lowering, sub_op
from harness.ops.pool_nd_spec import PoolNdSpec, avg_divisors_nd
from harness.ops.pool_spec import Pool2dSpec


def plane_spec(spec: PoolNdSpec, indices: bool = False) -> Pool2dSpec:
    """The 2-D pooling every depth tap runs (all output depths stacked in the batch)."""
    _, H, W = spec.size
    return Pool2dSpec(spec.kind, spec.N * spec.out_dims[0], spec.C, H, W, spec.kernel[1:], spec.stride[1:],
                      spec.padding[1:], spec.dilation[1:], spec.ceil_mode, True,
                      1 if spec.kind == "avg" else None, indices, spec.dtype)


def depth_taps(spec: PoolNdSpec):
    """For each depth tap: the input depth of every output depth (clipped) and which are inside."""
    OD = spec.out_dims[0]
    D = spec.size[0]
    for kd in range(spec.kernel[0]):
        z = np.arange(OD) * spec.stride[0] - spec.padding[0] + kd * spec.dilation[0]
        yield np.clip(z, 0, D - 1), (z >= 0) & (z < D)


def stacked(x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Planes ``x[:, :, z[od]]`` as a batch of N*OD images (N, C, OD, H, W -> N*OD, C, H, W)."""
    planes = x[:, :, z].transpose(0, 2, 1, 3, 4)
    return np.ascontiguousarray(planes).reshape(-1, x.shape[1], x.shape[3], x.shape[4])


def unstacked(y: np.ndarray, spec: PoolNdSpec) -> np.ndarray:
    """(N*OD, C, OH, OW) -> (N, C, OD, OH, OW)."""
    N, C, OD = spec.N, spec.C, spec.out_dims[0]
    return y.reshape(N, OD, C, *y.shape[2:]).transpose(0, 2, 1, 3, 4)


def _inside(mask: np.ndarray) -> np.ndarray:
    """A per-output-depth mask broadcast over (N, C, OD, OH, OW)."""
    return mask[None, None, :, None, None]


def max_pool3d_by_planes(pool, x, spec: PoolNdSpec):
    """(values, flat indices or None) of a 3-D max pooling from 2-D ``pool(x, Pool2dSpec)`` calls."""
    best = np.full(spec.out_shape, -np.inf, dtype=np.float64)
    index = np.full(spec.out_shape, -1, dtype=np.int64)
    plane = spec.size[1] * spec.size[2]
    for z, inside in depth_taps(spec):
        values, where = pool(stacked(x, z), plane_spec(spec, indices=True))
        values, where = unstacked(values, spec), unstacked(where, spec)
        take = _inside(inside) & ((values > best) | np.isnan(values) | (index < 0))  # torch's scan
        best = np.where(take, values, best)
        index = np.where(take, z[None, None, :, None, None] * plane + where, index)
    return best.astype(spec.dtype), (index if spec.return_indices else None)


def avg_pool3d_by_planes(pool, x, spec: PoolNdSpec) -> np.ndarray:
    total = np.zeros(spec.out_shape, dtype=spec.dtype)
    for z, inside in depth_taps(spec):
        sums = unstacked(pool(stacked(x, z), plane_spec(spec)), spec)
        total += np.where(_inside(inside), sums, 0).astype(spec.dtype)
    return (total / avg_divisors_nd(spec)).astype(spec.dtype)


def _add_planes(grad: np.ndarray, planes: np.ndarray, z: np.ndarray, inside: np.ndarray, spec) -> None:
    """grad[:, :, z[od]] += planes of output depth od (for the ``inside`` ones); depths may repeat."""
    g = unstacked(planes, spec)  # (N, C, OD, H, W)
    np.add.at(grad, (slice(None), slice(None), z[inside]), g[:, :, inside])


def max_pool3d_backward_by_planes(pool, backward, x, grad_out, spec: PoolNdSpec) -> np.ndarray:
    grad = np.zeros(spec.x_shape, dtype=spec.dtype)
    if spec.N == 0:
        return grad
    _, index = max_pool3d_by_planes(pool, x, spec.with_(return_indices=True))
    winner_depth = index // (spec.size[1] * spec.size[2])
    for z, inside in depth_taps(spec):
        won = _inside(inside) & (winner_depth == z[None, None, :, None, None])
        masked = np.where(won, grad_out, 0).astype(spec.dtype)
        planes = backward(stacked(x, z), stacked(masked, np.arange(spec.out_dims[0])), plane_spec(spec))
        _add_planes(grad, planes, z, inside, spec)
    return grad


def avg_pool3d_backward_by_planes(backward, x, grad_out, spec: PoolNdSpec) -> np.ndarray:
    grad = np.zeros(spec.x_shape, dtype=spec.dtype)
    if spec.N == 0:
        return grad
    share = (grad_out / avg_divisors_nd(spec)).astype(spec.dtype)
    for z, inside in depth_taps(spec):
        masked = np.where(_inside(inside), share, 0).astype(spec.dtype)
        planes = backward(stacked(x, z), stacked(masked, np.arange(spec.out_dims[0])), plane_spec(spec))
        _add_planes(grad, planes, z, inside, spec)
    return grad


# -- the lowerings ---------------------------------------------------------------------------------------------
def _build(needs: tuple, parent: str, run_with: Callable) -> Callable:
    def build(declared, run):
        calls = [sub_op(declared, op, parent, run) for op in needs]
        return lambda *args: run_with(*calls, *args)

    return build


def _features(op2d: str, allowed: frozenset, always: frozenset = frozenset()) -> Callable:
    return lambda b: always | (b.features.get(op2d, frozenset()) & allowed)


def _has_divisor(op2d: str) -> Callable:
    return lambda b: "divisor_override" in b.features.get(op2d, frozenset())


_MAX = frozenset({"stride", "padding", "dilation", "ceil_mode"})
_AVG = frozenset({"stride", "padding", "ceil_mode"})
_OURS = frozenset({"count_include_pad=False", "divisor_override"})  # the harness's divisor, not the 2-D op's

MAX_POOL3D = Lowering(needs=("max_pool2d",), build=_build(("max_pool2d",), "max_pool3d", max_pool3d_by_planes),
                      features=_features("max_pool2d", _MAX | {"return_indices"}),
                      applies=lambda b: "return_indices" in b.features.get("max_pool2d", frozenset()))
AVG_POOL3D = Lowering(needs=("avg_pool2d",), build=_build(("avg_pool2d",), "avg_pool3d", avg_pool3d_by_planes),
                      features=_features("avg_pool2d", _AVG, _OURS), applies=_has_divisor("avg_pool2d"))
MAX_POOL3D_BACKWARD = Lowering(
    needs=("max_pool2d", "max_pool2d_backward"),
    build=_build(("max_pool2d", "max_pool2d_backward"), "max_pool3d_backward", max_pool3d_backward_by_planes),
    features=lambda b: b.features.get("max_pool2d", frozenset()) & b.features.get("max_pool2d_backward",
                                                                                  frozenset()) & _MAX,
    applies=lambda b: "return_indices" in b.features.get("max_pool2d", frozenset()))
AVG_POOL3D_BACKWARD = Lowering(
    needs=("avg_pool2d_backward",),
    build=_build(("avg_pool2d_backward",), "avg_pool3d_backward", avg_pool3d_backward_by_planes),
    features=_features("avg_pool2d_backward", _AVG, _OURS), applies=_has_divisor("avg_pool2d_backward"))
