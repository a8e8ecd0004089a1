"""The harness's own exception types."""


class Unsupported(NotImplementedError):
    """A backend cannot run this call; the message names the missing feature.

    Raised for *valid* calls that a backend does not implement (a feature, a dtype,
    an op), as opposed to ``ValueError``/``TypeError`` for invalid arguments.
    """


class BackendError(RuntimeError):
    """A backend broke its contract: wrong output shape or dtype, or not an array."""


class ResourceLimit(Unsupported):
    """A valid call that would need more memory than this machine has available; the message
    gives the estimate. Raised before anything is allocated."""
