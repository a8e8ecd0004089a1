"""The verifier's power, measured: every planted bug is caught with the default budget,
and correct backends with larger (legitimate) rounding error still pass."""

import numpy as np
import pytest

import harness
from harness.verify.mutants import MUTANTS, kill_report
from harness.ops.padding import pad_input


def test_catalogue_has_at_least_15_kinds_of_bug():
    assert len(MUTANTS) >= 15


def test_default_budget_kills_every_mutant():
    report = kill_report()
    survivors = report[~report.killed].mutant.tolist()
    assert not survivors, f"undetected bugs: {survivors}"
    assert (report.cases_to_kill >= 1).all()


def float32_reversed_order(x, w, bias, spec):
    """Correct, but accumulating in float32 in the opposite order of the usual loops."""
    xp = pad_input(x, spec)
    (sh, sw), (dh, dw) = spec.stride, spec.dilation
    Cg, Og = spec.C // spec.groups, spec.O // spec.groups
    y = np.zeros(spec.out_shape, dtype=spec.dtype)
    for o in range(spec.O):
        for c in reversed(range(Cg)):
            plane = xp[:, (o // Og) * Cg + c]
            for p in reversed(range(spec.KH)):
                for q in reversed(range(spec.KW)):
                    taps = plane[:, p * dh:p * dh + (spec.OH - 1) * sh + 1:sh, q * dw:q * dw + (spec.OW - 1) * sw + 1:sw]
                    y[:, o] += taps * w[o, c, p, q]
    return y if bias is None else y + bias[:, None, None]


def test_correct_float32_accumulation_in_another_order_passes():
    harness.register_backend("f32_reversed", conv2d=float32_reversed_order, exact=True)
    try:
        report = harness.verify("f32_reversed", cases=150, seed=4)
        assert (report.status != "failed").all(), report[report.status == "failed"].message.tolist()
        assert report.max_units[report.status == "passed"].max() > 0.01  # it really rounds differently
    finally:
        harness.unregister_backend("f32_reversed")


@pytest.mark.parametrize("backend", ["im2col", "fft", "winograd"])
def test_backends_with_other_rounding_pass(backend):
    declared = harness.get_backend(backend)
    if not declared.available:
        pytest.skip(declared.reason)
    report = harness.verify(backend, cases=150, seed=0)
    failed = report[report.status == "failed"]
    assert failed.empty, failed[["case", "message"]].head().to_string()
