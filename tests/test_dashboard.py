"""convbench's asv dashboard: one self-contained page from asv's results, with no external URL."""

import base64
import json
import re
from types import SimpleNamespace

import pytest

from harness.cli.commands import asv as asv_command
from harness.report import dashboard

BACKENDS = ["'naive'", "'im2col'"]
LAYERS = ["'smoke.a'", "'smoke.b'"]


def _results_file(folder, commit, date_ms, gflops, peak):
    """An asv (format 2) results file: track_gflops and track_peak_bytes on 2 backends x 2 layers."""
    params = [BACKENDS, LAYERS, ["1"], ["'float32'"], ["1"]]
    data = {
        "commit_hash": commit, "env_name": "existing-py", "date": date_ms, "params": {"machine": "box"},
        "python": "3.11", "requirements": {}, "env_vars": {}, "version": 2,
        "result_columns": ["result", "params", "version", "started_at", "duration"],
        "results": {
            "bench_conv2d.Conv2d.track_gflops": [gflops, params, "h1", 0, 1.0],
            "bench_conv2d.Conv2dTracedMemory.track_peak_bytes": [peak, params, "h2", 0, 1.0],
        },
        "durations": {},
    }
    (folder / f"{commit[:8]}-existing-py.json").write_text(json.dumps(data))


@pytest.fixture
def results_dir(tmp_path):
    root = tmp_path / "results"
    (root / "box").mkdir(parents=True)
    names = ["backend", "layer", "batch", "dtype", "threads"]
    (root / "benchmarks.json").write_text(json.dumps({
        "bench_conv2d.Conv2d.track_gflops": {"param_names": names},
        "bench_conv2d.Conv2dTracedMemory.track_peak_bytes": {"param_names": names}, "version": 2}))
    (root / "box" / "machine.json").write_text(json.dumps({"machine": "box", "version": 1}))
    # the newer commit's file sorts first by name: the dashboard must order by date
    _results_file(root / "box", "bbbbbbbb" + "0" * 32, 1_700_000_000_000, [1.0, 2.0, 3.0, None], [1e6, 2e6, 3e6, 4e6])
    _results_file(root / "box", "aaaaaaaa" + "1" * 32, 1_800_000_000_000, [1.5, 2.5, 3.5, 4.5], [1e6, 2e6, 3e6, 5e6])
    return root


def test_history_orders_commits_by_date_and_keeps_every_point(results_dir):
    frame = dashboard.history(results_dir)
    assert list(dashboard.commits(results_dir).commit) == ["bbbbbbbb", "aaaaaaaa"]
    gflops = frame[frame.metric == "gflops"]
    assert len(gflops) == 7  # 8 points, one not measured (None)
    newest = gflops[gflops.step == 1].set_index(["backend", "layer"]).value
    assert newest[("im2col", "smoke.b")] == 4.5
    assert set(frame.metric) == {"gflops", "traced_peak_bytes"}


def test_published_page_is_self_contained(results_dir, tmp_path):
    out = dashboard.write_dashboard(results_dir, tmp_path / "site" / "dashboard.html")
    page = out.read_text()
    # nothing fetched: no URL at all, no script, every image inline
    assert not re.search(r"https?://", page)
    assert "<script" not in page and "<link" not in page
    images = re.findall(r"src='([^']*)'", page)
    assert len(images) == 4  # 2 metrics x 2 layers
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert base64.b64decode(images[0].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    for expected in ("bbbbbbbb", "aaaaaaaa", "smoke.a", "GFLOP/s", "tracemalloc", "4.50"):
        assert expected in page


def test_cli_publish_writes_the_dashboard_and_fails_clearly_without_results(results_dir, tmp_path, capsys):
    args = SimpleNamespace(out=str(tmp_path / "d.html"), asv_web=False)
    assert asv_command.publish_dashboard(results_dir, args.out) == 0
    assert (tmp_path / "d.html").is_file()
    assert asv_command.publish_dashboard(tmp_path / "nothing", args.out) == 2
    assert "run `convbench asv run` first" in capsys.readouterr().err


def test_asv_runs_with_its_machine_file_inside_the_project(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "real-home"))
    env = asv_command.asv_env(SimpleNamespace(suites=None, batches=None, threads=None))
    assert env["HOME"].endswith(".asv/home") and env["HOME"] != str(tmp_path / "real-home")
