"""Results are never lost: atomic writes, append-only history, interrupted runs, truncated files."""

import os
import signal
import subprocess
import sys

import pandas as pd
import pytest

from harness.support import results_io
from harness.report.page import read_results
from harness.support.results_io import append_records, read_records, write_atomic, write_csv
from conftest import with_default_sigint


def test_a_failed_write_leaves_the_old_file_whole_and_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "results.csv"
    write_atomic(target, "old,complete\n")

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(results_io.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, "new,half")
    assert target.read_text() == "old,complete\n"
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]


def test_appended_runs_keep_earlier_ones(tmp_path):
    history = tmp_path / "h.jsonl"
    append_records(history, [{"run": 1, "case": i} for i in range(3)])
    append_records(history, [{"run": 2, "case": 0, "max_units": float("nan")}])
    records = read_records(history)
    assert [(r["run"], r["case"]) for r in records] == [(1, 0), (1, 1), (1, 2), (2, 0)]


def test_a_truncated_history_is_rejected_clearly_and_repaired_by_the_next_append(tmp_path):
    history = tmp_path / "h.jsonl"
    append_records(history, [{"run": 1, "case": 0}, {"run": 1, "case": 1}])
    with open(history, "ab") as handle:  # a writer killed in the middle of a line
        handle.write(b'{"run": 2, "ca')
    with pytest.raises(ValueError, match=r"line 3\) is truncated .* 2 complete records before it are intact"):
        read_records(history)
    assert len(read_records(history, allow_truncated=True)) == 2
    append_records(history, [{"run": 3, "case": 0}])
    assert [r["run"] for r in read_records(history)] == [1, 1, 3]


def test_report_reader_rejects_a_truncated_csv(tmp_path):
    path = tmp_path / "verify.csv"
    write_csv(pd.DataFrame({"backend": ["a", "b"], "status": ["passed", "failed"],
                            "max_units": [0.1, 2.0], "case": ["c1", "c2"]}), path)
    assert len(read_results(path, ["backend", "status"])) == 2
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(ValueError, match="truncated"):
        read_results(path, ["backend", "status"])
    with pytest.raises(ValueError, match="not a convbench results file"):
        write_csv(pd.DataFrame({"x": [1]}), path)
        read_results(path, ["backend", "status"])


INTERRUPTING_PLUGIN = """
import os, signal, harness
from impls.torch import conv2d_on
conv = conv2d_on("cpu")
calls = 0
def conv2d(x, w, b, spec):
    global calls
    calls += 1
    if calls == 20:
        os.kill(os.getpid(), signal.{signal})
    return conv(x, w, b, spec)
harness.register_backend("dies", conv2d=conv2d)
"""


def _run_verify(tmp_path, how):
    plugin = tmp_path / "dies.py"
    plugin.write_text(INTERRUPTING_PLUGIN.replace("{signal}", how))
    out = tmp_path / "verify.csv"
    done = subprocess.run([sys.executable, "-m", "harness.cli", "verify", "--backend", "dies", "--plugin",
                           str(plugin), "--cases", "50", "--out", str(out)], capture_output=True, text=True,
                          timeout=300, preexec_fn=with_default_sigint)
    return done, out, tmp_path / "verify-history.jsonl"


def test_ctrl_c_keeps_every_finished_case(tmp_path):
    done, out, history = _run_verify(tmp_path, "SIGINT")
    assert done.returncode == 130, done.stderr
    assert "interrupted" in done.stderr
    assert len(pd.read_csv(out)) == 19
    assert len(read_records(history)) == 19


def test_a_killed_run_keeps_its_history(tmp_path):
    done, out, history = _run_verify(tmp_path, "SIGKILL")
    assert done.returncode == -signal.SIGKILL
    assert not out.exists()
    assert len(read_records(history)) == 19


def test_an_interrupted_benchmark_keeps_its_finished_layers(tmp_path):
    plugin = tmp_path / "slow_stop.py"
    plugin.write_text(
        "import os, signal, harness\n"
        "from impls.torch import conv2d_on\n"
        "conv = conv2d_on('cpu')\n"
        "layers = set()\n"
        "def conv2d(x, w, b, spec):\n"
        "    layers.add(spec)\n"
        "    if len(layers) == 3:  # interrupted on the third layer: two are finished\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "    return conv(x, w, b, spec)\n"
        "harness.register_backend('stops', conv2d=conv2d)\n"
    )
    out = tmp_path / "bench.csv"
    code = (f"import sys; sys.argv=['convbench']; from harness.backend.plugins import load_plugin; load_plugin({str(plugin)!r}); "
            "from harness.cli import main; "
            f"sys.exit(main(['bench', '--suite', 'smoke', '--backends', 'stops', '--batch', '1', '--budget', '0.01', "
            f"'--repeat', '1', '--no-progress', '--out', {str(out)!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          preexec_fn=with_default_sigint)
    assert done.returncode == 130, done.stdout + done.stderr
    kept = pd.read_csv(out)
    history = read_records(tmp_path / "bench-history.jsonl")
    assert 0 < len(kept) == len(history)
    assert kept.layer.nunique() == 2 and (kept.backend == "stops").any()


_APPENDER = """
import fcntl, os, sys
from harness.support.results_io import append_records
path, writer, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(count):
    if writer == 0 and i % 3 == 0:
        # a writer killed mid-line, as it would leave the file (it held the lock while writing)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, b'{"writer": 0, "partial": ')
        os.close(fd)
    append_records(path, [{"writer": writer, "i": i, "pad": "x" * 200}])
"""


def test_concurrent_writers_never_lose_a_complete_record(tmp_path):
    history = tmp_path / "h.jsonl"
    history.write_bytes(b'{"left": "over')  # a partial line left by an earlier killed run
    writers, count = 4, 60
    procs = [subprocess.Popen([sys.executable, "-c", _APPENDER, str(history), str(k), str(count)])
             for k in range(writers)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    records = read_records(history, allow_truncated=True)
    assert sorted((r["writer"], r["i"]) for r in records) == [(k, i) for k in range(writers) for i in range(count)]


def test_written_files_honour_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        assert (write_atomic(tmp_path / "a.txt", "x").stat().st_mode & 0o777) == 0o644
        assert (append_records(tmp_path / "h.jsonl", [{"a": 1}]).stat().st_mode & 0o777) == 0o644
        os.umask(0o077)
        assert (write_atomic(tmp_path / "b.txt", b"x").stat().st_mode & 0o777) == 0o600
    finally:
        os.umask(old)
