"""What the machine can do: CPU, BLAS and its kernel, measured peak GFLOP/s and bandwidth.

The record is measured once and cached in ``reports/machine.json``; it is reused while its
``fingerprint`` (CPU, BLAS kernel, environment overrides, library versions, thread count)
still matches this process, and re-measured otherwise or on request. Benchmarks use it
for "% of peak": the roofline ``min(peak GFLOP/s, intensity * bandwidth)``.

A peak measured while other processes competed for the cores is too low (a record taken at
load 2-14 on this project's 2-core machine stored 50 instead of 288 GFLOP/s, and every "% of
peak" after it read 150-600%). So the measurement records whether the machine was busy
(:func:`harness.support.machine_state.oversubscription` over the measuring window), the
summary says so, and :func:`record` measures again as soon as the machine is quiet.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from harness.support import machine_state
from harness.support.results_io import REPORTS, write_atomic

DEFAULT_PATH = REPORTS / "machine.json"
#: Environment variables that make OpenBLAS run a kernel other than the one it would pick.
BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR")
_FLAG_PREFIXES = ("avx", "fma", "sse4", "amx", "f16c")
#: /proc/cpuinfo keys that identify the CPU design when the model name does not.
_ID_KEYS = ("cpu family", "model", "stepping", "cache size")


# -- static facts ------------------------------------------------------------------------
def cpu_info() -> dict:
    """CPU model, the SIMD flags that matter for conv kernels, and core/thread counts."""
    model, flags, physical = platform.processor() or platform.machine(), [], set()
    ident = {}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        core = {}
        for line in cpuinfo.read_text().splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            if key == "model name":
                model = value
            elif key in _ID_KEYS and key not in ident:
                ident[key] = value
            elif key == "flags" and not flags:
                flags = sorted(f for f in value.split() if f.startswith(_FLAG_PREFIXES))
            elif key in ("physical id", "core id"):
                core[key] = value
                if len(core) == 2:
                    physical.add((core["physical id"], core["core id"]))
                    core = {}
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "model": model,
        # a VM may name only the vendor ("AMD EPYC"): family/model/stepping and the per-core
        # cache tell a Zen 4 from a Zen 5, whose vector units differ by 2x
        "id": " ".join(f"{k.replace('cpu ', '')} {ident[k]}" for k in _ID_KEYS if k in ident) or None,
        "flags": flags,
        "logical_cpus": os.cpu_count(),
        "physical_cores": len(physical) or None,
        "usable_cpus": usable,
    }


def blas_info() -> list[dict]:
    """threadpoolctl's view of every BLAS loaded: library, version, kernel, threads."""
    from threadpoolctl import threadpool_info

    keep = ("user_api", "internal_api", "prefix", "version", "architecture", "threading_layer", "num_threads", "filepath")
    return [{k: p.get(k) for k in keep} for p in threadpool_info() if p.get("user_api") == "blas"]


def blas_warnings(blas: list[dict] | None = None) -> list[str]:
    """One line per environment variable that forces a BLAS kernel or blocking, with what
    this CPU would get without it (found by asking a clean subprocess)."""
    overrides = {k: os.environ[k] for k in BLAS_OVERRIDES if k in os.environ}
    if not overrides:
        return []
    blas = blas if blas is not None else blas_info()
    native = _native_blas()
    lines = []
    for key, value in overrides.items():
        if key == "OPENBLAS_CORETYPE":
            forced = ", ".join(sorted({b.get("architecture") or "?" for b in blas if b["internal_api"] == "openblas"}))
            would = ", ".join(sorted({b.get("architecture") or "?" for b in native if b["internal_api"] == "openblas"}))
            lines.append(
                f"WARNING: OPENBLAS_CORETYPE={value} forces OpenBLAS's {forced or value} kernel; "
                f"this CPU would get {would or 'unknown (probe failed)'} without it"
            )
        elif key == "OPENBLAS_L2_SIZE":
            lines.append(
                f"WARNING: OPENBLAS_L2_SIZE={value} overrides the L2 size OpenBLAS blocks GEMM for; "
                f"this CPU reports {_l2_size() or 'unknown'}"
            )
        else:
            lines.append(f"WARNING: {key}={value} is set and changes which BLAS code path runs")
    return lines


def _native_blas() -> list[dict]:
    """BLAS as a process without the override variables would load it."""
    env = {k: v for k, v in os.environ.items() if k not in BLAS_OVERRIDES}
    code = (
        "import json, numpy, threadpoolctl; "
        "print(json.dumps([{k: p.get(k) for k in ('internal_api', 'architecture', 'version')} "
        "for p in threadpoolctl.threadpool_info() if p.get('user_api') == 'blas']))"
    )
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
        return json.loads(out.stdout)
    except (OSError, ValueError, subprocess.SubprocessError):
        return []


def cache_bytes() -> dict[int, int]:
    """cpu0's cache sizes in bytes by level (Linux sysfs; level 1 the larger of data and
    instructions); ``{}`` where they cannot be read."""
    sizes: dict[int, int] = {}
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            level = int((index / "level").read_text())
            text = (index / "size").read_text().strip().upper()
        except (OSError, ValueError):
            continue
        digits = text.rstrip("KMG")
        if digits.isdigit():
            size = int(digits) * {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[len(digits):], 1)
            sizes[level] = max(sizes.get(level, 0), size)
    return sizes


def _l2_size() -> str | None:
    size = cache_bytes().get(2)
    return None if size is None else f"{size // 2**10}K"


def software_info() -> dict:
    """Library versions, torch's thread count and oneDNN status."""
    info = {"python": platform.python_version(), "numpy": np.__version__}
    for name in ("scipy", "numba", "threadpoolctl"):
        try:
            info[name] = __import__(name).__version__
        except ImportError:
            info[name] = None
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["torch_mkldnn_available"] = bool(torch.backends.mkldnn.is_available())
        info["torch_mkldnn_enabled"] = bool(torch.backends.mkldnn.enabled)
    except ImportError:
        info["torch"] = None
    return info


def gpu_info() -> list[dict]:
    """Visible GPUs (through torch, else numba.cuda); empty when there are none."""
    try:
        import torch

        if torch.cuda.is_available():
            return [
                {
                    "name": torch.cuda.get_device_name(i),
                    "memory_gib": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1),
                    "via": "torch",
                }
                for i in range(torch.cuda.device_count())
            ]
    except ImportError:
        pass
    try:
        from numba import cuda

        if cuda.is_available():
            return [{"name": str(d.name), "via": "numba.cuda"} for d in cuda.list_devices()]
    except Exception:  # numba.cuda raises various errors without a driver
        pass
    return []


# -- measurements ------------------------------------------------------------------------
def measure_gemm_gflops(dtype: str, sizes=(256, 512, 1024, 2048), budget_s: float = 1.0) -> dict:
    """Best GFLOP/s of ``numpy.matmul`` on square matrices (2*n^3 FLOPs per product)."""
    rng = np.random.default_rng(0)
    best, best_n = 0.0, None
    for n in sizes:
        a = rng.standard_normal((n, n)).astype(dtype)
        b = rng.standard_normal((n, n)).astype(dtype)
        c = np.empty((n, n), dtype)
        np.matmul(a, b, out=c)  # warm-up: thread pool start, page faults
        deadline = time.perf_counter() + budget_s / len(sizes)
        for _ in range(50):
            start = time.perf_counter()
            np.matmul(a, b, out=c)
            elapsed = time.perf_counter() - start
            if 2 * n**3 / elapsed / 1e9 > best:
                best, best_n = 2 * n**3 / elapsed / 1e9, n
            if time.perf_counter() > deadline:
                break
    return {"gflops": best, "n": best_n}


def measure_bandwidth_gbs(mebibytes: int = 256, repeats: int = 5) -> dict:
    """Best memory bandwidth of a large array copy (bytes read + bytes written per second).

    The arrays are far larger than any cache, so this is DRAM bandwidth as numpy sees it.
    """
    n = mebibytes * 2**20 // 8
    src = np.ones(n)
    dst = np.empty(n)
    np.copyto(dst, src)  # touch every page first
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(dst, src)
        elapsed = time.perf_counter() - start
        best = max(best, 2 * src.nbytes / elapsed / 1e9)
    return {"gbs": best, "mib": mebibytes}


# -- the record --------------------------------------------------------------------------
def fingerprint() -> dict:
    """What must not change for a cached measurement to still hold."""
    blas, cpu = blas_info(), cpu_info()
    return {
        "cpu": cpu["model"],
        "cpu_id": cpu["id"],
        "usable_cpus": cpu["usable_cpus"],
        "blas": [(b["internal_api"], b["version"], b["architecture"], b["num_threads"]) for b in blas],
        "env": {k: os.environ[k] for k in BLAS_OVERRIDES if k in os.environ},
        "numpy": np.__version__,
    }


def measure() -> dict:
    """Measure the machine now (a few seconds)."""
    blas = blas_info()
    return {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "fingerprint": fingerprint(),
        "cpu": cpu_info(),
        "blas": blas,
        "blas_warnings": blas_warnings(blas),
        "software": software_info(),
        "gpus": gpu_info(),
        "peak": measure_peaks(max((b["num_threads"] for b in blas), default=1)),
        "bandwidth": measure_bandwidth_gbs(),
    }


def measure_peaks(threads: int) -> dict:
    """SGEMM and DGEMM peaks at ``threads`` BLAS threads, and ``busy``: None when no other
    process competed for the cores meanwhile, else why the figures are too low."""
    before = machine_state.sample()
    sgemm, dgemm = measure_gemm_gflops("float32"), measure_gemm_gflops("float64")
    window = machine_state.between(before, machine_state.sample())
    busy = machine_state.oversubscription(window, threads)
    return {"sgemm": sgemm, "dgemm": dgemm, "threads": threads, "busy": busy}


def peak_is_trusted(machine: dict) -> bool:
    """False when the record's peak was measured on a busy machine, or by a version that did
    not check (no ``busy`` entry)."""
    peak = machine.get("peak") or {}
    return "busy" in peak and peak["busy"] is None


def record(path=DEFAULT_PATH, remeasure: bool = False) -> dict:
    """The machine record: the cached one if it matches this machine, else measured and cached."""
    path = Path(path)
    if not remeasure and path.is_file():
        try:
            cached = json.loads(path.read_text())
            if isinstance(cached, dict) and cached.get("fingerprint") == json.loads(json.dumps(fingerprint())):
                if peak_is_trusted(cached) or _machine_busy_now((cached.get("peak") or {}).get("threads") or 1):
                    return cached  # a busy-machine peak stays until a quiet moment to replace it
        except (OSError, ValueError):
            pass  # unreadable cache: measure again
    fresh = measure()
    write_atomic(path, json.dumps(fresh, indent=2))
    return fresh


def _machine_busy_now(threads: int) -> bool:
    return machine_state.oversubscription(machine_state.measure_window(), threads) is not None


def peak_gflops(machine: dict, dtype: str, threads: int | None = None) -> float:
    """Measured GEMM peak for ``dtype``, scaled linearly when fewer threads are used."""
    key = "sgemm" if dtype == "float32" else "dgemm"
    peak = machine["peak"][key]["gflops"]
    measured_threads = machine["peak"].get("threads") or 1
    if threads and threads < measured_threads:
        peak *= threads / measured_threads
    return peak


def summary_lines(machine: dict) -> list[str]:
    """The headline of ``convbench env``."""
    cpu, sw = machine["cpu"], machine["software"]
    ident = f" ({cpu['id']})" if cpu.get("id") else ""
    lines = [
        f"CPU       {cpu['model']}{ident} — {cpu['usable_cpus']} usable CPUs "
        f"({cpu['physical_cores'] or '?'} cores, {cpu['logical_cpus']} logical)",
        f"SIMD      {' '.join(cpu['flags']) or 'none reported'}",
    ]
    for b in machine["blas"]:
        lines.append(
            f"BLAS      {b['internal_api']} {b['version']} ({b['prefix']}), kernel {b['architecture']}, "
            f"{b['num_threads']} threads, {b['threading_layer']}"
        )
    lines += machine.get("blas_warnings", [])
    peak = machine["peak"]
    lines.append(
        f"peak      SGEMM {peak['sgemm']['gflops']:.1f} GFLOP/s (n={peak['sgemm']['n']}), "
        f"DGEMM {peak['dgemm']['gflops']:.1f} GFLOP/s (n={peak['dgemm']['n']}), {peak['threads']} threads"
        + ("" if peak_is_trusted(machine) else
           f" -- NOT TRUSTED: {peak.get('busy') or 'not checked for other load'}; "
           "rerun 'convbench env --remeasure' on a quiet machine")
    )
    lines.append(f"bandwidth {machine['bandwidth']['gbs']:.1f} GB/s (numpy copy of {machine['bandwidth']['mib']} MiB)")
    gpus = machine.get("gpus") or []
    lines.append("GPU       " + (", ".join(g["name"] for g in gpus) if gpus else "none"))
    lines.append(
        f"software  numpy {sw['numpy']}, torch {sw.get('torch')} ({sw.get('torch_threads')} threads, "
        f"oneDNN {'on' if sw.get('torch_mkldnn_enabled') else 'off'}), numba {sw.get('numba')}, "
        f"scipy {sw.get('scipy')}, python {sw['python']}"
    )
    lines.append(f"measured  {machine['measured_at']}")
    return lines
