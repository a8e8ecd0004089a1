"""The public call: backends agree with torch, inputs stay untouched, dispatch is honest."""

import numpy as np
import pytest

import harness
from harness.ops.cases.conv2d import table_cases
from harness.verify.verifier import check_case

from conftest import assert_close, backend_params

TABLE = table_cases()


@pytest.mark.parametrize("backend", backend_params())
@pytest.mark.parametrize("case", TABLE, ids=[f"t{i}" for i in range(len(TABLE))])
def test_table_case(backend, case):
    result = check_case(backend, case)
    if result.status == "unsupported":
        pytest.skip(result.message)
    assert result.status in ("passed", "mistrusted"), f"{case}: {result.message}"


@pytest.mark.parametrize("backend", ["naive", "torch"])
def test_worked_example_3x3_by_2x2(backend):
    x = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)
    k = np.array([[0, 1], [2, 3]], dtype=np.float64).reshape(1, 1, 2, 2)
    y = harness.conv2d(x, k, backend=backend)
    np.testing.assert_array_equal(y[0, 0], [[19, 25], [37, 43]])


def test_unbatched_input_gives_unbatched_output(rng):
    x = rng.standard_normal((3, 6, 7)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    y = harness.conv2d(x, w, padding=1, backend="naive")
    assert y.shape == (4, 6, 7)
    assert_close(y, x, w, padding=1)


def test_inputs_are_never_modified_and_reach_backends_read_only(rng):
    seen = {}

    def spy(x, w, bias, spec):
        seen["writeable"] = (x.flags.writeable, w.flags.writeable, bias.flags.writeable)
        with pytest.raises(ValueError, match="read-only"):
            x[...] = 0
        return np.zeros(spec.out_shape, spec.dtype)

    harness.register_backend("spy_readonly", conv2d=spy)
    try:
        x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
        w, b = np.ones((3, 2, 1, 1), np.float32), np.ones(3, np.float32)
        before = x.copy()
        harness.conv2d(x, w, b, backend="spy_readonly")
        assert seen["writeable"] == (False, False, False)
        np.testing.assert_array_equal(x, before)
        assert x.flags.writeable  # the caller's own array is unaffected
    finally:
        harness.unregister_backend("spy_readonly")


def test_undeclared_feature_raises_unsupported_naming_it():
    harness.register_backend("only_plain", conv2d=lambda x, w, b, s: None, features=["bias"])
    try:
        x, w = np.ones((1, 2, 5, 5), np.float32), np.ones((2, 2, 3, 3), np.float32)
        with pytest.raises(harness.Unsupported, match=r"feature\(s\): dilation, stride"):
            harness.conv2d(x, w, stride=2, dilation=2, backend="only_plain")
        with pytest.raises(NotImplementedError):  # Unsupported is a NotImplementedError
            harness.conv2d(x, w, padding=1, backend="only_plain")
    finally:
        harness.unregister_backend("only_plain")


def test_undeclared_dtype_raises_unsupported():
    harness.register_backend("only_f64", conv2d=lambda x, w, b, s: None, dtypes=["float64"])
    try:
        x, w = np.ones((1, 2, 5, 5), np.float32), np.ones((2, 2, 3, 3), np.float32)
        with pytest.raises(harness.Unsupported, match="dtype float32"):
            harness.conv2d(x, w, backend="only_f64")
    finally:
        harness.unregister_backend("only_f64")


def test_contract_breaking_backend_is_caught():
    harness.register_backend("wrong_shape", conv2d=lambda x, w, b, s: np.zeros((1, 1), s.dtype))
    harness.register_backend("wrong_dtype", conv2d=lambda x, w, b, s: np.zeros(s.out_shape, np.float16))
    try:
        x, w = np.ones((1, 2, 5, 5), np.float32), np.ones((2, 2, 3, 3), np.float32)
        with pytest.raises(harness.BackendError, match=r"shape \(1, 1\), expected \(1, 2, 3, 3\)"):
            harness.conv2d(x, w, backend="wrong_shape")
        with pytest.raises(harness.BackendError, match="dtype float16, expected float32"):
            harness.conv2d(x, w, backend="wrong_dtype")
    finally:
        harness.unregister_backend("wrong_shape")
        harness.unregister_backend("wrong_dtype")


def test_auto_picks_an_available_backend_that_supports_the_call():
    x, w = np.ones((1, 2, 5, 5), np.float32), np.ones((2, 2, 3, 3), np.float32)
    y = harness.conv2d(x, w, padding=1, padding_mode="circular", backend="auto")
    np.testing.assert_array_equal(y, np.full((1, 2, 5, 5), 18, np.float32))


def test_unavailable_backend_is_listed_with_its_reason():
    def missing():
        return "needs a quantum computer"

    harness.register_backend("far_future", conv2d=lambda x, w, b, s: None, probe=missing)
    try:
        listed = {b.name: b for b in harness.backends()}
        assert listed["far_future"].available is False
        assert listed["far_future"].reason == "needs a quantum computer"
        with pytest.raises(harness.Unsupported, match="unavailable: needs a quantum computer"):
            harness.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 1, 1)), backend="far_future")
    finally:
        harness.unregister_backend("far_future")


def test_builtin_backends_are_named_after_their_files():
    from pathlib import Path

    stems = {p.stem for p in Path(harness.__file__).parent.parent.joinpath("impls").glob("[!_]*.py")}
    builtins = {b.name for b in harness.backends() if b.origin == "builtin"}
    assert stems == builtins


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(name="auto"), "reserved"),
        (dict(name="not a name"), "identifier"),
        (dict(name="naive"), "already registered"),
        (dict(name="x1", features=["warp_speed"]), "unknown conv2d feature"),
        (dict(name="x2", features="bias"), "not one string"),
    ],
)
def test_register_backend_rejects_bad_declarations(kwargs, error):
    kwargs.setdefault("conv2d", lambda *a: None)
    with pytest.raises((ValueError, TypeError), match=error):
        harness.register_backend(**kwargs)
    with pytest.raises(ValueError, match="needs at least one op"):
        harness.register_backend("no_ops")
    with pytest.raises(ValueError, match="unknown op 'conv4d'"):
        harness.register_backend("bad_op", conv4d=lambda *a: None)


@pytest.mark.parametrize("backend", backend_params())
def test_a_call_too_big_for_memory_is_refused_up_front(backend):
    x, w = np.ones((1, 1, 1, 1), np.float32), np.ones((4, 1, 3, 3), np.float32)  # 3x3: within every limit
    with pytest.raises(harness.ResourceLimit, match=r"would need about \d+\.\d GiB .* available"):
        harness.conv2d(x, w, padding=200_000, backend=backend)  # a 4 x 399999 x 399999 output


def test_auto_with_nan_data_keeps_torch_semantics():
    x = np.ones((1, 4, 40, 40), np.float32)
    x[0, 0, 20, 20] = np.nan
    w = np.ones((4, 4, 15, 15), np.float32)  # a large kernel: fft's territory on finite data
    y = harness.conv2d(x, w, padding=7, backend="auto")
    assert np.isnan(y[0, :, 20, 20]).all() and np.isfinite(y[0, :, 0, 0]).all()


@pytest.mark.parametrize("where", ["x", "w", "bias"])
def test_auto_lets_winograd_find_nan_itself_and_reruns_on_a_propagating_backend(monkeypatch, where):
    from harness import autoselect
    from harness.support.finite_guard import NonFiniteData

    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 8, 12, 12)).astype(np.float32)
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    from harness.api import resolve

    monkeypatch.setattr(resolve, "choose", lambda op, spec, include_torch=False, may_time=None:
                        autoselect.Choice("winograd", {"winograd": 1.0}))
    monkeypatch.setattr(resolve, "all_finite", lambda *a: pytest.fail("auto scanned the data before winograd"))
    finite = harness.conv2d(x, w, b, padding=1, backend="auto")  # winograd ran: no scan, no rerun
    np.testing.assert_array_equal(finite, harness.conv2d(x, w, b, padding=1, backend="winograd"))
    {"x": x, "w": w, "bias": b}[where].flat[5] = np.nan
    raised = []
    real = harness.get_backend("winograd").ops["conv2d"]

    def spy(*args):
        try:
            return real(*args)
        except NonFiniteData:
            raised.append(True)
            raise

    monkeypatch.setitem(harness.get_backend("winograd").ops, "conv2d", spy)
    y = harness.conv2d(x, w, b, padding=1, backend="auto")
    assert raised == [True]  # winograd found the NaN in its own pass and gave no result
    torch_y = harness.conv2d(x, w, b, padding=1, backend="torch")
    np.testing.assert_array_equal(np.isnan(y), np.isnan(torch_y))  # NaN exactly where torch has it
    smeared = harness.conv2d(x, w, b, padding=1, backend="winograd")  # by name: as before, no check
    assert np.isnan(smeared).sum() >= np.isnan(torch_y).sum()
