"""convbench's harness: the op interface, the backend registry, the verifier and the analysis.

>>> import numpy as np, harness
>>> x = np.ones((1, 3, 5, 5), np.float32); w = np.ones((2, 3, 3, 3), np.float32)
>>> harness.conv2d(x, w, padding=1, backend="naive").shape
(1, 2, 5, 5)
"""

from .api import conv2d
from .conv_spec import CONV2D_FEATURES, Conv2dSpec, conv2d_spec
from .errors import BackendError, Unsupported
from .padding import pad_input
from .verifier import check_case, summarize, verify
from .registry import Backend, backends, get_backend, register_backend, unregister_backend

__all__ = [
    "Backend",
    "BackendError",
    "CONV2D_FEATURES",
    "Conv2dSpec",
    "Unsupported",
    "backends",
    "check_case",
    "conv2d",
    "conv2d_spec",
    "get_backend",
    "pad_input",
    "register_backend",
    "summarize",
    "unregister_backend",
    "verify",
]
