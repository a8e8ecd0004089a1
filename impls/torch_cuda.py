"""``torch_cuda``: torch's cuDNN convolution with TF32 off — the GPU baseline for ``numba_cuda``."""

from harness.ops.conv_spec import CONV2D_FEATURES
from harness.backend.registry import Backend

from .torch import conv2d_on, load_torch


def probe():
    try:
        torch = load_torch()
    except ImportError as exc:
        return f"torch is not installed ({exc})"
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
        return f"no CUDA device visible to torch ({torch.__version__}, {build})"
    return None


def sync():
    load_torch().cuda.synchronize()


BACKEND = Backend(
    name="torch_cuda",
    device="cuda",
    ops={"conv2d": conv2d_on("cuda")},
    features={"conv2d": CONV2D_FEATURES},
    exact=True,
    deterministic=True,
    probe=probe,
    sync=sync,
    auto_rank=5,
    role="baseline",
    description="torch.nn.functional on CUDA (cuDNN, TF32 off, deterministic)",
)
