"""How busy the machine is right now: load, steal, runnable processes, CPU frequency, and
how many cores other processes keep busy.

:mod:`harness.support.machine` records what the machine *is* (model, BLAS, peak); this module samples
what it is *doing* while a benchmark runs, so that a timing taken while other work competed
for the cores can be flagged instead of trusted.

"Busy cores" of other processes are estimated two ways, and the larger is used:

* **consumed**: from ``/proc/stat``, the machine's non-idle CPU time over a window minus this
  process's own CPU time (``time.process_time``: every thread of ours, spinning OpenMP/BLAS
  pools included), divided by the window's length: ``1.8`` means other work got 1.8 cores on
  average. On a saturated machine this is what others *got*, not what they wanted: two
  busy loops beside our one thread on two cores get about 1.3 cores, not 2;
* **runnable**: ``procs_running`` (tasks runnable now, machine-wide) minus our own threads in
  state ``R`` (``/proc/self/task/*/stat``), sampled at the window's ends and between rounds:
  tasks that wanted a core at that instant, whether or not they got one.

Where ``/proc`` does not exist (macOS, Windows) the figures are ``None`` and oversubscription
cannot be detected; the stability rule then rests on the measured dispersion alone.
"""

from __future__ import annotations

import glob
import math
import os
import time
from dataclasses import asdict, dataclass

PROC_STAT = "/proc/stat"
#: A window shorter than this says too little about other processes (``/proc/stat`` counts
#: CPU time in clock ticks of 10 ms).
MIN_WINDOW_S = 0.05
#: Busy cores of others are tolerated up to this fraction of a core before the machine counts
#: as oversubscribed: daemons, the terminal and this process's parent take a few percent.
BUSY_SLACK_CORES = 0.5


@dataclass(frozen=True)
class Sample:
    """The machine at one instant (fields are None where the OS does not expose them)."""

    wall: float                 # time.monotonic()
    own_cpu_s: float            # this process's CPU time, all threads
    busy_ticks: int | None      # machine-wide non-idle CPU time, in clock ticks
    steal_ticks: int | None
    total_ticks: int | None
    procs_running: int | None   # runnable tasks now (ours included)
    others_running: int | None  # procs_running minus our own threads in state R
    load1: float | None         # 1-minute load average
    cpu_mhz: float | None       # mean current frequency over the CPUs that report one

    def as_dict(self) -> dict:
        return asdict(self)


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def sample(frequency: bool = True) -> Sample:
    """Read the machine's state now (cheap: a few small files under /proc and /sys).

    ``frequency=False`` skips the CPU frequency (reading ``/proc/cpuinfo`` takes longest), for
    samples taken between timing rounds."""
    busy = steal = total = running = None
    try:
        with open(PROC_STAT) as handle:
            for line in handle:
                if line.startswith("cpu "):
                    # user nice system idle iowait irq softirq steal guest guest_nice
                    ticks = [int(v) for v in line.split()[1:]]
                    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
                    total = sum(ticks[:8])  # guest time is already inside user/nice
                    steal = ticks[7] if len(ticks) > 7 else 0
                    busy = total - idle - steal  # stolen ticks ran someone else's VM
                elif line.startswith("procs_running"):
                    running = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        busy = steal = total = running = None
    mine = own_running_threads()
    others = None if running is None or mine is None else max(0, running - mine)
    try:
        load1 = os.getloadavg()[0]
    except (OSError, AttributeError):
        load1 = None
    return Sample(wall=time.monotonic(), own_cpu_s=time.process_time(), busy_ticks=busy, steal_ticks=steal,
                  total_ticks=total, procs_running=running, others_running=others, load1=load1,
                  cpu_mhz=cpu_mhz() if frequency else None)


def own_thread_stats() -> list[list[str]] | None:
    """Each thread of this process's ``/proc/self/task/*/stat`` fields from the state on (field 3, so
    index ``k`` is field ``k + 3``); None without /proc. Threads that end meanwhile are left out."""
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return None
    out = []
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/stat") as handle:
                # "pid (comm) S ...": the name may hold spaces or parentheses, the state follows the last ')'
                out.append(handle.read().rsplit(")", 1)[1].split())
        except (OSError, IndexError):
            pass  # a thread that ended meanwhile
    return out


def own_running_threads() -> int | None:
    """Threads of this process in state R (running or runnable) now; None without /proc."""
    stats = own_thread_stats()
    return None if stats is None else sum(1 for fields in stats if fields and fields[0] == "R")


def wait_for_own_threads(limit_s: float, poll_s: float = 0.002) -> bool:
    """Wait until no thread of this process but the caller is running (two reads in a row), at most
    ``limit_s``; True when they went idle (or this cannot be read: no /proc).

    A library's thread pool spins after its call before it sleeps (OpenBLAS about 0.1 s, numba's
    and torch's OpenMP pools about 5 ms, measured on 2 threads, 2026-12-03); spinning threads are
    runnable (state R), sleeping ones are not."""
    deadline = time.monotonic() + limit_s
    idle_reads = 0
    while True:
        running = own_running_threads()
        if running is None:
            return True
        idle_reads = idle_reads + 1 if running <= 1 else 0
        if idle_reads >= 2:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)


def cpu_mhz() -> float | None:
    """Mean current CPU frequency in MHz: cpufreq in /sys, else /proc/cpuinfo; None if neither."""
    values = []
    for path in glob.glob("/sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_cur_freq"):
        try:
            with open(path) as handle:
                values.append(int(handle.read()) / 1000.0)  # kHz
        except (OSError, ValueError):
            pass
    if not values:
        try:
            with open("/proc/cpuinfo") as handle:
                values = [float(line.split(":")[1]) for line in handle if line.startswith("cpu MHz")]
        except (OSError, ValueError, IndexError):
            values = []
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class Window:
    """The machine between two samples: what ran beside us, and what the OS reported."""

    seconds: float
    busy_cores: float | None    # cores other processes wanted: max(consumed, runnable) (module doc)
    consumed_cores: float | None
    runnable_others: float | None
    steal_pct: float | None     # % of CPU time the hypervisor gave to other guests
    procs_running: int | None   # the largest runnable count sampled
    load1: float | None         # the larger of the two 1-minute load averages
    cpu_mhz_before: float | None
    cpu_mhz_after: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def between(before: Sample, after: Sample, during=()) -> Window:
    """Summarise the interval from ``before`` to ``after`` (``during``: samples taken in between)."""
    seconds = after.wall - before.wall
    busy = steal = None
    if before.busy_ticks is not None and after.busy_ticks is not None and seconds >= MIN_WINDOW_S:
        hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        machine_busy_s = (after.busy_ticks - before.busy_ticks) / hz
        own_s = after.own_cpu_s - before.own_cpu_s
        busy = max(0.0, (machine_busy_s - own_s) / seconds)
        ticks = after.total_ticks - before.total_ticks
        steal = 100.0 * (after.steal_ticks - before.steal_ticks) / ticks if ticks > 0 else 0.0
    counts = [s.others_running for s in (before, *during, after) if s.others_running is not None]
    runnable = sum(counts) / len(counts) if counts else None
    demand = None if busy is None and runnable is None else max(busy or 0.0, runnable or 0.0)
    running = [s.procs_running for s in (before, *during, after) if s.procs_running is not None]
    return Window(seconds=seconds, busy_cores=demand, consumed_cores=busy, runnable_others=runnable,
                  steal_pct=steal, procs_running=max(running) if running else None,
                  load1=_larger(before.load1, after.load1),
                  cpu_mhz_before=before.cpu_mhz, cpu_mhz_after=after.cpu_mhz)


def _larger(a, b):
    if a is None or b is None:
        return b if a is None else a
    return max(a, b)


def oversubscription(window: Window, threads: int, cores: int | None = None) -> str | None:
    """None when ``threads`` fitted beside the other work seen in ``window``, else why not.

    Oversubscribed: busy cores of others + our threads > usable cores (+ a slack of
    :data:`BUSY_SLACK_CORES` for background noise). Unknown busy cores (no /proc/stat) is not
    reported as oversubscription.
    """
    cores = usable_cores() if cores is None else cores
    if window.busy_cores is None:
        return None
    if window.busy_cores + threads > cores + BUSY_SLACK_CORES:
        return (f"oversubscribed: other processes wanted {window.busy_cores:.1f} of {cores} cores "
                f"beside our {threads} thread(s)")
    return None


def measure_window(seconds: float = 0.25, samples: int = 5) -> Window:
    """Sleep ``seconds`` (sampling runnable tasks ``samples`` times meanwhile) and return what
    the machine did (our process idle)."""
    before = sample()
    during = []
    for _ in range(samples):
        time.sleep(max(seconds, MIN_WINDOW_S) / (samples + 1))
        during.append(sample(frequency=False))
    time.sleep(max(seconds, MIN_WINDOW_S) / (samples + 1))
    return between(before, sample(), during)


def free_cores(window: Window | None = None, cores: int | None = None) -> int:
    """Usable cores not kept busy by other processes (rounded to nearest), at least 1."""
    cores = usable_cores() if cores is None else cores
    window = measure_window() if window is None else window
    if window.busy_cores is None:
        return cores
    return max(1, min(cores, int(math.floor(cores - window.busy_cores + 0.5))))


def choose_threads(requested: int | None, cores: int | None = None,
                   window: Window | None = None) -> tuple[int, str | None]:
    """The thread count to benchmark with, and a line to print about the choice (or None).

    With ``requested`` None: the cores that are free now (at least 1), saying so when that is
    fewer than the usable cores. An explicit count always wins; the line is then a
    ``warning:`` when it oversubscribes the machine as it is now.
    """
    cores = usable_cores() if cores is None else cores
    window = measure_window() if window is None else window
    if requested is None:
        free = free_cores(window, cores)
        if free < cores:
            return free, (f"note: other processes want {window.busy_cores:.1f} of {cores} cores; "
                          f"timing with the {free} free core(s) (--threads N to choose)")
        return free, None
    reason = oversubscription(window, requested, cores)
    if reason is not None:
        return requested, (f"warning: --threads {requested} oversubscribes the machine: other processes want "
                           f"{window.busy_cores:.1f} of {cores} cores; timings taken so will be flagged unstable")
    return requested, None


def describe(window: Window) -> str:
    """One line for a terminal: the fields the OS exposed."""
    parts = []
    if window.busy_cores is not None:
        parts.append(f"others busy {window.busy_cores:.1f} cores")
    if window.steal_pct is not None:
        parts.append(f"steal {window.steal_pct:.1f}%")
    if window.load1 is not None:
        parts.append(f"load {window.load1:.2f}")
    if window.procs_running is not None:
        parts.append(f"runnable {window.procs_running}")
    if window.cpu_mhz_after is not None:
        parts.append(f"{window.cpu_mhz_after:.0f} MHz")
    return ", ".join(parts) or "machine state not exposed by this OS"
