"""The verifier's power, measured: every planted bug is caught with the default budget,
and correct backends with larger (legitimate) rounding error still pass."""

import numpy as np
import pytest

import harness
from harness.verify.mutants import MUTANTS, SCALE_MUTANTS, kill_report
from harness.ops.padding import pad_input
from harness.verify.verifier import DEFAULT_CASES

SMALL_SIZE_MUTANTS = [name for name in MUTANTS if name not in SCALE_MUTANTS]


def test_catalogue_has_at_least_15_kinds_of_bug_and_6_scale_kinds():
    assert len(SMALL_SIZE_MUTANTS) >= 15
    assert len(SCALE_MUTANTS) >= 6 and set(SCALE_MUTANTS) <= set(MUTANTS)


def test_default_budget_kills_every_mutant():
    # the bugs that small cases reach are caught before the scale tier (so this stays fast)
    report = kill_report(names=SMALL_SIZE_MUTANTS)
    survivors = report[~report.killed].mutant.tolist()
    assert not survivors, f"undetected bugs: {survivors}"
    assert (report.cases_to_kill >= 1).all()
    assert set(report.caught_by) <= {"table", "random"}


@pytest.mark.parametrize("name", SCALE_MUTANTS)
def test_scale_tier_of_the_default_budget_kills_each_scale_mutant(name):
    # the default budget's scale tier alone (the table and random cases come first in a real run)
    report = kill_report(cases=0, names=[name], table=False, scale=True)
    assert report.killed.all(), f"{name} went undetected by the scale tier"
    assert report.caught_by.tolist() == ["scale"]


@pytest.mark.slow
def test_whole_catalogue_at_the_default_budget():
    report = kill_report()
    assert report.killed.all(), report[~report.killed].mutant.tolist()
    assert set(report[report.mutant.isin(SCALE_MUTANTS)].caught_by) == {"scale"}


@pytest.mark.slow
def test_scale_mutants_survive_the_small_cases():
    # what the tier adds: without it the default budget passes every one of these bugs
    report = kill_report(cases=DEFAULT_CASES, names=list(SCALE_MUTANTS), scale=False)
    assert not report.killed.any(), report[report.killed].mutant.tolist()


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
