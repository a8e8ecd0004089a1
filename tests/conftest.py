"""Shared test helpers: one comparison helper and the per-backend parametrization."""

import numpy as np
import pytest

import harness
from harness.ops.conv_spec import conv2d_spec
from harness.ops.tolerance import compare, error_bound, magnitude
from impls.torch import conv2d_on

_torch_cpu = conv2d_on("cpu")


def reference_conv2d(x, w, bias=None, **kwargs):
    """torch in float64 on up-cast inputs, and A = |x| * |w| + |b| for the error bound."""
    spec, batched = conv2d_spec(x, w, bias, **kwargs)
    spec64 = spec.with_(dtype="float64")
    as64 = lambda a: None if a is None else np.asarray(a, np.float64)  # noqa: E731
    x4 = x if batched else x[None]
    ref = lambda a, b, c: _torch_cpu(a, b, c, spec64)  # noqa: E731
    expected = ref(as64(x4), as64(w), as64(bias))
    A = magnitude(ref, x4, w, bias)
    if not batched:
        expected, A = expected[0], A[0]
    return spec, expected, A


def assert_close(actual, x, w, bias=None, *, error_model="direct", **kwargs):
    """Shape, then dtype, then values within the error bound of ``error_model``."""
    spec, expected, A = reference_conv2d(x, w, bias, **kwargs)
    assert actual.shape == expected.shape, f"shape {actual.shape} != expected {expected.shape}"
    assert actual.dtype == x.dtype, f"dtype {actual.dtype} != input dtype {x.dtype}"
    verdict = compare(actual, expected, error_bound(error_model, spec, A))
    assert verdict.passed, verdict.message


def case_id(case):
    """Readable test id for an ``(x_shape, w_shape, bias, kwargs)`` case row."""
    x_shape, w_shape, bias, kwargs = case
    extra = ",".join(f"{k}={v}" for k, v in kwargs.items())
    return f"x{x_shape}-w{w_shape}{'-bias' if bias else ''}-{extra}"


def make_case(case, dtype, seed=0):
    """Seeded normal ``x, w, bias`` and the kwargs of an ``(x_shape, w_shape, bias, kwargs)`` row."""
    x_shape, w_shape, bias, kwargs = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if bias else None
    return x, w, b, kwargs


def backend_params():
    """Every registered backend as a pytest param; unavailable ones skip with the reason."""
    params = []
    for b in harness.backends():
        marks = [] if b.available else [pytest.mark.skip(reason=f"{b.name} unavailable: {b.reason}")]
        params.append(pytest.param(b.name, marks=marks, id=b.name))
    return params


@pytest.fixture(autouse=True)
def own_cache_dir(tmp_path_factory, monkeypatch):
    """auto's measured choices and calibration go to a directory of this test session, never the
    user's ~/.cache (tests that look at the cache set their own)."""
    monkeypatch.setenv("CONVBENCH_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "convbench-cache"))


@pytest.fixture(autouse=True)
def no_previous_auto_call(monkeypatch):
    """``auto`` may stay on the backend of the process's previous auto call (harness.api.resolve.SWITCH_S):
    each test starts as a fresh process would, whatever ran before it."""
    from harness.api import resolve

    monkeypatch.setattr(resolve, "_LAST_AUTO", [None])


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def with_default_sigint():
    """``preexec_fn`` for a child that relies on Ctrl-C raising KeyboardInterrupt: a child
    inherits an *ignored* SIGINT (a background job, nohup, some CI runners) and Python then
    leaves it ignored; restoring the default before exec makes Python install its handler."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
