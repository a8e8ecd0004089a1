"""harness.testing, the pytest plug-in, the hypothesis strategies and plug-in reproducers.

The README's ``test_my_kernel.py`` runs as written in a directory of its own, under pytest with
the plug-in (and under pytest-xdist); the rest checks the pieces in-process on tiny budgets.
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, find, given, settings

import harness
from harness.ops.cases.text import parse_case, unique_ids
from harness.cli import main as cli_main
from harness.ops.table import OPS
from harness.backend.plugins import load_plugin, plugin_file
from harness.strategies import STRATEGIES, conv2d_cases
from harness.testing import VerificationFailure, assert_case, assert_close, assert_verified, cases
from harness.verify.verifier import check_case, reproducer
from impls.torch import conv2d_on

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
torch_conv = conv2d_on("cpu")


def flipped_conv2d(x, w, bias, spec):
    """A planted bug: the kernel flipped (a true convolution, not torch's cross-correlation)."""
    return torch_conv(x, np.ascontiguousarray(w[:, :, ::-1, ::-1]), bias, spec)


def readme_block(marker: str, lang: str) -> str:
    match = re.search(rf"<!-- {marker} -->\s*```{lang}\n(.*?)```", README.read_text(), re.S)
    assert match, f"README lost its {marker} block"
    return match.group(1)


def run_pytest(tmp_path, *args, timeout=600):
    """pytest in ``tmp_path`` with this checkout's harness and the plug-in, as a user would run it."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               HOME=str(tmp_path))
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "harness.pytest_plugin", "-p", "no:cacheprovider",
                           *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)


# -- the README example, end to end --------------------------------------------------------------------
def test_readme_test_file_passes_the_kernel_and_fails_the_planted_bug_as_shown(tmp_path):
    (tmp_path / "test_my_kernel.py").write_text(readme_block("example: test_my_kernel.py", "python"))
    done = run_pytest(tmp_path, "-q", "test_my_kernel.py")
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert re.search(r"^1 failed, \d+ passed", out, re.M) and "FAILED test_my_kernel.py::test_buggy_conv2d" in out
    shown = readme_block("failure: test_my_kernel.py", "text").splitlines()
    for prefix in ("convbench: 'buggy_conv2d' failed", "  smallest failing case, shrunk:"):
        line = next(s for s in shown if s.startswith(prefix))
        assert line in out.splitlines(), f"README shows {line!r}; the run printed:\n{out}"
    assert "replay with --convbench-seed 0" in out
    command = next(s.strip() for s in out.splitlines() if s.strip().startswith("python -c"))
    argv = shlex.split(command)
    pasted = subprocess.run([sys.executable] + argv[1:], cwd="/", capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert pasted.returncode == 1 and "VerificationFailure" in pasted.stderr, pasted.stderr
    assert "worst at" in pasted.stderr


def test_readme_test_file_under_xdist_collects_the_same_cases_on_every_worker(tmp_path):
    pytest.importorskip("xdist")
    (tmp_path / "test_my_kernel.py").write_text(readme_block("example: test_my_kernel.py", "python"))
    (tmp_path / "test_one_bug.py").write_text(  # one small failing case: the controller renders a worker's failure
        "from harness.ops.cases.conv2d import Conv2dCase\nfrom harness.testing import assert_case\n"
        "from test_my_kernel import buggy_conv2d\n"
        "def test_one_case():\n    assert_case(buggy_conv2d, Conv2dCase((1, 2, 4, 4), (2, 2, 2, 2)))\n")
    done = run_pytest(tmp_path, "-q", "-n", "2", "--convbench-seed", "random", "-k", "each_case or one_case")
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert re.search(r"^1 failed, 8 passed", out, re.M), out
    assert "reproduce:" in out and re.search(r"replay with --convbench-seed \d+", out)


# -- assert_verified / assert_case / cases -------------------------------------------------------------
def test_assert_verified_passes_a_registered_backend_and_returns_the_report():
    report = assert_verified("naive", cases=4, table=False)
    assert len(report) == 4 and set(report.status) <= {"passed", "mistrusted"}


def test_assert_verified_names_the_shrunk_case_and_removes_the_temporary_backend():
    before = {b.name for b in harness.backends()}
    with pytest.raises(VerificationFailure) as caught:
        assert_verified(flipped_conv2d, cases=6, table=False, features={"bias", "padding"})
    failure = caught.value
    text = str(failure)
    assert "smallest failing case, shrunk: Conv2dCase(" in text and "worst at" in text
    assert f"{Path(__file__).resolve()}::flipped_conv2d" in failure.reproducer
    assert failure.minimal.status == "failed" and max(failure.minimal.case.w_shape[2:]) >= 2
    assert {b.name for b in harness.backends()} == before


def test_assert_verified_refuses_a_run_that_checked_nothing():
    with pytest.raises(VerificationFailure, match="no conv2d case could be checked"):
        assert_verified(flipped_conv2d, cases=0, table=False)


def test_assert_verified_rejects_declarations_for_a_registered_name():
    with pytest.raises(TypeError, match="already registered"):
        assert_verified("naive", cases=1, features={"bias"})


def test_cases_have_unique_stable_readable_ids():
    first, again = cases(n=30), cases(n=30)
    ids = [p.id for p in first]
    assert len(set(ids)) == len(ids) and ids == [p.id for p in again]
    assert ids[0].startswith("conv2d-3x3-float32-n2c4h7w7")
    assert all(re.fullmatch(r"[\w.=-]+", i) for i in ids)
    assert [p.id for p in cases(n=10, table=False)[:5]] == [p.id for p in cases(n=5, table=False)]


def test_cases_for_a_backend_stay_within_its_features_and_skip_table_rows_with_the_reason():
    params = cases(backend="winograd", n=5)
    skipped = [p for p in params if p.marks]
    assert skipped and all("winograd" in p.marks[0].kwargs["reason"] for p in skipped)
    random_part = params[-5:]
    assert all(not p.marks for p in random_part)
    with pytest.raises(ValueError, match="unknown conv2d feature"):
        cases(features={"bias", "warp"})


def test_unique_ids_number_repeats():
    case = OPS["conv2d"].table_cases()[0]
    assert unique_ids([case, case, case]) == [unique_ids([case])[0], unique_ids([case])[0] + "-2",
                                              unique_ids([case])[0] + "-3"]


def test_assert_case_passes_skips_and_fails():
    table = OPS["conv2d"].table_cases()
    assert assert_case("naive", table[0]).status == "passed"
    grouped = next(c for c in table if c.groups > 1)
    with pytest.raises(pytest.skip.Exception, match="groups"):
        assert_case(flipped_conv2d, grouped, features={"bias"})
    with pytest.raises(VerificationFailure, match="worst at"):
        assert_case(flipped_conv2d, table[0])


def test_a_pasted_reproducer_loads_the_function_from_its_file():
    ref = f"{Path(__file__).resolve()}::flipped_conv2d"
    with pytest.raises(VerificationFailure):
        assert_case(ref, OPS["conv2d"].table_cases()[0], shrink_failure=False)


# -- assert_close --------------------------------------------------------------------------------------
def test_assert_close_uses_the_bound_of_the_call(rng):
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    y = harness.conv2d(x, w, stride=2, padding=1, backend="im2col")
    assert_close(y, x=x, w=w, stride=2, padding=1)
    with pytest.raises(AssertionError, match="out of bound; worst at"):
        assert_close(y * (1 + 1e-4), x=x, w=w, stride=2, padding=1)
    with pytest.raises(AssertionError, match="shape"):
        assert_close(y[:, :, :-1], x=x, w=w, stride=2, padding=1)
    with pytest.raises(AssertionError, match="dtype"):
        assert_close(y.astype(np.float64), x=x, w=w, stride=2, padding=1)
    xi, wi, bi = (np.round(4 * a).astype(np.float32) for a in (x[0], w, rng.standard_normal(4)))
    assert_close(harness.conv2d(xi, wi, bi, padding="same", backend="naive"), x=xi, w=wi, bias=bi, padding="same",
                 exact=True)  # unbatched, integer data: bit for bit


def test_assert_close_covers_ops_with_several_outputs(rng):
    x = rng.standard_normal((1, 2, 6, 6))
    w = rng.standard_normal((3, 2, 3, 3))
    go = rng.standard_normal((1, 3, 4, 4))
    grads = harness.conv2d_backward(x, w, go, bias=True, backend="naive")
    assert_close(grads, op="conv2d_backward", x=x, w=w, grad_out=go, bias=True)
    y, idx = harness.max_pool2d(x, 2, return_indices=True, backend="naive")
    assert_close((y, idx), op="max_pool2d", x=x, kernel_size=2, return_indices=True)
    with pytest.raises(AssertionError, match="output 1"):
        assert_close((y, idx[..., ::-1].copy()), op="max_pool2d", x=x, kernel_size=2, return_indices=True)


# -- strategies ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("op", sorted(STRATEGIES))
def test_each_strategy_draws_valid_cases_within_the_features(op):
    features = {"stride", "padding"} & harness.backend.registry.OP_FEATURES[op]

    @settings(max_examples=8, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(STRATEGIES[op](features=features, max_elements=3000))
    def check(case):
        assert type(case) is OPS[op].case_type and case.spec.features <= features
        assert check_case("naive", case).status in ("passed", "mistrusted")

    check()


def test_hypothesis_shrinks_a_planted_bug_to_a_tiny_case():
    harness.register_backend("flipped_t16", conv2d=flipped_conv2d)
    try:
        worst = find(conv2d_cases(features={"bias"}, max_elements=500),
                     lambda case: check_case("flipped_t16", case).status == "failed",
                     settings=settings(database=None, max_examples=200, deadline=None))
    finally:
        harness.unregister_backend("flipped_t16")
    assert np.prod(worst.x_shape) <= 4 and max(worst.w_shape[2:]) == 2 and worst.w_shape[:2] == (1, 1)


# -- plug-in files: reproducers and --case -------------------------------------------------------------
def test_plugin_backends_get_reproducers_that_load_the_plugin_and_a_one_case_command(tmp_path, capsys):
    plugin = tmp_path / "flip_plugin.py"
    plugin.write_text("import numpy as np, harness\nfrom impls.torch import conv2d_on\nconv = conv2d_on('cpu')\n"
                      "harness.register_backend('flipped_plugin_t16', conv2d=lambda x, w, b, s: "
                      "conv(x, np.ascontiguousarray(w[:, :, ::-1, ::-1]), b, s))\n")
    try:
        load_plugin(plugin)
        assert plugin_file("flipped_plugin_t16") == str(plugin.resolve())
        case = OPS["conv2d"].table_cases()[0]
        command = reproducer("flipped_plugin_t16", case)
        assert f"load_plugin({str(plugin.resolve())!r})" in command
        pasted = subprocess.run([sys.executable] + shlex.split(command)[1:], cwd="/", capture_output=True, text=True,
                                timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert pasted.returncode == 0 and "status='failed'" in pasted.stdout, pasted.stderr
        assert cli_main(["verify", "--backend", "flipped_plugin_t16,naive", "--case", repr(case)]) == 1
        out = capsys.readouterr().out
        assert "flipped_plugin_t16: failed" in out and "naive: passed" in out
        assert cli_main(["verify", "--backend", "naive", "--case", "Conv2dCase(x_shape=(1, 2"]) == 2
        assert "cannot parse case" in capsys.readouterr().err
    finally:
        harness.unregister_backend("flipped_plugin_t16")


def test_every_table_case_parses_back_from_its_repr():
    for info in OPS.values():
        for case in info.table_cases():
            assert parse_case(repr(case)) == case
    with pytest.raises(ValueError, match="known case types"):
        parse_case("__import__('os').system('true')")


# -- the pytest plug-in --------------------------------------------------------------------------------
def test_plugin_options_header_and_fixture(tmp_path):
    (tmp_path / "test_opts.py").write_text(
        "import harness, pytest\n"
        "from harness.testing import cases, settings\n"
        "@pytest.mark.parametrize('case', cases(table=False))\n"
        "def test_case(case):\n    assert settings()['exact'] is True\n"
        "def test_fixture(convbench_backend, convbench_seed):\n"
        "    name = convbench_backend(lambda x, w, b, s: x, features={'bias'})\n"
        "    assert harness.get_backend(name).exact and convbench_seed == 7\n"
    )
    done = run_pytest(tmp_path, "-v", "--convbench-cases", "3", "--convbench-seed", "7", "--convbench-exact")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "convbench: seed 7 (replay: --convbench-seed 7), cases 3, exact on" in out
    assert "4 passed" in out
    bad = run_pytest(tmp_path, "--convbench-seed", "soon")
    assert bad.returncode != 0 and "--convbench-seed must be" in bad.stderr


def test_harness_import_leaves_pytest_and_pandas_out():
    code = "import sys, harness; print('pytest' in sys.modules, 'pandas' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["False", "False"], done.stderr


def test_installed_entry_point_and_dash_p_load_the_plugin_once(tmp_path):
    """pyproject names the pytest11 entry point as the module, so both ways in are one plug-in."""
    import tomllib

    points = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["pytest11"]
    site = tmp_path / "site"
    info = site / "convbench_entry_point_probe-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: convbench-entry-point-probe\nVersion: 0\n")
    (info / "entry_points.txt").write_text("[pytest11]\n" + "".join(f"{k} = {v}\n" for k, v in points.items()))
    (tmp_path / "test_one.py").write_text("def test_one(convbench_seed):\n    assert convbench_seed == 0\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(site)]), HOME=str(tmp_path))
    for extra in ([], ["-p", "harness.pytest_plugin"]):
        done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *extra, "test_one.py"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0 and "convbench: seed 0" in done.stdout, done.stdout + done.stderr
