"""Guards that hold for every op and every backend: the bound at the extremes of the dtype,
protected reference and baseline, memory refused before allocating, persisted state checked."""

import json
import warnings

import numpy as np
import pytest

import harness
from harness import autoselect
from harness.bench import runner as bench
from harness.ops.conv_spec import Conv2dSpec
from harness.ops.tolerance import ErrorModel, compare, error_bound, fft_bound
from harness.verify.verifier import check_case
from harness.ops.cases.conv2d import Conv2dCase

HUGE = (2**14, 2**10, 2**10, 2**10)  # 16 Ti elements, broadcast from one value: never allocated


# -- the bound at the dtype's extremes (issue 15, items 3 and 12) ---------------------------------------
@pytest.mark.parametrize("backend", ["torch", "im2col", "naive"])
def test_subnormal_data_is_no_false_alarm(backend):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((2, 8, 9, 9)) * 1e-41).astype(np.float32)  # subnormal in float32
    w = rng.standard_normal((4, 8, 3, 3)).astype(np.float32)
    spec, _ = harness.conv2d_spec(x, w, padding=1)
    y = harness.conv2d(x, w, padding=1, backend=backend)
    ref = harness.conv2d(x.astype(np.float64), w.astype(np.float64), padding=1, backend="torch")
    A = harness.conv2d(np.abs(x).astype(np.float64), np.abs(w).astype(np.float64), padding=1, backend="torch")
    assert compare(y, ref, error_bound("direct", spec, A)).passed


def test_the_underflow_term_is_absolute_and_tiny():
    spec = Conv2dSpec(1, 64, 8, 8, 8, 3, 3)
    floor = float(error_bound("direct", spec, np.zeros(spec.out_shape)).max())
    assert 0 < floor < 1e-40  # (n_terms + 2) smallest subnormals of float32
    assert floor == pytest.approx((64 * 9 + 2) * float(np.finfo(np.float32).smallest_subnormal))


def test_the_normwise_bound_takes_its_scale_over_finite_magnitudes():
    spec = Conv2dSpec(1, 2, 6, 6, 1, 3, 3)
    A = np.ones(spec.out_shape)
    A[0, 0, 1, 1] = np.nan
    A[0, 0, 2, 2] = np.inf
    assert np.isfinite(fft_bound(spec, A)).all()


def test_a_plugin_with_the_fft_model_that_propagates_nan_passes():
    torch_conv = harness.get_backend("torch").ops["conv2d"]
    harness.register_backend("normwise_plugin", conv2d=torch_conv, error_model="fft")
    try:
        case = Conv2dCase((1, 3, 8, 8), (2, 3, 3, 3), padding=1, fill="nan", seed=4)
        assert check_case("normwise_plugin", case).status == "passed"
    finally:
        harness.unregister_backend("normwise_plugin")


def test_an_error_model_can_be_the_backends_own():
    own = ErrorModel("twice_direct", lambda spec, A: 2 * error_bound("direct", spec, A), elementwise=True)
    declared = harness.register_backend("own_model", conv2d=harness.get_backend("torch").ops["conv2d"],
                                        error_model=own)
    try:
        assert declared.model is own
        report = harness.verify("own_model", cases=5, dtypes=("float32", "float64"))
        assert report.status.isin(["passed", "mistrusted"]).all()
    finally:
        harness.unregister_backend("own_model")
    with pytest.raises(ValueError, match="unknown error model"):
        harness.register_backend("bad_model", conv2d=lambda x, w, b, s: None, error_model="no-such-model")


# -- reference and baseline are protected (item 4) -------------------------------------------------------
@pytest.mark.parametrize("name", ["torch", "naive"])
def test_the_reference_and_the_baseline_cannot_be_replaced_silently(name):
    with pytest.raises(ValueError, match="override_reference=True"):
        harness.register_backend(name, conv2d=lambda x, w, b, s: np.zeros(s.out_shape, s.dtype), replace=True)
    with pytest.raises(ValueError, match="override_reference=True"):
        harness.register_backend("my_ref", conv2d=lambda x, w, b, s: None, role="reference")
    assert harness.get_backend(name).origin == "builtin"


def test_an_explicit_override_is_named_in_every_verdict():
    real = harness.get_backend("torch")
    harness.register_backend("torch", conv2d=real.ops["conv2d"], replace=True, override_reference=True,
                             role="baseline", exact=True)
    try:
        report = harness.verify("im2col", cases=3, table=False)
        assert report.message.str.contains("overridden by a user registration").all()
    finally:
        harness.unregister_backend("torch")
    assert harness.get_backend("torch").origin == "builtin"
    assert not harness.verify("im2col", cases=3, table=False).message.str.contains("overridden").any()


# -- memory is refused before allocating, on every op and path (item 5) ---------------------------------
def _huge(shape=HUGE):
    return np.broadcast_to(np.float32(1), shape)


@pytest.mark.parametrize("call", [
    lambda: harness.max_pool2d(_huge(), 2, backend="naive"),
    lambda: harness.avg_pool2d(_huge(), 2, backend="torch"),
    lambda: harness.adaptive_avg_pool2d(_huge(), 7, backend="torch"),
    lambda: harness.max_pool2d_backward(_huge(), _huge((2**14, 2**10, 2**9, 2**9)), 2, backend="naive"),
    lambda: harness.conv_transpose2d(_huge(), np.ones((2**10, 4, 2, 2), np.float32), stride=2, backend="im2col"),
    lambda: harness.conv2d_backward(_huge(), np.ones((4, 2**10, 1, 1), np.float32),
                                    _huge((2**14, 4, 2**10, 2**10)), backend="torch"),
    lambda: harness.conv2d(_huge(), np.ones((4, 2**10, 1, 1), np.float32), backend="auto"),
    lambda: harness.depthwise_separable_conv2d(_huge(), np.ones((2**10, 1, 3, 3), np.float32),
                                               np.ones((8, 2**10, 1, 1), np.float32), backend="im2col"),
], ids=["max_pool", "avg_pool", "adaptive", "pool_backward", "transpose", "conv_backward", "auto", "separable"])
def test_calls_that_cannot_fit_are_refused_before_allocating(call):
    with pytest.raises(harness.ResourceLimit, match="GiB"):
        call()


def test_a_benchmark_refuses_before_generating_inputs():
    spec = Conv2dSpec(2**14, 2**10, 2**10, 2**10, 4, 1, 1)
    with pytest.raises(harness.ResourceLimit):
        bench.prepare("torch", "conv2d", spec, limit_s=None)


def test_winograds_workspace_estimate_is_cheap_for_absurd_padding():
    spec = Conv2dSpec(1, 1, 1, 1, 1, 3, 3, padding=(10**9,) * 4)
    assert harness.get_backend("winograd").workspace_bytes("conv2d", spec) > 0  # arithmetic, no list of tiles


# -- persisted state is validated (item 6) ---------------------------------------------------------------
@pytest.mark.parametrize("content", ["[]", "{\"constants\": [1, 2]}", "{\"key\": 1, \"constants\": {\"fft\": {\"call\": \"x\"}}}",
                                     "not json"])
def test_a_malformed_calibration_is_ignored_with_one_warning(tmp_path, monkeypatch, content):
    path = tmp_path / "calibration.json"
    path.write_text(content)
    monkeypatch.setattr(autoselect, "CALIBRATION_PATH", path)
    with pytest.warns(UserWarning, match="calibration"):
        model = autoselect.model()
    assert model["constants"] == autoselect.default_constants()
    x, w = np.ones((1, 2, 6, 6), np.float32), np.ones((3, 2, 3, 3), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert harness.conv2d(x, w, backend="auto").shape == (1, 3, 4, 4)


@pytest.mark.parametrize("content", ["[1, 2]", "{\"key\": \"K\", \"entries\": [1]}", "{bad"])
def test_a_malformed_auto_cache_is_ignored_and_rebuilt(tmp_path, monkeypatch, content):
    monkeypatch.setenv("CONVBENCH_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(autoselect, "_MEMORY", {})  # this process's own memory of earlier choices
    key = autoselect.cache_key()
    (tmp_path / f"autoselect-{key}.json").write_text(content.replace("K", key))
    spec = Conv2dSpec(1, 2, 6, 6, 3, 3, 3)
    with pytest.warns(UserWarning, match="auto cache"):
        choice = autoselect.measure("conv2d", spec, budget_s=0.001)
    assert not choice.cached
    assert json.loads((tmp_path / f"autoselect-{key}.json").read_text())["entries"]


def test_a_cached_choice_of_a_backend_that_is_gone_is_not_returned(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVBENCH_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(autoselect, "_MEMORY", {})
    spec = Conv2dSpec(1, 2, 6, 6, 3, 3, 3)
    key = autoselect.cache_key()
    spec_key = f"conv2d|{spec!r}|torch=False"
    (tmp_path / f"autoselect-{key}.json").write_text(json.dumps(
        {"key": key, "entries": {spec_key: {"backend": "plugin_that_left", "seconds": {"plugin_that_left": 1e-9}}}}))
    choice = autoselect.measure("conv2d", spec, budget_s=0.001)
    assert choice.backend in {b.name for b in harness.backends()}


# -- the per-case time limit never interrupts a JIT compiler --------------------------------------------
def test_the_time_limit_waits_for_a_jit_compilation_to_finish(monkeypatch):
    """A frame of the ``numba.`` package on the stack stands for a compilation in progress:
    the limit is re-armed instead of raising, and raises once the compiler's frames are gone."""
    import time

    from harness.verify import verifier

    monkeypatch.setattr(verifier, "COMPILE_GRACE_S", 0.05)
    fake_compiler = {"__name__": "numba.core.compiler"}
    compiling = compile("import time\nend = time.monotonic() + 0.4\nwhile time.monotonic() < end: pass\n",
                        "<numba compiler stand-in>", "exec")
    started = time.monotonic()
    with pytest.raises(verifier.CaseTimeout):
        with verifier.time_limit(0.1):
            exec(compiling, dict(fake_compiler))  # 0.4 s "compiling": not interrupted
            assert time.monotonic() - started >= 0.4
            while True:  # then an ordinary loop: interrupted at the next re-arm
                pass
    assert 0.4 <= time.monotonic() - started < 5
