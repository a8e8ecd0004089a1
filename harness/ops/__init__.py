"""Layer 1, the op contract: argument rules and specs, padding, lowerings, counts, the tolerance
formula and error models, verification cases, and the op table (one ``Op`` record per op).

Backends (``impls/``) import from here and from ``harness.backend.registry`` only.
"""
