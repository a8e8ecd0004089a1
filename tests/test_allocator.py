"""The steady heap the benchmarks time in (harness.support.allocator), checked in a child process
(a fresh one: set once per process)."""

import subprocess
import sys

import pytest


def test_steady_heap_is_set_once_and_says_what_it_set(tmp_path):
    code = ("from harness.support import allocator\n"
            "first = allocator.steady_heap()\n"
            "assert allocator.steady_heap() is first  # once per process\n"
            "import numpy as np\n"
            "for _ in range(3):\n"
            "    a = np.ones(8 * 2**20 // 8); del a  # 8 MB blocks come and go\n"
            "print(first)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    said = out.stdout.strip()
    if not said:
        pytest.skip("not glibc: the heap is left as it is")
    assert said.startswith("glibc malloc: mmap threshold ") and "trim threshold 1 GB" in said

