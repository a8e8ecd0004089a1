"""asv configuration and benchmark discovery (fast: `asv check`, no benchmark is run)."""

import json
import re
import subprocess
import sys
from pathlib import Path

from harness.commands.asv import asv_command

ROOT = Path(__file__).resolve().parents[1]


def _conf():
    text = (ROOT / "asv.conf.json").read_text()
    return json.loads(re.sub(r"^\s*//.*$", "", text, flags=re.M))


def test_conf_uses_the_existing_environment_and_ignored_dirs():
    conf = _conf()
    assert conf["environment_type"] == "existing"
    for key in ("results_dir", "html_dir", "env_dir"):
        assert conf[key].startswith(".asv/")
    assert ".asv/" in (ROOT / ".gitignore").read_text().split()
    # higher GFLOP/s is better: asv must not report rises as regressions
    assert conf["regressions_first_commits"][".*track_gflops"] is None


def test_run_passes_the_flags_asv_06_needs():
    machine, run = asv_command("run", quick=True)
    assert machine[1:] == ["machine", "--yes"]
    assert "--python=same" in run and "--quick" in run
    commit = run[run.index("--set-commit-hash") + 1]
    assert re.fullmatch(r"[0-9a-f]{40}", commit)


def test_asv_check_passes():
    asv = Path(sys.executable).with_name("asv")
    done = subprocess.run([str(asv), "check", "--python=same"], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": str(asv.parent) + ":/usr/bin:/bin", "CONVBENCH_ASV_SUITES": "smoke",
                               "HOME": str(Path.home())}, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No problems found" in done.stdout


def test_benchmark_grid_comes_from_the_registry_and_suites(monkeypatch):
    monkeypatch.setenv("CONVBENCH_ASV_SUITES", "smoke")
    sys.path.insert(0, str(ROOT))
    try:
        import importlib

        module = importlib.reload(importlib.import_module("benchmarks.bench_conv2d"))
    finally:
        sys.path.remove(str(ROOT))
    backends, layers, batches, dtypes = module.Conv2d.params
    import harness

    assert backends == [b.name for b in harness.backends()]
    assert layers == [label for label, _ in harness.suites.load("smoke")]
    assert module.Conv2d.track_gflops.unit == "GFLOP/s"
    bench = module.Conv2d()
    bench.setup("naive", layers[0], 1, "float32")
    bench.time_conv2d("naive", layers[0], 1, "float32")
    assert bench.track_gflops("naive", layers[0], 1, "float32") > 0
    assert bench.track_cpr("naive", layers[0], 1, "float32") == 16 * 16
