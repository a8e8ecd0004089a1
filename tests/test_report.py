"""The report: reading stored results (CSV, JSON lines, asv JSON), the tables, the files written."""

import json
import math

import pandas as pd
import pytest

from harness.report import data as report_data
from harness.report.page import load_results, read_results, write_report
from harness.report.figures import roofline_figure
from harness.support.results_io import append_records, write_csv

VERIFY_ROWS = [
    dict(backend="im2col", op="conv2d", status="passed", max_units=0.2, case="A", x_shape="(2, 3, 8, 8)",
         w_shape="(4, 3, 3, 3)", dtype="float32", message="ok", reproducer="", minimal=False),
    dict(backend="im2col", op="conv2d", status="failed", max_units=7.0, case="B", x_shape="(1, 3, 8, 8)",
         w_shape="(4, 3, 5, 5)", dtype="float32", message="7 units", reproducer="python -c 'repro B'", minimal=True),
    dict(backend="winograd", op="conv2d", status="unsupported", max_units=math.nan, case="B", x_shape="(1, 3, 8, 8)",
         w_shape="(4, 3, 5, 5)", dtype="float32", message="3x3 only", reproducer="", minimal=False),
]


def bench_rows(unstable=()):
    """Two layers, backends torch / im2col / fft / auto with known times (GFLOP/s = 1 / time),
    stable unless (layer, backend) is in ``unstable``; ratio intervals +-5%."""
    times = {"smoke.a": {"torch": 2.0, "im2col": 1.0, "fft": 4.0, "auto": 1.0},
             "smoke.b": {"torch": 1.0, "im2col": 4.0, "fft": 2.0, "auto": 2.0}}
    rows = []
    for layer, per in times.items():
        for backend, t in per.items():
            base = dict(backend=backend, impl="native", op="conv2d", suite="smoke", layer=layer, batch=1,
                        dtype="float32", threads=1, cache="hot",
                        reason="chose im2col (measure)" if backend == "auto" else "",
                        stable=(layer, backend) not in unstable,
                        unstable_reason="oversubscribed: test" if (layer, backend) in unstable else "")
            rows += [dict(base, metric="time_min", value=t), dict(base, metric="gflops", value=1 / t),
                     dict(base, metric="ratio_to_torch", value=per["torch"] / t),
                     dict(base, metric="ratio_lo", value=0.95 * per["torch"] / t),
                     dict(base, metric="ratio_hi", value=1.05 * per["torch"] / t),
                     dict(base, metric="cpr", value=10.0), dict(base, metric="intensity", value=5.0)]
    return pd.DataFrame(rows)


def asv_file(folder):
    """A minimal asv (format 2) result: two backends x two layers, product order."""
    machine = folder / "box"
    machine.mkdir(parents=True)
    params = [["'im2col'", "'torch'"], ["'smoke.a'", "'smoke.b'"], ["1"], ["'float32'"]]
    data = {"version": 2, "params": {"machine": "box"}, "result_columns": ["result", "params", "version"],
            "results": {"bench_conv2d.Conv2d.track_gflops": [[1.0, 2.0, 3.0, None], params, "v"]}}
    (machine / "abc-env.json").write_text(json.dumps(data))
    (machine / "machine.json").write_text(json.dumps({"machine": "box", "version": 1}))
    return folder


@pytest.fixture
def stored(tmp_path):
    write_csv(pd.DataFrame(VERIFY_ROWS), tmp_path / "verify.csv")
    append_records(tmp_path / "verify-history.jsonl", [dict(r, run="r1") for r in VERIFY_ROWS])
    write_csv(bench_rows(), tmp_path / "bench.csv")
    return tmp_path


def test_the_long_frame_holds_every_source(stored):
    results = load_results(stored / "verify.csv", [stored / "bench.csv"], asv_file(stored / "asv"))
    assert list(results.columns) == list(report_data.LONG_COLUMNS)
    assert set(results.source) == {"verify.csv", "bench.csv", "asv:box/abc-env.json"}
    units = results[results.metric == "max_units"]
    assert sorted(units.value) == [0.2, 7.0] and sorted(units.kernel) == ["3x3", "5x5"]
    asv = results[results.source.str.startswith("asv")].set_index(["backend", "layer"]).value
    assert asv[("im2col", "smoke.a")] == 1.0 and asv[("im2col", "smoke.b")] == 2.0
    assert asv[("torch", "smoke.a")] == 3.0 and math.isnan(asv[("torch", "smoke.b")])


def test_auto_figures_are_paired_geomeans_of_time_ratios():
    figures = report_data.auto_figures(bench_rows())
    row = figures.loc[("auto", "smoke")]
    assert row["im2col"] == pytest.approx(math.sqrt(1.0 * 2.0))  # im2col / auto: 1/1 and 4/2
    assert row["fft"] == pytest.approx(math.sqrt(4.0 * 1.0))
    assert row["torch"] == pytest.approx(math.sqrt(2.0 * 0.5))
    assert row["worst"] == pytest.approx(1.0) and row["worst (torch aside)"] == pytest.approx(math.sqrt(2))


def test_suite_table_and_winners():
    table = report_data.suite_table(bench_rows())
    assert table.loc[("smoke", "im2col"), "time (s, sum)"] == 5.0
    assert table.loc[("smoke", "torch"), "x torch (geomean)"] == pytest.approx(1.0)
    winners = report_data.winners(bench_rows())
    assert list(winners.fastest) == ["im2col", "torch"]  # auto never counts as a winner
    assert list(winners["auto chose"]) == ["im2col (measure)"] * 2


def test_write_report_writes_markdown_html_csv_and_plots(stored):
    out = write_report(stored / "verify.csv", stored / "bench.csv", None, stored / "summary.md",
                       asv_dir=asv_file(stored / "asv"))
    markdown = out.read_text()
    for needle in ("## In one minute", "**1 failed**: im2col (1)", "auto: choosing the backend per layer",
                   "Fastest backend per layer", "python -c 'repro B'", "Verification history", "asv results",
                   "Backends and what they support", "![GFLOP/s per layer](gflops.png)"):
        assert needle in markdown
    page = (stored / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4  # GFLOP/s, GFLOP/s vs CPR, roofline, verification error
    assert "<table" in page and "src=\"gflops.png\"" not in page  # self-contained
    for name in ("gflops.png", "gflops_cpr.png", "roofline.png", "verify_errors.png"):
        assert (stored / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = read_results(stored / "results.csv", report_data.LONG_COLUMNS)
    times = again[(again.metric == "time_min") & (again.backend == "fft")].value
    assert sorted(times) == [2.0, 4.0]  # full precision round trip


def test_roofline_plot_draws_with_a_machine_record(tmp_path):
    machine = {"peak": {"sgemm": {"gflops": 100.0}, "dgemm": {"gflops": 50.0}, "threads": 2},
               "bandwidth": {"gbs": 10.0}}
    assert roofline_figure(bench_rows(), machine, tmp_path / "r.png").stat().st_size > 1000


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(p.read_bytes()[:-7]), "truncated"),
    (lambda p: p.write_text("a,b\n1,2\n"), "not a convbench results file"),
    (lambda p: p.write_text(""), "empty"),
])
def test_damaged_results_files_are_refused_by_name(stored, damage, message):
    damage(stored / "bench.csv")
    with pytest.raises(ValueError, match=message):
        write_report(stored / "verify.csv", stored / "bench.csv", None, stored / "summary.md", asv_dir=None)


def test_damaged_asv_and_history_files_are_refused(stored):
    folder = asv_file(stored / "asv")
    result = folder / "box" / "abc-env.json"
    result.write_text(result.read_text()[:40])
    with pytest.raises(ValueError, match="truncated or not JSON"):
        report_data.asv_long(folder)
    result.write_text(json.dumps({"version": 1, "results": {}}))
    with pytest.raises(ValueError, match="not an asv"):
        report_data.asv_long(folder)
    history = stored / "verify-history.jsonl"
    history.write_bytes(history.read_bytes() + b'{"backend": "cut')
    with pytest.raises(ValueError, match="truncated"):
        write_report(stored / "verify.csv", None, None, stored / "summary.md", asv_dir=None)


def test_report_command_says_what_is_wrong(stored, capsys):
    from harness.cli import main

    (stored / "verify.csv").write_bytes((stored / "verify.csv").read_bytes()[:-3])
    (stored / "no-asv-results").mkdir()
    code = main(["report", "--verify", str(stored / "verify.csv"), "--bench", str(stored / "bench.csv"),
                 "--out", str(stored / "summary.md"), "--asv", str(stored / "no-asv-results")])
    assert code == 2 and "truncated" in capsys.readouterr().err


def test_headline_claims_come_from_stable_rows_only(tmp_path):
    # im2col's fast layer (smoke.a, 2x torch) is unstable: the headline may not use it
    write_csv(bench_rows(unstable={("smoke.a", "im2col")}), tmp_path / "bench.csv")
    markdown = write_report(None, tmp_path / "bench.csv", None, tmp_path / "summary.md", asv_dir=None).read_text()
    minute = markdown.split("## In one minute")[1].split("\n## ")[0]
    assert "**Unstable timings**: 1 (layer, backend) row(s)" in minute
    # each layer +-5%; two independent layers narrow the geomean's interval by sqrt(2)
    assert "fastest single backend fft, 0.50x [0.48, 0.52] torch (geomean over 2 stable layer(s))" in minute
    assert "## Unstable timings (left out of the geomeans)" in markdown and "oversubscribed: test" in markdown
    win = report_data.winners(bench_rows(unstable={("smoke.a", "im2col")}))
    assert list(win.fastest) == ["not ranked", "torch"] and win.timing.iloc[0].startswith("unstable: im2col")
    assert list(win["x torch [95%]"]) == ["", "1.00x [0.95, 1.05]"]


def test_results_without_stability_flags_are_never_headlines(tmp_path):
    write_csv(bench_rows().drop(columns=["stable", "unstable_reason"]), tmp_path / "bench.csv")
    markdown = write_report(None, tmp_path / "bench.csv", None, tmp_path / "summary.md", asv_dir=None).read_text()
    assert "fastest single backend" not in markdown and "measured without stability flags" in markdown


def test_report_page_can_be_scanned(stored):
    """Status colours, the flagged cases with reason and reproducer, one thread count, no text copy."""
    rows = VERIFY_ROWS + [dict(backend="naive", op="conv2d", status="mistrusted", max_units=0.0,
                               case="Conv2dCase(x_shape=(1, 1, 3, 3), w_shape=(1, 1, 1, 1))", x_shape="(1, 1, 3, 3)",
                               w_shape="(1, 1, 1, 1)", dtype="float32", message="100% of the reference output is zero",
                               reproducer="", minimal=False)]
    write_csv(pd.DataFrame(rows), stored / "verify.csv")
    machine = {"peak": {"sgemm": {"gflops": 100.0, "n": 512}, "dgemm": {"gflops": 50.0, "n": 512}, "threads": 2},
               "bandwidth": {"gbs": 10.0, "mib": 64}, "cpu": {"model": "x", "usable_cpus": 2, "physical_cores": 2,
               "logical_cpus": 2, "flags": []}, "blas": [], "software": {"numpy": "2", "python": "3.11"},
               "measured_at": "now"}
    write_report(stored / "verify.csv", stored / "bench.csv", machine, stored / "summary.md", asv_dir=None)
    page = (stored / "report.html").read_text()
    assert "<td class='bad'>1</td>" in page  # im2col's failed count, red
    assert "<td class='warn'>1</td>" in page  # naive's mistrusted count, amber
    assert "0 (exact)" in page  # naive's worst error: exact, not a small number
    assert "Cases to look at: failed and mistrusted" in page and "mostly zeros" in page
    assert "python -c &#x27;repro B&#x27;" in page  # the failure's minimal reproducer
    assert "harness.check_case(&#x27;naive&#x27;, Conv2dCase(x_shape=(1, 1, 3, 3)" in page  # the mistrusted one's
    assert page.count("thread(s) per backend") == 1 and "scaled to 1 thread(s)" in page
    assert "Per layer (text)" not in page
    assert "✓" in page and ">True<" not in page  # the capability matrix as marks
    assert "Whole networks at batch 1" in page and "resnet50" in page


def test_a_layer_is_still_ranked_when_only_a_far_slower_backend_is_unstable():
    from harness.bench import stability

    # smoke.a: fft (4.0) is unstable but 4x the fastest (im2col, 1.0): im2col still wins the layer;
    # smoke.b: fft (made 1.5) is unstable and within 2x of the fastest (torch, 1.0): not ranked
    rows = bench_rows(unstable={("smoke.a", "fft"), ("smoke.b", "fft")})
    rows.loc[(rows.layer == "smoke.b") & (rows.backend == "fft") & (rows.metric == "time_min"), "value"] = 1.5
    win = report_data.winners(rows)
    assert list(win.fastest) == ["im2col", "not ranked"]
    assert win.timing.iloc[0].startswith("ranked; unstable but over 2x slower: fft")
    assert stability.unranked_layers(rows) == {("smoke", "smoke.b", 1, "float32")}
    lines = stability.warning_lines(rows)
    assert "smoke.a N=1 float32: unstable timing, still ranked" in lines[0] and "not ranked" in lines[1]
