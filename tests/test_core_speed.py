"""The core-speed probe (harness.support.core_speed) and the waits on this process's own threads
(harness.support.machine_state.wait_for_own_threads, timing.let_pools_sleep): contention that
load and steal do not show, found and named, never mistaken for our own spinning pools."""

import os

import pytest

from harness.bench import stability
from harness.support import core_speed, machine_state, timing

LINUX_AFFINITY = hasattr(os, "sched_getaffinity") and hasattr(os, "sched_setaffinity")


@pytest.fixture(autouse=True)
def fresh_reference():
    core_speed.forget()
    yield
    core_speed.forget()


def test_speeds_are_relative_to_the_fastest_time_seen_per_cpu(monkeypatch):
    times = iter([{0: 1e-3, 1: 1e-3}, {0: 1e-3, 1: 1.6e-3}, {0: 0.8e-3, 1: 1e-3}])
    monkeypatch.setattr(core_speed, "probe", lambda cpus=None: next(times))
    assert core_speed.speeds() == {0: 1.0, 1: 1.0}
    second = core_speed.speeds()
    assert second[0] == 1.0 and second[1] == pytest.approx(1 / 1.6)
    third = core_speed.speeds()  # CPU 0 ran faster than ever: its reference moves, the speed is 1
    assert third == {0: 1.0, 1: 1.0}
    assert core_speed._FASTEST == {0: 0.8e-3, 1: 1e-3}


def test_contention_names_the_slow_cpus_and_ignores_small_differences():
    assert core_speed.contention({0: 1.0, 1: 0.9}, threads=2) is None  # within CONTENDED_BELOW (85%)
    assert core_speed.contention([{0: 1.0, 1: 1.0}, None, {}], threads=2) is None  # unmeasured probes say nothing
    reason = core_speed.contention([{0: 1.0, 1: 0.95}, {0: 0.97, 1: 0.58}], threads=2)
    assert reason.startswith("contended cores: CPU 1 at 58%") and "CPU 0" not in reason
    assert core_speed.contention({0: 0.6}, below=0.5, threads=1) is None


def test_a_probe_does_not_measure_while_our_own_threads_run(monkeypatch):
    monkeypatch.setattr(core_speed, "wait_for_own_threads", lambda limit_s: False)
    assert core_speed.probe() in (None, {})  # {} where affinity cannot be set at all
    assert core_speed.contention(core_speed.speeds(), threads=1) is None


@pytest.mark.skipif(not LINUX_AFFINITY, reason="pins threads with sched_setaffinity")
def test_a_real_probe_times_every_usable_cpu_and_restores_the_affinity():
    mask = os.sched_getaffinity(0)
    times = core_speed.probe(reps=1)
    assert os.sched_getaffinity(0) == mask
    if times is None:  # another thread of the test process kept running: nothing to check
        pytest.skip("this process's own threads kept running")
    assert set(times) == mask and all(0 < t < 1 for t in times.values())
    speeds = core_speed.speeds()
    assert speeds is None or all(0 < s <= 1 for s in speeds.values())


def test_waiting_for_own_threads_needs_two_idle_reads_and_gives_up_at_its_limit(monkeypatch):
    reads = iter([3, 1, 2, 1, 1, 3])
    monkeypatch.setattr(machine_state, "own_running_threads", lambda: next(reads))
    assert machine_state.wait_for_own_threads(1.0, poll_s=0) is True
    assert next(reads) == 3  # it stopped at the second idle read in a row
    monkeypatch.setattr(machine_state, "own_running_threads", lambda: 2)  # a pool that never sleeps
    assert machine_state.wait_for_own_threads(0.01, poll_s=0.001) is False
    monkeypatch.setattr(machine_state, "own_running_threads", lambda: None)  # no /proc: nothing to wait for
    assert machine_state.wait_for_own_threads(10.0) is True


def test_letting_pools_sleep_waits_on_our_threads_and_sleeps_in_full_without_proc(monkeypatch):
    waited, slept = [], []
    monkeypatch.setattr(timing, "wait_for_own_threads", lambda seconds: waited.append(seconds) or True)
    monkeypatch.setattr(timing.time, "sleep", slept.append)
    monkeypatch.setattr(timing, "own_running_threads", lambda: 1)
    timing.let_pools_sleep(0.15)
    assert waited == [0.15] and slept == []
    monkeypatch.setattr(timing, "own_running_threads", lambda: None)
    timing.let_pools_sleep(0.15)
    assert slept == [0.15]


def test_a_layer_timed_on_a_contended_core_is_unstable_with_the_reason():
    reason = core_speed.contention({0: 0.55, 1: 1.0}, threads=2)
    stable, why = stability.verdict(rounds=9, rel_spread=0.01, ratio=1.0, lo=0.98, hi=1.02, contended=reason)
    assert not stable and "CPU 0 at 55%" in why


def test_a_survey_gives_each_cpus_share_of_contended_probes_and_a_note(monkeypatch):
    seen = iter([{0: 1.0, 1: 0.5}, {0: 1.0, 1: 1.0}, None, {0: 0.99, 1: 0.6}, {0: 1.0, 1: 1.0}])
    monkeypatch.setattr(core_speed, "speeds", lambda: next(seen))
    monkeypatch.setattr(core_speed.time, "sleep", lambda s: None)
    shares = core_speed.survey(seconds=0.5, probes=5)
    assert shares == {0: 0.0, 1: 0.5}  # 2 of the 4 probes that measured
    note = core_speed.survey_note(shares)
    assert note.startswith("note: contended cores (CPU 1 in 50% of probes)") and "CPU 0" not in note
    assert core_speed.survey_note({0: 0.0, 1: 0.0}) is None and core_speed.survey_note({}) is None


def test_a_probe_counts_cycles_where_the_clock_is_exposed_so_a_slower_clock_is_not_contention(monkeypatch):
    if not LINUX_AFFINITY:
        pytest.skip("pins threads with sched_setaffinity")
    clocks = iter([3.0e6, 1.5e6])  # kHz: the second probe runs at half the clock
    monkeypatch.setattr(core_speed, "_current_khz", lambda cpu: next(clocks))
    monkeypatch.setattr(core_speed, "wait_for_own_threads", lambda limit_s: True)
    cpu = min(os.sched_getaffinity(0))
    fast = core_speed.probe([cpu], reps=3)
    slow = core_speed.probe([cpu], reps=3)
    # the loop's time is about the same (or doubles on a real slower clock); the cycles follow the clock
    ratio = slow[cpu] / fast[cpu]
    assert 0.2 < ratio < 1.0


def test_fewer_threads_than_cpus_are_hurt_only_when_too_few_cpus_ran_free():
    one_slow = [{0: 1.0, 1: 0.5, 2: 1.0}, {0: 1.0, 1: 1.0, 2: 1.0}]
    assert core_speed.contention(one_slow, threads=2) is None  # two CPUs stayed free for two threads
    assert "CPU 1 at 50%" in core_speed.contention(one_slow, threads=3)
    two_slow = [{0: 0.6, 1: 0.5, 2: 1.0}]
    assert core_speed.contention(two_slow, threads=1) is None
    assert core_speed.contention(two_slow, threads=2).startswith("contended cores: CPU 0 at 60%, CPU 1 at 50%")


def test_a_large_machine_probes_only_the_cpus_our_threads_ran_on(monkeypatch):
    monkeypatch.setattr(core_speed, "usable_cpus", lambda: list(range(64)))
    monkeypatch.setattr(core_speed, "_cpus_of_own_threads", lambda: [5, 3, 5, 70])  # 70: not usable now
    assert core_speed.cpus_to_probe() == [3, 5]
    monkeypatch.setattr(core_speed, "_cpus_of_own_threads", lambda: [])
    assert core_speed.cpus_to_probe() == list(range(core_speed.PROBE_MOST))
    monkeypatch.setattr(core_speed, "usable_cpus", lambda: [0, 1])
    assert core_speed.cpus_to_probe() == [0, 1]


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="reads /proc")
def test_the_cpus_our_threads_ran_on_are_read_from_proc():
    cpus = core_speed._cpus_of_own_threads()
    assert cpus and all(0 <= c < (os.cpu_count() or 1024) for c in cpus)


def test_a_watch_calls_a_stretch_free_only_without_contended_cores_or_other_processes(monkeypatch):
    speeds = iter([{0: 1.0, 1: 1.0}, {0: 1.0, 1: 1.0}, {0: 1.0, 1: 0.5}, {0: 1.0, 1: 1.0}, {0: 1.0, 1: 1.0},
                   {0: 1.0, 1: 1.0}])
    crowded = iter([None, None, "oversubscribed: other processes wanted 1.9 of 2 cores"])  # read where cores ran free
    monkeypatch.setattr(core_speed, "speeds", lambda: next(speeds))
    monkeypatch.setattr(core_speed.machine_state, "oversubscription", lambda window, threads: next(crowded))
    watch = core_speed.FreeWatch(threads=2)
    watch.start()
    assert watch.reason() is None
    watch.probe()  # CPU 1 slow inside the second stretch: it is not free
    assert "CPU 1 at 50%" in watch.reason()
    assert watch.reason() is None  # the slow probe belongs to the second stretch only
    assert watch.reason().startswith("oversubscribed")
    assert core_speed.FreeWatch(enabled=False).reason() is None
