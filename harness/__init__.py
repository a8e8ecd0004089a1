"""convbench's harness: the op interface, the backend registry, the verifier and the analysis.

>>> import numpy as np, harness
>>> x = np.ones((1, 3, 5, 5), np.float32); w = np.ones((2, 3, 3, 3), np.float32)
>>> harness.conv2d(x, w, padding=1, backend="naive").shape
(1, 2, 5, 5)
"""

from harness.backend.dispatch import run_op
from harness.api.conv import conv2d, conv2d_backward, conv_transpose2d, depthwise_separable_conv2d, spatially_separable_conv2d
from harness.api.conv_nd import (avg_pool1d, avg_pool1d_backward, avg_pool3d, avg_pool3d_backward, conv1d,
                                 conv1d_backward, conv3d, conv3d_backward, conv_transpose1d, conv_transpose3d,
                                 max_pool1d, max_pool1d_backward, max_pool3d, max_pool3d_backward)
from harness.api.pool import (adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, avg_pool2d_backward, global_avg_pool2d,
                      global_max_pool2d, max_pool2d, max_pool2d_backward, spatial_pyramid_pool2d)
from harness.ops.pool_spec import AdaptivePool2dSpec, Pool2dSpec
from harness.ops.separable import DepthwiseSeparableSpec, SeparableFactors, SpatiallySeparableSpec, factor_spatially_separable
from harness.ops.transpose_spec import ConvTranspose2dSpec
from harness.ops.conv_spec import CONV2D_FEATURES, Conv2dSpec, conv2d_spec
from harness.errors import BackendError, ResourceLimit, Unsupported
from harness.ops.padding import pad_input
from harness.verify.verifier import check_case, summarize
from harness.verify.verifier import verify as _verify_here
from harness.backend.registry import Backend, backends, get_backend, register_backend, unregister_backend


def verify(backend, op: str = "conv2d", cases: int | None = None, seed: int = 0, *, client=None, **options):
    """Cross-check ``backend`` against the float64 reference, one row per case.

    As :func:`harness.verify.verifier.verify` (the same parameters and report), and with
    ``client`` (a ``distributed.Client``) the cases are checked in shards on its Dask workers:
    the same cases and verdicts, rows in the same order (:mod:`harness.distributed.sharded_verify`).
    """
    if client is None:
        return _verify_here(backend, op, cases, seed, **options)
    from harness.distributed.sharded_verify import verify_on_cluster

    return verify_on_cluster(client, backend, op, cases, seed, **options)


def read_results(path):
    """A convbench results file as a typed DataFrame (see :func:`harness.report.typed.read_results`).

    Imported on use: ``import harness`` stays free of pandas (the pytest plug-in loads it).
    """
    from harness.report.typed import read_results as typed

    return typed(path)

__all__ = [
    "avg_pool1d",
    "avg_pool1d_backward",
    "avg_pool3d",
    "avg_pool3d_backward",
    "conv1d",
    "conv1d_backward",
    "conv3d",
    "conv3d_backward",
    "conv_transpose1d",
    "conv_transpose3d",
    "max_pool1d",
    "max_pool1d_backward",
    "max_pool3d",
    "max_pool3d_backward",
    "AdaptivePool2dSpec",
    "ConvTranspose2dSpec",
    "DepthwiseSeparableSpec",
    "Pool2dSpec",
    "SpatiallySeparableSpec",
    "SeparableFactors",
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "avg_pool2d",
    "avg_pool2d_backward",
    "conv2d_backward",
    "conv_transpose2d",
    "depthwise_separable_conv2d",
    "factor_spatially_separable",
    "global_avg_pool2d",
    "global_max_pool2d",
    "max_pool2d",
    "max_pool2d_backward",
    "run_op",
    "spatial_pyramid_pool2d",
    "spatially_separable_conv2d",
    "Backend",
    "BackendError",
    "CONV2D_FEATURES",
    "Conv2dSpec",
    "ResourceLimit",
    "Unsupported",
    "backends",
    "check_case",
    "conv2d",
    "conv2d_spec",
    "get_backend",
    "pad_input",
    "read_results",
    "register_backend",
    "summarize",
    "unregister_backend",
    "verify",
]
