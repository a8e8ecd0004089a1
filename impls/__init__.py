"""Built-in backends, one module each; the module stem is the backend name.

Each module exposes ``BACKEND`` (a :class:`harness.backend.registry.Backend`) and keeps heavy
imports (torch, numba, scipy) inside functions so that listing backends stays cheap.
"""
