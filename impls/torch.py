"""``torch``: ``torch.nn.functional.conv2d`` on the CPU — the reference and the baseline to beat.

Non-zero padding modes and asymmetric padding go through ``F.pad`` first, exactly as
``torch.nn.Conv2d`` does for ``padding_mode != 'zeros'``. TF32 is switched off and cuDNN is
made deterministic, so fp32 results are real fp32 (see ``impls/torch_cuda.py``).
"""

from functools import lru_cache

import numpy as np

from harness.registry import OP_FEATURES, Backend

from ._torch_ops import family_on

_TORCH_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


@lru_cache(maxsize=None)
def load_torch():
    """Import torch once, with the settings that make it a trustworthy reference."""
    import torch

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    return torch


def probe():
    try:
        load_torch()
    except ImportError as exc:
        return f"torch is not installed ({exc})"
    return None


def to_tensor(a, device="cpu"):
    torch = load_torch()
    if any(s < 0 for s in a.strides):  # torch.from_numpy refuses negative strides
        a = a.copy()  # (ascontiguousarray keeps a negative stride on an axis of length 1)
    if not a.flags.writeable:
        # harness.conv2d hands backends read-only views; torch only reads them, but
        # from_numpy insists on a writable array, so take a writable view where numpy allows.
        a = a.view()
        try:
            a.flags.writeable = True
        except ValueError:  # the caller's own array is read-only
            a = a.copy()
    return torch.from_numpy(a).to(device)


def conv2d_tensor(xt, wt, bt, spec):
    """F.conv2d on tensors with the spec's padding (any mode, any split)."""
    torch = load_torch()
    F = torch.nn.functional
    top, bottom, left, right = spec.padding
    if spec.padding_mode == "zeros" and top == bottom and left == right:
        padding = (top, left)
    else:
        xt = F.pad(xt, (left, right, top, bottom), mode=_TORCH_PAD_MODES[spec.padding_mode])
        padding = 0
    return F.conv2d(xt, wt, bt, spec.stride, padding, spec.dilation, spec.groups)


def conv2d_on(device):
    def conv2d(x, w, bias, spec):
        if spec.N == 0:  # F.pad's non-constant modes refuse an empty batch; the answer is empty
            return np.zeros(spec.out_shape, dtype=spec.dtype)
        bt = None if bias is None else to_tensor(bias, device)
        y = conv2d_tensor(to_tensor(x, device), to_tensor(w, device), bt, spec)
        return y.cpu().numpy()

    return conv2d


BACKEND = Backend(
    name="torch",
    device="cpu",
    ops={"conv2d": conv2d_on("cpu"), **family_on("cpu")},
    features={op: OP_FEATURES[op] for op in ["conv2d", *family_on("cpu")]},
    exact=True,
    # run-to-run identical, but oneDNN's blocking follows the thread count: `convbench verify
    # --determinism` found e.g. a 1x5 stride-2 reflect-padded case differing between 1 and 2 threads
    deterministic=False,
    probe=probe,
    auto_rank=10,
    description="torch.nn.functional on the CPU (oneDNN); reference and baseline",
)
