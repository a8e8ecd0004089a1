"""Tidy frames: an integer column per axis in verify()'s frame; typed frames from harness.read_results."""

import pandas as pd
import pytest

import harness
from harness.support.results_io import write_csv


@pytest.fixture(scope="module")
def verified():
    return harness.verify("naive", cases=12, seed=3)


def test_verify_frame_has_one_integer_column_per_axis(verified):
    for column in ("N", "C", "H", "W", "O", "KH", "KW", "stride_h", "stride_w", "pad_top", "pad_bottom",
                   "pad_left", "pad_right", "dilation_h", "dilation_w"):
        assert pd.api.types.is_integer_dtype(verified[column]), column
    # the columns agree with the case as written (kept for compatibility and the reproducer)
    for row in verified.itertuples():
        stride = eval(row.stride) if isinstance(row.stride, str) else row.stride
        pair = stride if isinstance(stride, tuple) else (stride, stride)
        assert (row.stride_h, row.stride_w) == pair
        x_shape = eval(row.x_shape)
        assert (row.H, row.W) == tuple(x_shape[-2:])


def test_read_results_pins_dtypes_of_a_verify_file(verified, tmp_path):
    path = write_csv(verified, tmp_path / "verify.csv")
    back = harness.read_results(path)
    assert back.attrs["kind"] == "verify"
    assert pd.api.types.is_string_dtype(back.reproducer)   # all empty: still text, not float NaN
    assert (back.reproducer == "").all()
    assert pd.api.types.is_string_dtype(back.stride)       # "2" and "(2, 1)" alike: text as written
    assert back.stride_h.dtype == "Int64" and back.pad_top.dtype == "Int64"
    assert back.max_units.dtype == "float64"
    assert back.exact.dtype == "boolean" and back.git_dirty.dtype == "boolean"
    assert back.git_commit.str.len().isin([0, 40]).all()
    assert back.stride_h.tolist() == verified.stride_h.tolist()


def test_read_results_reads_bench_files_and_refuses_others(tmp_path):
    bench = pd.DataFrame({"backend": ["naive", "naive"], "op": "conv2d", "suite": "smoke", "layer": "smoke.a",
                          "batch": [1, None], "dtype": "float32", "metric": ["time_min", "skipped"],
                          "value": [0.5, None], "reason": ["", "too slow"]})
    write_csv(bench, tmp_path / "bench.csv")
    back = harness.read_results(tmp_path / "bench.csv")
    assert back.attrs["kind"] == "bench"
    assert back.batch.dtype == "Int64" and back.batch.isna().tolist() == [False, True]
    assert back.value.dtype == "float64"
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not those of a convbench results file"):
        harness.read_results(tmp_path / "other.csv")
    with pytest.raises(ValueError, match="no such results file"):
        harness.read_results(tmp_path / "missing.csv")
