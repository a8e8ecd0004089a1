"""``torch``: ``torch.nn.functional.conv2d`` on the CPU — the reference and the baseline to beat.

Non-zero padding modes and asymmetric padding go through ``F.pad`` first, exactly as
``torch.nn.Conv2d`` does for ``padding_mode != 'zeros'``. TF32 is switched off and cuDNN is
made deterministic, so fp32 results are real fp32 (see ``impls/torch_cuda.py``).
"""

import numpy as np

from harness.backend.registry import OP_FEATURES, Backend, CostModel
from harness.ops.metrics import conv2d_work

from ._torch_nd_ops import nd_family_on
from ._torch_ops import conv2d_tensor, family_on, load_torch, to_numpy, to_tensor
from harness.ops.args import DTYPES

from ._half import in_float32

def probe():
    try:
        load_torch()
    except ImportError as exc:
        return f"torch is not installed ({exc})"
    return None


def conv2d_on(device):
    def conv2d(x, w, bias, spec):
        if spec.N == 0:  # F.pad's non-constant modes refuse an empty batch; the answer is empty
            return np.zeros(spec.out_shape, dtype=spec.dtype)
        bt = None if bias is None else to_tensor(bias, device)
        y = conv2d_tensor(to_tensor(x, device), to_tensor(w, device), bt, spec)
        return to_numpy(y)

    return conv2d


def cost_features(op, spec) -> dict[str, float] | None:
    """Work for ``auto`` (with baselines included): multiply-adds, inputs read, outputs written."""
    if op != "conv2d":
        return None
    return {**conv2d_work(spec), "inputs": float(spec.N * spec.C * spec.H * spec.W),
            "outputs": float(spec.N * spec.O * spec.OH * spec.OW)}


COST = CostModel(cost_features, {"call": 3.23e-05, "inputs": 1.58e-10, "macs": 1.98e-11, "outputs": 8.4e-11,
                                 "thin_macs": 2.38e-11}, source="convbench calibrate --threads 1 (non-negative least squares on relative error) from convbench bench --suite resnet50,vgg16,mobilenetv2,large_kernels --batch 1 --threads 1 on the project machine (2-core AMD Zen 5 VM, OpenBLAS with the OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE overrides, numpy 2.4, numba 0.68, torch 2.13 CPU), 2026-11-25: median fit error 1.13x (im2col) to 1.46x (fft)")

BACKEND = Backend(
    name="torch",
    device="cpu",
    ops={"conv2d": conv2d_on("cpu"), **family_on("cpu"), **nd_family_on("cpu"),
         # torch's CPU half transposed convolution (slow_conv_transpose2d: groups, dilation) adds its
         # col2im columns in the half dtype, 60-70x the float32-sum bound (convbench verify --op
         # conv_transpose2d --dtype float16,bfloat16): computed in float32 and rounded once instead
         "conv_transpose2d": in_float32(family_on("cpu")["conv_transpose2d"]),
         # its float16 conv backward's grad_input (the same transposed convolution) was 20-145x the
         # bound on a Zen 5 CPU (the conv2d_backward table in CI, 2026-12-02; within it on a Xeon):
         # computed in float32 and rounded once as well
         "conv2d_backward": in_float32(family_on("cpu")["conv2d_backward"])},
    features={op: OP_FEATURES[op] for op in ["conv2d", *family_on("cpu"), *nd_family_on("cpu")]},
    dtypes=frozenset(DTYPES),  # float16/bfloat16 as torch's own half tensors (sums in float32 on the CPU)
    # bfloat16 (oneDNN) turns some Inf into NaN and spreads NaN past its windows (convbench verify)
    nonfinite_dtypes=frozenset({"float32", "float64", "float16"}),
    exact=True,
    # run-to-run identical, but oneDNN's blocking follows the thread count: `convbench verify
    # --determinism` found e.g. a 1x5 stride-2 reflect-padded case differing between 1 and 2 threads
    deterministic=False,
    probe=probe,
    auto_rank=10,
    role="baseline",
    cost=COST,
    description="torch.nn.functional on the CPU (oneDNN); reference and baseline",
)
