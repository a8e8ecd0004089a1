"""Layer 4: the public functions (``harness.conv2d``, ``harness.max_pool2d``, ...), ``torch.nn.functional``
semantics on NumPy arrays, and how a call's backend is chosen (a name, or ``auto``).
"""
