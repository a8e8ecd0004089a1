"""``convbench run`` keeps every finished case and layer, as ``verify`` and ``bench`` do: appended
to the histories as they finish, and written to the CSVs when the run is interrupted."""

import pandas as pd
import pytest

import harness
from harness.bench import runner as bench
from harness.cli import main
from harness.cli.commands import run as run_command
from harness.backend.registry import get_backend
from harness.support.results_io import read_records
from impls.torch import conv2d_on

FAKE_MACHINE = {
    "cpu": {"usable_cpus": 1},
    "peak": {"sgemm": {"gflops": 100.0}, "dgemm": {"gflops": 50.0}, "threads": 1},
    "bandwidth": {"gbs": 10.0},
}
_torch = conv2d_on("cpu")


@pytest.fixture
def stops_on(tmp_path, monkeypatch):
    """Register a backend 'stops' that raises KeyboardInterrupt (as Ctrl-C would) when asked
    ``should_stop(call_number, spec)``; the main job then sees only that backend."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(run_command, "record", lambda: FAKE_MACHINE)
    monkeypatch.setattr(run_command, "summary_lines", lambda machine: ["fake machine"])
    monkeypatch.setattr(run_command, "backends", lambda: [get_backend("stops")])

    def install(should_stop):
        calls = []

        def conv2d(x, w, b, spec):
            calls.append(spec)
            if should_stop(len(calls), spec):
                raise KeyboardInterrupt
            return _torch(x, w, b, spec)

        harness.register_backend("stops", conv2d=conv2d, features={"bias", "stride", "padding"})
        return calls

    yield install
    harness.backend.registry.unregister_backend("stops")


def test_run_interrupted_while_verifying_keeps_the_finished_cases(stops_on, tmp_path, capsys):
    stops_on(lambda n, spec: n == 6)
    assert main(["run", "--cases", "20", "--no-bench"]) == 130
    kept = pd.read_csv(tmp_path / "reports" / "verify.csv")
    history = read_records(tmp_path / "reports" / "verify-history.jsonl")
    assert 0 < len(kept) == len(history) and (kept.backend == "stops").all()
    assert (kept.status == "passed").sum() == 5  # the five calls before the interrupt, each judged
    assert "interrupted" in capsys.readouterr().err


def test_run_interrupted_while_benchmarking_keeps_the_finished_layers(stops_on, tmp_path):
    second = bench.plan(["smoke"], batches=[1])[1][1].spec
    stops_on(lambda n, spec: spec == second)
    assert main(["run", "--cases", "4", "--suite", "smoke", "--budget", "0", "--no-calibrate"]) == 130
    reports = tmp_path / "reports"
    verified = pd.read_csv(reports / "verify.csv")  # verification had finished: all of it is kept
    assert len(verified) == len(read_records(reports / "verify-history.jsonl")) > 4
    kept = pd.read_csv(reports / "bench.csv")
    assert len(kept) == len(read_records(reports / "bench-history.jsonl")) > 0
    assert kept.layer.nunique() == 1 and (kept.backend == "stops").any()


def test_the_default_benchmark_is_the_representative_selection_and_full_suites_are_one_flag_away():
    from harness.cli import build_parser
    from harness.suites import representative

    default = build_parser().parse_args(["run"])
    assert default.suite == representative.NAME and not default.full
    assert default.max_rounds == run_command.MAX_ROUNDS
    cases = run_command.benchmark_cases([default.suite], [1])
    assert [layer.label for _, layer in cases] == list(representative.LAYERS)
    assert all(layer.label.startswith(suite + ".") and layer.spec.N == 1 for suite, layer in cases)
    specs = [layer.spec for _, layer in cases]  # every group the report shows is there
    assert any(1 < s.groups < s.C for s in specs) and any(s.groups == s.C > 1 for s in specs)
    assert any(s.KH == 1 for s in specs) and any(s.KH >= 7 for s in specs) and any(s.stride == (2, 2) for s in specs)
    assert len(run_command.benchmark_cases(["representative"], [1, 8])) == 2 * len(representative.LAYERS)
    full = run_command.benchmark_cases(list(run_command.FULL_SUITES), [1])
    assert {suite for suite, _ in full} == set(run_command.FULL_SUITES) and len(full) > len(cases)
    with pytest.raises(ValueError, match="unknown suite"):
        run_command.benchmark_cases(["no_such_suite"], [1])


def test_the_benchmark_stops_at_its_round_cap():
    # a budget these rounds cannot spend (8 samples' worth): the cap ends the layer
    case = bench.plan(["smoke"], batches=[1])[:1]
    results = bench.run(case, ["im2col"], threads=1, budget_s=0.08, min_runs=2, max_rounds=3, settle_s=0.0,
                        progress=False)
    rounds = results[results.metric == "rounds"]
    assert len(rounds) >= 1 and (rounds.value == 3).all()
