"""How fast each CPU runs now, against the fastest it has run in this process: the contention
that ``/proc`` does not show.

On a shared virtual machine a vCPU shares its physical core with a sibling hyperthread that
another guest may be using, and the host may run other work on it. Load average, runnable
tasks and steal time then all read zero (:mod:`harness.support.machine_state` sees nothing), yet
every instruction on that vCPU takes longer. Measured on this project's 2-core AMD EPYC VM
(Zen 4, 2026-12-03, nothing else running in the VM, load 0.00): a fixed pure-compute loop pinned
to one vCPU took 0.73 ms when free and 1.10-1.32 ms (1.5-1.8x) when contended; each vCPU was
contended in about a third of 0.1 s samples over 30 s, in windows from 0.1 s to 20 s; a 2-thread
winograd layer (ResNet-50 res2 3x3) took 0.72 ms in free windows and 1.20 ms in a contended one
that lasted 18 s. Backends suffer unequally (a parallel loop with static chunks waits for the
slow vCPU, one that balances work does not), so a ranking taken in such a window can be wrong.

:func:`probe` times a short fixed loop pinned to each usable CPU in turn (on a machine with more
than :data:`PROBE_MOST`, the ones this process's threads last ran on), after waiting for this
process's own threads to stop running (a thread pool still spinning after a call would otherwise
be taken for contention); :func:`speeds` turns that into each CPU's speed relative to its fastest
time seen so far in the process, and :func:`contention` says which CPUs run below
:data:`CONTENDED_BELOW` of it. A process that starts inside a contended window learns its
reference only when a CPU first runs free: until then contention is under-reported, never
over-reported.
"""

from __future__ import annotations

import os
import threading
import time

from harness.support import machine_state
from harness.support.machine_state import wait_for_own_threads
from harness.support.timing import threads_set

#: A CPU running slower than this fraction of its fastest seen speed counts as contended. The loop's
#: own spread is about 1% run to run; contended vCPUs ran at 55-66% on the project machine.
CONTENDED_BELOW = 0.85
#: Iterations of the probe's loop (about 0.2 ms on a 2026 x86 core) and best-of repetitions per CPU.
PROBE_LOOP = 5000
PROBE_REPS = 3
#: How long a probe waits for this process's other threads (spinning pools) to stop running.
OWN_IDLE_WAIT_S = 0.2

_FASTEST: dict[int, float] = {}
_LOCK = threading.Lock()


def _loop(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def usable_cpus() -> list[int]:
    """The CPUs this thread may run on (empty where affinity cannot be read or set: not Linux)."""
    if not hasattr(os, "sched_getaffinity") or not hasattr(os, "sched_setaffinity"):
        return []
    return sorted(os.sched_getaffinity(0))


#: On a machine with more usable CPUs than this, a probe times only the CPUs this process's threads
#: last ran on (at most this many): each CPU costs about 0.6 ms, 40 ms on 64 CPUs.
PROBE_MOST = 16


def cpus_to_probe() -> list[int]:
    """The usable CPUs, or on a machine with more than :data:`PROBE_MOST`, those this process's
    threads last ran on (``/proc/self/task/*/stat``), at most that many."""
    cpus = usable_cpus()
    if len(cpus) <= PROBE_MOST:
        return cpus
    ours = sorted(set(_cpus_of_own_threads()) & set(cpus))
    return (ours or cpus)[:PROBE_MOST]


def _cpus_of_own_threads() -> list[int]:
    """The CPU each thread of this process last ran on (field 39 of its stat); empty without /proc."""
    return [int(fields[36]) for fields in machine_state.own_thread_stats() or []
            if len(fields) > 36 and fields[36].isdigit()]


def probe(cpus=None, loop: int = PROBE_LOOP, reps: int = PROBE_REPS) -> dict[int, float] | None:
    """Seconds for the probe loop on each CPU (best of ``reps``), the calling thread pinned to each
    in turn and its affinity restored; ``{}`` where affinity is unavailable, None when this process's
    own threads kept running (the figures would measure them, not the machine).

    Where cpufreq gives the CPU's current clock, the figure is the seconds times that clock (in GHz):
    cycles, so that a core clocked down (turbo ending, a laptop on battery) does not read as
    contended, while one sharing its cycles with another guest still does."""
    cpus = cpus_to_probe() if cpus is None else list(cpus)
    if not cpus:
        return {}
    if not wait_for_own_threads(OWN_IDLE_WAIT_S):
        return None
    mask = os.sched_getaffinity(0)
    out = {}
    try:
        for cpu in cpus:
            os.sched_setaffinity(0, {cpu})
            _loop(loop // 4)  # the move to the CPU and a warm interpreter, not timed
            best = float("inf")
            for _ in range(reps):
                start = time.perf_counter()
                _loop(loop)
                best = min(best, time.perf_counter() - start)
            khz = _current_khz(cpu)
            out[cpu] = best if khz is None else best * khz / 1e6  # GHz x s: cycles, whatever the clock did
    finally:
        os.sched_setaffinity(0, mask)
    return out


def _current_khz(cpu: int) -> float | None:
    """The CPU's current clock from cpufreq (kHz), None where the OS does not expose it (most VMs)."""
    try:
        with open(f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_cur_freq") as handle:
            return float(handle.read())
    except (OSError, ValueError):
        return None


def speeds(cpus=None) -> dict[int, float] | None:
    """Each CPU's speed now as a fraction of its fastest in this process (1.0: as fast as ever);
    ``{}`` where it cannot be measured, None when this process's own threads kept running."""
    with _LOCK:
        times = probe(cpus)
        if not times:
            return times
        for cpu, t in times.items():
            _FASTEST[cpu] = min(t, _FASTEST.get(cpu, t))
        return {cpu: _FASTEST[cpu] / t for cpu, t in times.items()}


def contention(measured, below: float = CONTENDED_BELOW, threads: int | None = None) -> str | None:
    """Why the CPUs count as contended in ``measured`` (one :func:`speeds` result or several), or None.

    A timing with ``threads`` threads (default: the count :func:`harness.support.timing.set_threads`
    put in force, else every CPU) is hurt only when fewer than ``threads`` CPUs ran free throughout:
    one thread on a 2-CPU machine runs on whichever CPU is free."""
    if isinstance(measured, dict) or measured is None:
        measured = [measured]
    slowest: dict[int, float] = {}
    for one in measured:
        for cpu, speed in (one or {}).items():
            slowest[cpu] = min(speed, slowest.get(cpu, speed))
    slow = {cpu: s for cpu, s in slowest.items() if s < below}
    if not slow:
        return None
    threads = threads_set() if threads is None else threads
    if threads is not None and len(slowest) - len(slow) >= threads:
        return None
    listed = ", ".join(f"CPU {cpu} at {100 * s:.0f}%" for cpu, s in sorted(slow.items()))
    return (f"contended cores: {listed} of their fastest speed in this process "
            f"(another guest or the host on the same core; load and steal do not show it)")


def forget() -> None:
    """Drop the fastest times seen (tests; a process that moved to other hardware)."""
    with _LOCK:
        _FASTEST.clear()


def survey(seconds: float = 0.5, probes: int = 5) -> dict[int, float]:
    """The share of ``probes`` probes, spread over ``seconds``, in which each CPU ran contended
    (``{}`` where it cannot be measured): a look at the machine before timing on it."""
    counts: dict[int, int] = {}
    taken = 0
    for i in range(probes):
        if i:
            time.sleep(seconds / max(1, probes - 1))
        measured = speeds()
        if not measured:
            continue
        taken += 1
        for cpu, speed in measured.items():
            counts[cpu] = counts.get(cpu, 0) + (speed < CONTENDED_BELOW)
    return {cpu: n / taken for cpu, n in counts.items()} if taken else {}


def survey_note(shares: dict[int, float]) -> str | None:
    """A line for the terminal about a :func:`survey`, or None when no CPU was seen contended."""
    busy = {cpu: share for cpu, share in shares.items() if share > 0}
    if not busy:
        return None
    listed = ", ".join(f"CPU {cpu} in {100 * share:.0f}% of probes" for cpu, share in sorted(busy.items()))
    return (f"note: contended cores ({listed}): another guest or the host shares them, which load and steal "
            f"do not show; layers timed while a core is contended are flagged unstable")


class FreeWatch:
    """Whether the machine stayed free over a stretch of timing: no core contended at any probe
    (:func:`speeds`, taken at :meth:`start`, at each :meth:`probe` and at :meth:`reason`), and no
    other process wanting our cores over the whole stretch
    (:func:`harness.support.machine_state.oversubscription`, from the CPU accounting: a probe of a few
    ms can run between other processes' time slices and miss them).

    ``threads``: the thread count timed (default: the count ``set_threads`` put in force, else every
    usable CPU); ``enabled=False`` watches nothing (every stretch is free)."""

    def __init__(self, threads: int | None = None, enabled: bool = True):
        self.threads = threads
        self.enabled = enabled
        self._speeds: list = []
        self._state = None

    def start(self) -> None:
        """Begin a stretch: the first probe and machine sample."""
        if self.enabled:
            self._speeds = [speeds()]
            self._state = machine_state.sample(frequency=False)

    def probe(self) -> None:
        """A probe inside the stretch (between two candidates, after their pools went idle)."""
        if self.enabled:
            self._speeds.append(speeds())

    def reason(self) -> str | None:
        """End the stretch (and begin the next): why the machine was not free, or None."""
        if not self.enabled:
            return None
        self._speeds.append(speeds())
        state = machine_state.sample(frequency=False)
        threads = self.threads or threads_set() or machine_state.usable_cores()
        why = (contention(self._speeds, threads=threads)
               or machine_state.oversubscription(machine_state.between(self._state, state), threads))
        self._speeds, self._state = self._speeds[-1:], state
        return why
