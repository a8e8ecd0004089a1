"""One record per op: a toy op added in this file alone reaches every part of the harness.

``channel_sum2d`` (``y[n, 0] = sum_c x[n, c]``) is one spec type, one case class and one
:class:`~harness.ops.table.Op` record with a lowering onto conv2d (a 1x1 kernel of ones).
Registering the record is all it takes: the registry lowers it onto every backend with conv2d
(built-ins included), the one dispatch path checks and guards its calls, the verifier draws,
runs, references and bounds its cases, the counts feed reports, and the CLI accepts it.
"""

from dataclasses import dataclass

import numpy as np
import pytest

import harness
from harness.backend.capabilities import op_matrix
from harness.backend.registry import OP_FEATURES
from harness.cli import main
from harness.ops.conv_spec import Conv2dSpec
from harness.ops.lowering import Lowering, sub_op
from harness.ops.table import OPS, Op, op_info, register_op, unregister_op
from harness.ops.tolerance import gamma


@dataclass(frozen=True)
class ChannelSumSpec:
    N: int
    C: int
    H: int
    W: int
    dtype: str = "float32"
    features = frozenset()

    @property
    def x_shape(self):
        return (self.N, self.C, self.H, self.W)

    @property
    def out_shape(self):
        return (self.N, 1, self.H, self.W)

    @property
    def as_conv2d(self):
        return Conv2dSpec(self.N, self.C, self.H, self.W, 1, 1, 1, dtype=self.dtype)


@dataclass(frozen=True)
class ChannelSumCase:
    x_shape: tuple
    dtype: str = "float32"
    seed: int = 0
    fill: str = "normal"

    @property
    def batched(self):
        return len(self.x_shape) == 4

    @property
    def spec(self):
        shape = self.x_shape if self.batched else (1, *self.x_shape)
        return ChannelSumSpec(*shape, dtype=self.dtype)

    def arrays(self):
        return (np.random.default_rng(self.seed).standard_normal(self.x_shape).astype(self.dtype),)

    def simpler(self):
        return [ChannelSumCase(self.x_shape[:-1] + (self.x_shape[-1] - 1,), self.dtype, self.seed)] \
            if self.x_shape[-1] > 1 else []


def random_cases(features, dtypes, count, seed, nonfinite=True):
    rng = np.random.default_rng(seed)
    dtypes = sorted(dtypes)
    return [ChannelSumCase(tuple(int(v) for v in rng.integers(1, 6, size=4)), dtypes[i % len(dtypes)], seed + i)
            for i in range(count)]


def lowered(declared, run):
    conv = sub_op(declared, "conv2d", "channel_sum2d", run)
    return lambda x, spec: conv(x, np.ones((1, spec.C, 1, 1), spec.dtype), None, spec.as_conv2d)


def channel_sum_spec(x):
    harness.ops.args.check_array(x, "x")
    if x.ndim not in (3, 4):
        raise ValueError(f"x must be 3-D or 4-D, got {x.ndim}-D")
    shape = x.shape if x.ndim == 4 else (1, *x.shape)
    return ChannelSumSpec(*shape, dtype=x.dtype.name), x.ndim == 4


TOY = Op(
    "channel_sum2d", frozenset(), ChannelSumSpec, ("x",), channel_sum_spec,
    outputs=lambda s: ((s.out_shape, s.dtype),),
    counts=lambda s: {"out_shape": "x".join(map(str, s.out_shape)), "macs": 0,
                      "flops_dense": s.N * (s.C - 1) * s.H * s.W, "params": 0},
    table_cases=lambda: [ChannelSumCase((2, 3, 4, 5)), ChannelSumCase((3, 4, 5), "float64")],
    random_cases=random_cases, case_type=ChannelSumCase,
    bounds=lambda ctx, case, arrays, A: (gamma(case.dtype, case.spec.C, A[0]),),
    lowering=Lowering(needs=("conv2d",), build=lowered, features=lambda b: frozenset()),
)


@pytest.fixture
def toy_op():
    register_op(TOY)
    yield TOY
    unregister_op(TOY.name)
    for name in ("toy_native", "toy_buggy"):
        if name in {b.name for b in harness.backends()}:
            harness.unregister_backend(name)


def test_the_record_reaches_features_lowerings_and_the_capability_matrix(toy_op):
    assert OP_FEATURES["channel_sum2d"] == frozenset()
    assert harness.get_backend("naive").op_impl("channel_sum2d") == "lowered"  # built-ins too
    assert set(op_matrix().columns) == set(OPS)


def test_dispatch_checks_and_guards_the_new_op(toy_op):
    right = lambda x, spec: x.sum(axis=1, keepdims=True)  # noqa: E731
    harness.register_backend("toy_native", channel_sum2d=right, conv2d=harness.get_backend("naive").ops["conv2d"])
    x = np.ones((2, 3, 4, 5), np.float32)
    (y,) = harness.run_op(harness.get_backend("toy_native"), "channel_sum2d", ChannelSumSpec(2, 3, 4, 5), x)
    assert np.array_equal(y, np.full((2, 1, 4, 5), 3, np.float32))
    wrong_dtype = lambda x, spec: x.sum(axis=1, keepdims=True).astype(np.float64)  # noqa: E731
    harness.register_backend("toy_buggy", channel_sum2d=wrong_dtype)
    with pytest.raises(harness.BackendError, match="dtype float64, expected float32"):
        harness.run_op(harness.get_backend("toy_buggy"), "channel_sum2d", ChannelSumSpec(2, 3, 4, 5), x)
    huge = np.broadcast_to(np.float32(1), (2**16, 2**10, 2**10, 2**4))  # 4 TiB, never allocated
    with pytest.raises(harness.ResourceLimit):
        harness.run_op(harness.get_backend("toy_native"), "channel_sum2d", ChannelSumSpec(*huge.shape), huge)


def test_the_verifier_runs_references_and_bounds_the_new_op(toy_op):
    report = harness.verify("im2col", op="channel_sum2d", cases=20, seed=3)  # lowered onto im2col's conv2d
    assert len(report) == 22 and set(report.status) == {"passed"}
    off_by_one = lambda x, spec: (x.sum(axis=1, keepdims=True) + (x[:, :1] * 0 + 1e-3)).astype(x.dtype)  # noqa: E731
    harness.register_backend("toy_buggy", channel_sum2d=off_by_one)
    report = harness.verify("toy_buggy", op="channel_sum2d", cases=5)
    assert (report.status == "failed").all()
    assert report.reproducer[report.minimal].iloc[0].startswith("python -c")


def test_counts_and_the_command_line_take_the_new_op(toy_op, tmp_path, capsys):
    assert op_info("channel_sum2d").counts(ChannelSumSpec(1, 4, 2, 2))["flops_dense"] == 12
    out = tmp_path / "verify.csv"
    assert main(["verify", "--backend", "naive", "--op", "channel_sum2d", "--cases", "4", "--out", str(out),
                 "--no-progress"]) == 0
    assert "channel_sum2d" in out.read_text()


ERROR_INPUTS = [(name, *row) for name, op in OPS.items() for row in op.error_inputs()]


@pytest.mark.parametrize("op, kwargs, error, match", [(n, k, e, m) for n, _, k, e, m in ERROR_INPUTS],
                         ids=[f"{n}-{i}" for n, i, *_ in ERROR_INPUTS])
def test_every_records_error_inputs_are_refused_by_its_public_function(op, kwargs, error, match):
    with pytest.raises(error, match=match):
        getattr(harness, op)(**kwargs)
