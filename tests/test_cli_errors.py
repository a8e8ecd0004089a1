"""Ordinary mistakes on the command line end as one ``error:`` line and exit status 2, never a
traceback: bad option values, bad plug-ins, bad shape files, bad stored results. The property
test at the end throws argument lists at every command (the heavy work stubbed out)."""

import contextlib
import io
import json

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli import main
from harness.cli.commands import asv as asv_command
from harness.cli.commands import bench as bench_command
from harness.cli.commands import calibrate as calibrate_command
from harness.cli.commands import env as env_command
from harness.cli.commands import mutants as mutants_command
from harness.cli.commands import report as report_command
from harness.cli.commands import run as run_command
from harness.cli.commands import verify as verify_command
from harness.report.data import read_bench_settings
from harness.support.results_io import append_records

FAKE_MACHINE = {
    "cpu": {"usable_cpus": 1},
    "peak": {"sgemm": {"gflops": 100.0}, "dgemm": {"gflops": 50.0}, "threads": 1},
    "bandwidth": {"gbs": 10.0},
}


class Started(BaseException):
    """Raised by the stubbed heavy work: the command got past every check and would now run."""


def _start(*args, **kwargs):
    raise Started


def stub_heavy_work(patch):
    """Replace what would measure the machine, verify, benchmark or spawn asv, with ``Started``."""
    for module, name in [(verify_command, "verify"), (verify_command, "determinism_report"),
                         (run_command, "record"), (bench_command, "record"), (calibrate_command, "record"),
                         (mutants_command, "kill_report"), (report_command, "write_report"),
                         (env_command, "record"), (asv_command.subprocess, "run")]:
        patch.setattr(module, name, _start)


def run_cli(argv):
    """``(exit status, stderr)`` of ``convbench argv`` in this process; Started counts as 0."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
        except Started:
            code = 0
    return code, err.getvalue()


def assert_refused(argv):
    code, err = run_cli(argv)
    assert code == 2, (argv, code, err)
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1, err


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CONVBENCH_TRACEBACK", raising=False)
    stub_heavy_work(monkeypatch)
    return tmp_path


BENCH = ["bench", "--backends", "torch", "--suite", "smoke", "--no-progress"]


@pytest.mark.parametrize("argv", [
    ["verify", "--backend", "torch", "--cases", "-5"],
    ["verify", "--backend", "torch", "--seed", "-1"],
    [*BENCH, "--threads", "-1"],
    [*BENCH, "--repeat", "0"],
    [*BENCH, "--dtype", "float8"],
    [*BENCH, "--batch", "0"],
    [*BENCH, "--budget", "-1"],
    [*BENCH, "--limit", "nan"],
    ["run", "--batch", "abc"],
    ["run", "--cases", "-1"],
    ["verify", "--backend", "no_such_backend"],
    ["verify", "--op", "no_such_op"],
    ["bench", "--suite", "no_such_suite"],
    ["shapes", "--batch", "0"],
    ["shapes", "--suite", "smoke", "--dtype", "int8"],  # printed int8 byte counts for a float-only op
    ["shapes", "--dtype", "float32,float64"],
    ["asv", "run", "--threads", "0"],
    ["asv", "run", "--suites", "no_such_suite"],
], ids=lambda argv: " ".join(argv))
def test_bad_option_values_are_refused_before_any_work(workdir, argv):
    assert_refused(argv)


@pytest.mark.parametrize("source", [
    "def broken(:\n",
    "import no_such_module_for_convbench\n",
    "import harness\nharness.register_backend('torch', conv2d=lambda x, w, b, spec: x)\n",
    "raise RuntimeError('the plug-in itself fails')\n",
], ids=["syntax", "import", "name-collision", "raises"])
def test_a_broken_plugin_is_one_error_line_naming_the_file(workdir, source):
    plugin = workdir / "mine.py"
    plugin.write_text(source)
    code, err = run_cli(["verify", "--plugin", str(plugin), "--backend", "torch"])
    assert code == 2 and "Traceback" not in err and f"plugin {plugin}" in err and "error:" in err
    assert_refused(["verify", "--plugin", str(workdir / "missing.py")])


@pytest.mark.parametrize("line", [
    'mb1ic8ih12oc8kh3sh0n"stride zero"',
    'mb12345678901234567890ic8ih12oc8kh3n"twenty digits"',
    'mb0ic8ih12oc8kh3n"empty batch"',
    "std::make_tuple(12, 12, 8, 1, 8, 3, 3, 1, 1, 0, 1),",
], ids=["sh0", "mb-20-digits", "mb0", "deepbench-stride0"])
def test_a_bad_shape_file_line_is_one_error_line(workdir, line):
    shapes = workdir / "mine.txt"
    shapes.write_text(line + "\n")
    assert_refused(["bench", "--shapes", str(shapes), "--backends", "torch", "--no-progress"])


@pytest.mark.parametrize("content", ["{garbage", "[1, 2]", '{"cpu": 1}'])
def test_report_refuses_a_machine_record_that_is_not_one(workdir, monkeypatch, content):
    monkeypatch.setattr(report_command, "write_report", lambda *a, **k: pytest.fail("read the bad record"))
    (workdir / "reports").mkdir()
    (workdir / "reports" / "machine.json").write_text(content)
    assert_refused(["report"])


def test_bench_settings_and_history_of_the_wrong_kind_are_refused(tmp_path):
    csv = tmp_path / "bench.csv"
    csv.with_suffix(".json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a convbench bench settings file"):
        read_bench_settings(csv)
    csv.with_suffix(".json").write_text(json.dumps({"settings": {"threads": 1}}))
    assert read_bench_settings(csv) == {"threads": 1}
    history = tmp_path / "verify-history.jsonl"
    append_records(history, [{"run": "r1", "backend": "torch", "status": "passed", "max_units": 0.1}])
    with open(history, "a") as handle:
        handle.write("[1, 2, 3]\n")
    from harness.support.results_io import read_records

    with pytest.raises(ValueError, match="line 2 is not a record"):
        read_records(history)


def test_report_with_bad_stored_files_is_one_error_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bench_command, "record", lambda: FAKE_MACHINE)
    assert run_cli(["bench", "--backends", "torch", "--suite", "smoke", "--batch", "1", "--repeat", "1",
                    "--budget", "0", "--no-progress"])[0] == 0
    reports = tmp_path / "reports"
    settings_file = reports / "bench.json"
    good = settings_file.read_text()
    settings_file.write_text("[1, 2]")
    assert_refused(["report"])
    settings_file.write_text(good)
    pd.DataFrame({"backend": ["torch"], "status": ["passed"]}).to_csv(reports / "verify.csv", index=False)
    (reports / "verify-history.jsonl").write_text("[1, 2, 3]\n")
    assert_refused(["report"])


def test_bench_that_would_do_nothing_is_refused(workdir, monkeypatch):
    monkeypatch.setattr(bench_command.bench, "plan", lambda *a, **k: [])
    assert_refused(["bench", "--suite", "smoke", "--backends", "torch"])


# -- the property: no argument list makes convbench print a traceback ------------------------
VALUES = ["-5", "-1", "0", "1", "2", "1.5", "abc", "", " ", "nan", "inf", "-inf", "1e400",
          "99999999999999999999", "1,,2", "0,1", "1,8", "float16", "float32", "float64,float32", "all",
          "smoke", "resnet50", "nope", "torch", "naive", "auto", "auto:estimate", "conv2d", "max_pool2d",
          "no_such_op", "missing.py", "reports/x.csv", "-", "--", "run", "check"]
OPTIONS = {
    "verify": ["--backend", "--plugin", "--cases", "--seed", "--op", "--out", "--determinism", "--lowered",
               "--no-progress"],
    "bench": ["--suite", "--shapes", "--backends", "--batch", "--dtype", "--threads", "--repeat", "--budget",
              "--cold", "--limit", "--out", "--no-progress"],
    "run": ["--cases", "--seed", "--suite", "--batch", "--threads", "--budget", "--limit", "--no-bench"],
    "shapes": ["--suite", "--shapes", "--batch", "--dtype"],
    "report": ["--verify", "--bench", "--asv", "--out"],
    "mutants": ["--cases", "--seed", "--only"],
    "calibrate": ["--suite", "--threads", "--budget", "--from", "--out"],
    "backends": ["--op", "--plugin"],
    "env": ["--remeasure", "--out", "--json"],
    "asv": ["machine", "run", "publish", "check", "--suites", "--batches", "--threads", "--quick", "--bench"],
}
tokens = st.one_of(st.sampled_from(VALUES), st.text(max_size=6))


@st.composite
def argument_lists(draw):
    command = draw(st.sampled_from(sorted(OPTIONS) + ["nonsense"]))
    argv = [command]
    for _ in range(draw(st.integers(0, 4))):
        argv.append(draw(st.sampled_from(OPTIONS.get(command, ["--x"]))))
        if draw(st.booleans()):
            argv.append(draw(tokens))
    return argv


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=argument_lists())
def test_no_argument_list_gives_a_traceback(workdir, argv):
    code, err = run_cli(argv)  # any exception other than SystemExit fails the test with its traceback
    assert code in (0, 1, 2), (argv, code, err)
    assert "Traceback" not in err, (argv, err)
    if code == 2:
        assert "error:" in err, (argv, err)
