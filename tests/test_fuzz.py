"""Property-based fuzzing of the argument space against torch itself.

For arbitrary (also invalid) arguments: where torch.nn.Conv2d accepts a call, every backend
returns the right shape and values (or raises Unsupported); where torch refuses it, the
harness raises ValueError or TypeError, never another exception, a crash or a result.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import harness
from harness.ops.tolerance import compare, error_bound, magnitude
from impls.torch import load_torch

BACKENDS = [b.name for b in harness.backends() if b.available]

small = st.integers(min_value=-1, max_value=4)
pair_or_int = st.one_of(small, st.tuples(small, small))


@st.composite
def calls(draw):
    groups = draw(st.integers(min_value=0, max_value=3))
    C = draw(st.integers(min_value=1, max_value=6))
    Cg = draw(st.sampled_from([max(1, C // max(groups, 1)), draw(st.integers(min_value=1, max_value=4))]))
    O = draw(st.integers(min_value=1, max_value=6))
    batched = draw(st.booleans())
    N = draw(st.integers(min_value=0, max_value=2))
    H, W = draw(st.integers(min_value=1, max_value=7)), draw(st.integers(min_value=1, max_value=7))
    KH, KW = draw(st.integers(min_value=1, max_value=4)), draw(st.integers(min_value=1, max_value=4))
    return dict(
        x_shape=(N, C, H, W) if batched else (C, H, W),
        w_shape=(O, Cg, KH, KW),
        bias=draw(st.booleans()),
        stride=draw(pair_or_int),
        padding=draw(st.one_of(pair_or_int, st.sampled_from(["same", "valid"]))),
        dilation=draw(pair_or_int),
        groups=groups,
        padding_mode=draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"])),
        dtype=draw(st.sampled_from(["float32", "float64"])),
        backend=draw(st.sampled_from(BACKENDS)),
        seed=draw(st.integers(min_value=0, max_value=2**16)),
    )


def _negative(value, minimum=0) -> bool:
    return not isinstance(value, str) and min(np.atleast_1d(value)) < minimum


def torch_answer(x, w, b, call):
    """What torch.nn.Conv2d does with the same arguments: an array, or the exception."""
    torch = load_torch()
    O, Cg, KH, KW = w.shape
    try:
        module = torch.nn.Conv2d(Cg * call["groups"], O, (KH, KW), stride=call["stride"], padding=call["padding"],
                                 dilation=call["dilation"], groups=call["groups"], bias=b is not None,
                                 padding_mode=call["padding_mode"], dtype=getattr(torch, call["dtype"]))
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(w))
            if b is not None:
                module.bias.copy_(torch.from_numpy(b))
            return module(torch.from_numpy(x.astype(np.float64)).to(module.weight.dtype)).numpy()
    except (RuntimeError, ValueError, TypeError, ZeroDivisionError) as exc:
        return exc


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls())
def test_harness_agrees_with_torch_on_what_is_valid_and_what_it_returns(call):
    rng = np.random.default_rng(call["seed"])
    dt = np.dtype(call["dtype"])
    x = rng.standard_normal(call["x_shape"]).astype(dt)
    w = rng.standard_normal(call["w_shape"]).astype(dt)
    b = rng.standard_normal(call["w_shape"][0]).astype(dt) if call["bias"] else None
    expected = torch_answer(x, w, b, call)
    kwargs = {k: call[k] for k in ("stride", "padding", "dilation", "groups", "padding_mode", "backend")}
    if _negative(call["padding"]) or _negative(call["stride"], 1) or _negative(call["dilation"], 1):
        # deliberate divergences, where torch is lax: with a non-zeros padding_mode F.pad crops
        # on negative padding, and an empty batch skips torch's stride/dilation checks; the
        # harness refuses these arguments whatever the mode or the data
        expected = ValueError("non-positive stride/dilation or negative padding")
    if isinstance(expected, Exception):
        with pytest.raises((ValueError, TypeError)):
            harness.conv2d(x, w, b, **kwargs)
        return
    try:
        y = harness.conv2d(x, w, b, **kwargs)
    except harness.Unsupported:
        return  # an honest refusal, naming the feature
    assert y.shape == expected.shape and y.dtype == dt
    spec, batched = harness.conv2d_spec(x, w, b, *[call[k] for k in ("stride", "padding", "dilation", "groups", "padding_mode")])
    ref = lambda *a: harness.conv2d(*a, **{**kwargs, "backend": "torch"})  # noqa: E731
    A = magnitude(ref, x, w, b)
    A = A if batched else A[None]
    bound = error_bound(harness.get_backend(call["backend"]).error_model, spec, A)
    verdict = compare(y if batched else y[None], expected if batched else expected[None], bound)
    assert verdict.passed, verdict.message
