"""The README's backend example runs as written, through the API and the command line."""

import re
import subprocess
import sys
from pathlib import Path

import harness

README = Path(__file__).resolve().parent.parent / "README.md"


def example_source() -> str:
    text = README.read_text()
    match = re.search(r"<!-- example: my_backend.py -->\s*```python\n(.*?)```", text, re.S)
    assert match, "README lost its my_backend.py example"
    return match.group(1)


def test_example_is_about_ten_lines():
    lines = [line for line in example_source().splitlines() if line.strip()]
    assert len(lines) <= 16


def test_example_backend_verifies_in_process():
    namespace = {}
    exec(compile(example_source(), "my_backend.py", "exec"), namespace)
    try:
        report = harness.verify("mine", cases=80, seed=0)
        assert (report.status != "failed").all(), report[report.status == "failed"].message.tolist()
        grouped = report[report.groups > 1]
        assert not grouped.empty and (grouped.status == "unsupported").all()
    finally:
        harness.unregister_backend("mine")


def test_example_backend_verifies_from_the_command_line(tmp_path):
    plugin = tmp_path / "my_backend.py"
    plugin.write_text(example_source())
    out = tmp_path / "verify.csv"
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "verify", "--backend", "mine", "--plugin", str(plugin),
         "--cases", "40", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "mine" in done.stdout and out.exists()


def test_command_line_exits_nonzero_on_a_wrong_backend(tmp_path):
    plugin = tmp_path / "bad_backend.py"
    plugin.write_text(
        "import numpy as np, harness\n"
        "from impls.torch import conv2d_on\n"
        "conv = conv2d_on('cpu')\n"
        "harness.register_backend('bad', conv2d=lambda x, w, b, s: conv(x, np.ascontiguousarray(w[:, :, ::-1]), b, s))\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "verify", "--backend", "bad", "--plugin", str(plugin),
         "--cases", "30", "--out", str(tmp_path / "v.csv")],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "minimal reproducer" in done.stdout and "Conv2dCase(" in done.stdout


def test_unknown_backend_on_the_command_line_lists_the_known_ones():
    done = subprocess.run([sys.executable, "-m", "harness.cli", "verify", "--backend", "nope"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "known backends: auto" in done.stderr
