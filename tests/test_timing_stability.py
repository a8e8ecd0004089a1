"""Interleaved paired timing, machine state, the stability rule and the A/A self-test.

These tests check flags, never speeds: a twin is not reported as different, injected jitter
comes out unstable, and a machine the test itself keeps busy comes out flagged, not ranked.
"""

import json
import os
import random
import subprocess
import sys
import time

import numpy as np
import pytest

import harness
from harness.bench.terminal import results_table
from harness.bench import runner as bench
from harness.support import machine_state
from harness.bench import paired
from harness.bench import stability
from harness.support import timing
from harness.bench import selftest as timing_selftest
from harness.report.data import winners
from harness.backend.registry import get_backend, register_backend, unregister_backend

HAS_PROC = os.path.exists(machine_state.PROC_STAT) and os.path.isdir("/proc/self/task")
TINY = dict(threads=1, budget_s=0.02, min_runs=6, settle_s=0.002, progress=False)


def smoke_cases(n=1):
    return [c for c in bench.plan(["smoke"], batches=[1]) if c[1].op == "conv2d"][:n]


@pytest.fixture
def twin():
    """im2col's conv2d under a second name, removed afterwards."""
    timing_selftest._register_twin(get_backend("im2col"))
    yield "im2col_twin"
    unregister_backend("im2col_twin")


@pytest.fixture
def busy_cores():
    """One busy-loop child per usable core, each ending by itself after 30 s at the latest,
    always stopped when the test ends."""
    code = "import time\nend = time.monotonic() + 30\nwhile time.monotonic() < end:\n    pass\n"
    children = [subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL)
                for _ in range(machine_state.usable_cores())]
    try:
        time.sleep(0.3)  # interpreters started and spinning
        yield len(children)
    finally:
        for child in children:
            child.kill()
        for child in children:
            child.wait(timeout=10)


# -- statistics --------------------------------------------------------------------------
def test_ratio_interval_is_paired_seeded_and_brackets_the_median():
    rng = np.random.default_rng(3)
    base = 1.0 + 0.05 * rng.standard_normal(20)
    other = base / 2.0  # twice as fast, round by round
    ratio, lo, hi = paired.ratio_interval(base, other)
    assert ratio == pytest.approx(2.0) and lo == pytest.approx(2.0) and hi == pytest.approx(2.0)
    noisy = other * (1 + 0.1 * rng.standard_normal(20))
    first, again = paired.ratio_interval(base, noisy, seed=1), paired.ratio_interval(base, noisy, seed=1)
    assert first == again and first[1] <= first[0] <= first[2] and first[2] > first[1]
    with pytest.raises(ValueError, match="paired"):
        paired.ratio_interval([1.0, 2.0], [1.0])
    assert paired.format_ratio(1.31, 1.22, 1.4) == "1.31x [1.22, 1.40]"


def test_geomean_interval_narrows_with_more_layers():
    one = paired.geomean_interval([2.0], [1.8], [2.2])
    four = paired.geomean_interval([2.0] * 4, [1.8] * 4, [2.2] * 4)
    assert one[0] == pytest.approx(2.0) and one[1] == pytest.approx(1.8, rel=0.01)
    assert four[0] == pytest.approx(2.0) and one[1] < four[1] < 2.0 < four[2] < one[2]


def test_rounds_interleave_in_shuffled_orders_and_pair_every_sample():
    calls = []

    def contender(name):
        return paired.Contender(lambda: calls.append(name), (), lambda: None, 0.0)

    samples = paired.measure({n: contender(n) for n in "abc"}, budget_s=0.0, min_rounds=12, settle_s=0.0, seed=5)
    assert samples.rounds == 12 and all(len(t) == 12 for t in samples.times.values())
    assert all(sorted(order) == ["a", "b", "c"] for order in samples.order)
    assert len({tuple(order) for order in samples.order}) > 1  # shuffled per round
    with pytest.raises(ValueError):
        paired.measure({"a": contender("a")}, min_rounds=0)


# -- the rule ----------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, needle", [
    (dict(rounds=2, rel_spread=0.01), "only 2 round"),
    (dict(rounds=9, rel_spread=0.5), "times spread 50%"),
    (dict(rounds=9, rel_spread=0.01, ratio=1.0, lo=0.7, hi=1.3), "60% wide"),
    (dict(rounds=9, rel_spread=0.01, oversubscribed="oversubscribed: x"), "oversubscribed"),
    (dict(rounds=9, rel_spread=0.01, steal_pct=30.0), "steal 30%"),
])
def test_each_part_of_the_rule_flags_with_its_reason(kwargs, needle):
    stable, reason = stability.verdict(**kwargs)
    assert not stable and needle in reason
    assert stability.verdict(rounds=9, rel_spread=0.05, ratio=1.3, lo=1.25, hi=1.35) == (True, "")


def test_oversubscription_counts_what_others_wanted_not_only_what_they_got():
    def at(wall, busy, own, others):
        return machine_state.Sample(wall=wall, own_cpu_s=own, busy_ticks=busy, steal_ticks=0, total_ticks=200 * wall,
                                    procs_running=others + 1, others_running=others, load1=2.0, cpu_mhz=None)

    hz = os.sysconf("SC_CLK_TCK")
    # 1 s; the machine was busy 2 core-seconds, 1 of them ours; 2 other tasks runnable throughout
    window = machine_state.between(at(0.0, 0, 0.0, 2), at(1.0, 2 * hz, 1.0, 2))
    assert window.consumed_cores == pytest.approx(1.0) and window.busy_cores == pytest.approx(2.0)
    assert "oversubscribed" in machine_state.oversubscription(window, threads=1, cores=2)
    quiet = machine_state.between(at(0.0, 0, 0.0, 0), at(1.0, hz, 1.0, 0))
    assert machine_state.oversubscription(quiet, threads=2, cores=2) is None
    assert machine_state.free_cores(window, cores=2) == 1 and machine_state.free_cores(quiet, cores=2) == 2
    threads, note = machine_state.choose_threads(None, cores=2, window=window)
    assert threads == 1 and "1 free core" in note
    threads, note = machine_state.choose_threads(2, cores=2, window=window)
    assert threads == 2 and note.startswith("warning: --threads 2 oversubscribes")


@pytest.mark.skipif(not HAS_PROC, reason="needs Linux /proc")
def test_a_real_sample_reads_the_machine():
    window = machine_state.measure_window(0.1, samples=2)
    assert window.busy_cores >= 0 and window.procs_running >= 1 and window.steal_pct >= 0
    assert machine_state.describe(window)


# -- end to end: flags, never speeds -----------------------------------------------------
def test_a_twin_is_not_reported_as_different():
    # A 95% interval excludes the truth 5% of the time: an A/A run may fail by chance (about 1 in 10
    # with two stable layers), but not twice in a row unless the timer is biased; a real bias fails both.
    for attempt, seed in enumerate((0, 1)):
        result = timing_selftest.run_selftest("im2col", layers=2, budget_s=0.02, min_rounds=6, settle_s=0.002,
                                              seed=seed)
        assert len(result["layers"]) == 2
        for row in result["layers"]:
            if row["stable"]:
                assert 0.8 < row["ratio"] < 1.25, row  # the twin's point estimate is never far from 1
        if result["verdict"] in ("passed", "inconclusive"):
            break
    assert result["verdict"] in ("passed", "inconclusive"), result["layers"]
    assert "im2col_twin" not in [b.name for b in harness.backends()]  # the twin is gone again


def test_random_delays_come_out_unstable():
    im2col = get_backend("im2col").ops["conv2d"]
    draw = random.Random(7)

    def jittery(x, w, b, spec):
        if draw.random() < 0.5:
            time.sleep(0.002)
        return im2col(x, w, b, spec)

    register_backend("jittery", conv2d=jittery, replace=True)
    try:
        results = bench.run(smoke_cases(), ["jittery"], baseline="im2col", **TINY)
    finally:
        unregister_backend("jittery")
    flags = stability.timed_flags(results).set_index("backend")
    assert not flags.loc["jittery", "stable"]
    assert "spread" in flags.loc["jittery", "unstable_reason"] or "wide" in flags.loc["jittery", "unstable_reason"]
    assert {"ratio_lo", "ratio_hi", "rel_spread", "rounds", "busy_cores"} <= set(results.metric)


@pytest.mark.skipif(not HAS_PROC, reason="busy cores are read from Linux /proc")
def test_a_busy_machine_is_flagged_not_ranked(twin, busy_cores, capsys):
    results = bench.run(smoke_cases(), [twin], baseline="im2col", **TINY)
    flags = stability.timed_flags(results)
    assert len(flags) == 2 and not flags.stable.any()
    assert flags.unstable_reason.str.contains("oversubscribed").all()
    assert list(winners(results).fastest) == ["not ranked"]
    lines = stability.warning_lines(results)
    assert len(lines) == 1 and lines[0].startswith("warning: smoke.conv3x3 ") and "oversubscribed" in lines[0]
    geomean = [line for line in results_table(results).splitlines() if "geomean" in line]
    assert geomean and "x [" not in geomean[0]  # no stable row to average: no ratio on the geomean line


def test_until_stable_re_measures_within_its_bound(monkeypatch):
    passes = []
    real = bench._measure_layer

    def counting(*args):
        passes.append(1)
        return real(*args)

    monkeypatch.setattr(bench, "_measure_layer", counting)
    with timing.pinned_threads(1):  # torch and numba imported before the clock starts
        pass
    started = time.monotonic()
    results = bench.run(smoke_cases(), ["im2col"], baseline="im2col", until_stable_s=0.5, max_rounds=2,
                        **dict(TINY, min_runs=2))  # 2 rounds (< MIN_ROUNDS): always unstable, so it retries until the bound
    assert len(passes) >= 2 and time.monotonic() - started < 5
    assert not stability.timed_flags(results).stable.any()


def test_selftest_command_stores_its_result_and_env_shows_it(tmp_path, monkeypatch, capsys):
    from harness.cli import main
    from harness.cli.commands import env as env_command

    out = tmp_path / "selftest-timing.json"
    code = main(["selftest-timing", "--layers", "1", "--budget", "0.01", "--out", str(out)])
    assert code in (0, 1)  # 1 only if a stable twin interval excluded 1.0: the timer's own error, reported
    stored = json.loads(out.read_text())
    assert stored["backend"] == "im2col" and len(stored["layers"]) == 1
    assert "verdict:" in capsys.readouterr().out
    monkeypatch.setattr(env_command, "record", lambda *a, **k: {"fingerprint": {}})
    monkeypatch.setattr(env_command, "summary_lines", lambda machine: ["CPU  fake"])
    assert main(["env", "--out", str(tmp_path / "machine.json")]) == 0
    assert f"A/A self-test {stored['verdict']}" in capsys.readouterr().out
    assert main(["selftest-timing", "--backend", "nope", "--out", str(out)]) == 2
    assert "nope" in capsys.readouterr().err


def test_slow_calls_settle_by_sleeping_after_the_first_round(monkeypatch):
    monkeypatch.setattr(paired, "SLOW_CALL_S", 0.0)  # every call counts as slow
    calls = []
    contender = paired.Contender(lambda: calls.append(1), (), lambda: None, 0.0)
    samples = paired.measure({"a": contender}, budget_s=0.0, min_rounds=4, settle_s=0.0)
    assert samples.rounds == 4 and len(calls) == 1 + 4  # one settling call in round 1, then only timed ones

