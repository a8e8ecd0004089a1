"""Determinism mode: declared-deterministic backends give the same bits run to run and across
thread counts; a backend that is not is reported, and fails only if it claimed otherwise."""

import itertools

import numpy as np
import pytest

import harness
from harness.verify.determinism import determinism_report, determinism_verdict
from impls.torch import conv2d_on

torch_conv2d = conv2d_on("cpu")


def test_naive_is_bit_identical():
    report = determinism_report("naive", cases=20, seed=1)
    assert len(report) > 5
    ok, sentence = determinism_verdict(report, "naive")
    assert ok and "bit-identical" in sentence, sentence


def test_torch_is_identical_run_to_run_and_honest_about_threads():
    report = determinism_report("torch", cases=20, seed=1)
    assert report.same_run_to_run.all()
    ok, sentence = determinism_verdict(report, "torch")  # declared non-deterministic: never a failure
    assert ok, sentence


def _noisy_backend():
    counter = itertools.count()

    def conv(x, w, b, spec):  # last-bit noise that changes from call to call
        y = torch_conv2d(x, w, b, spec)
        return y + (next(counter) % 2) * np.spacing(y).astype(y.dtype)

    return conv


def test_false_determinism_claim_is_caught():
    harness.register_backend("flaky", conv2d=_noisy_backend(), deterministic=True)
    try:
        report = determinism_report("flaky", cases=10, seed=0)
        assert not report.same_run_to_run.all()
        ok, sentence = determinism_verdict(report, "flaky")
        assert not ok and "declared deterministic but is not" in sentence
    finally:
        harness.unregister_backend("flaky")


def test_honest_nondeterminism_is_reported_not_failed():
    harness.register_backend("honest", conv2d=_noisy_backend(), deterministic=False)
    try:
        ok, sentence = determinism_verdict(determinism_report("honest", cases=10, seed=0), "honest")
        assert ok and "not deterministic, as declared" in sentence
    finally:
        harness.unregister_backend("honest")
