"""A/A self-test of the timer: one backend against an identical twin under another name.

What the mutants are to the verifier, the twin is to the benchmark: the two names run the very
same function, so any ratio the timer reports between them other than 1.0 is the timer's own
error. The test passes when every layer measured stably has a ratio interval containing 1.0;
it fails when a stable interval excludes 1.0 (the timer would report a difference that does
not exist); it is inconclusive when no layer could be measured stably (a busy machine: the
stability rule did its job, and the timer was not trusted).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from harness.bench import runner as bench
from harness.backend.registry import get_backend, register_backend, unregister_backend
from harness.support.results_io import write_atomic

DEFAULT_PATH = Path("reports/selftest-timing.json")
DEFAULT_BACKEND = "im2col"
TWIN_SUFFIX = "_twin"


def run_selftest(backend: str = DEFAULT_BACKEND, suite: str = "smoke", layers: int | None = None,
                 threads: int | None = 1, budget_s: float = 0.3, min_rounds: int | None = None,
                 settle_s: float | None = None, seed: int = 0) -> dict:
    """Time ``backend`` against its twin on the first ``layers`` layers of ``suite`` (batch 1).

    Returns a JSON-ready dict: ``verdict`` (``passed``, ``failed`` or ``inconclusive``), the
    settings, and per layer the ratio twin / original with its interval, whether it contains
    1.0, and the stability flag and reason.
    """
    declared = get_backend(backend)
    if declared.reason is not None:
        raise ValueError(f"backend {backend!r} is unavailable: {declared.reason}")
    if "conv2d" not in declared.ops:
        raise ValueError(f"backend {backend!r} has no conv2d op to time")
    cases = [(s, layer) for s, layer in bench.plan([suite], batches=[1]) if layer.op == "conv2d"]
    cases = cases[:layers] if layers else cases
    if not cases:
        raise ValueError(f"suite {suite!r} has no conv2d layer to time")
    twin = _register_twin(declared)
    started = time.time()
    options = {} if min_rounds is None else {"min_runs": min_rounds}
    if settle_s is not None:
        options["settle_s"] = settle_s
    try:
        results = bench.run(cases, [twin], threads=threads, budget_s=budget_s, progress=False, seed=seed,
                            baseline=backend, **options)
    finally:
        unregister_backend(twin)
    rows = _layer_rows(results, twin)
    return {"verdict": verdict(rows), "backend": backend, "twin": twin, "suite": suite, "threads": threads,
            "budget_s": budget_s, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "wall_s": round(time.time() - started, 3), "layers": rows}


def _register_twin(declared) -> str:
    """Register the same op functions under ``<name>_twin`` (replacing a stale one)."""
    name = declared.name + TWIN_SUFFIX
    native = {op: fn for op, fn in declared.ops.items() if op not in declared.lowered}
    register_backend(name, device=declared.device, features={op: declared.features.get(op, ()) for op in native},
                     dtypes=declared.dtypes, sync=declared.sync, limits=declared.limits, replace=True,
                     description=f"A/A twin of {declared.name}", **native)
    return name


def _layer_rows(results, twin: str) -> list[dict]:
    mine = results[results.backend == twin]
    out = []
    for layer, part in mine.groupby("layer", sort=False):
        values = dict(zip(part.metric, part.value))
        if "ratio_to_torch" not in values:
            out.append({"layer": layer, "ratio": math.nan, "lo": math.nan, "hi": math.nan, "contains_1": False,
                        "stable": False, "reason": str(part.reason.iloc[0]) or "not timed"})
            continue
        lo, hi = values["ratio_lo"], values["ratio_hi"]
        out.append({"layer": layer, "ratio": values["ratio_to_torch"], "lo": lo, "hi": hi,
                    "contains_1": bool(lo <= 1.0 <= hi), "stable": bool(part.stable.iloc[0]),
                    "reason": str(part.unstable_reason.iloc[0]), "rounds": int(values.get("rounds", 0)),
                    "busy_cores": values.get("busy_cores", math.nan)})
    return out


def verdict(rows: list[dict]) -> str:
    """``failed`` if a stable layer's interval excludes 1.0; ``inconclusive`` if no layer was
    stable; else ``passed``."""
    stable = [r for r in rows if r["stable"]]
    if any(not r["contains_1"] for r in stable):
        return "failed"
    return "passed" if stable else "inconclusive"


def save(result: dict, path=DEFAULT_PATH) -> Path:
    """Write the result as JSON, atomically."""
    return write_atomic(path, json.dumps(result, indent=1, default=str, allow_nan=True))


def load(path=DEFAULT_PATH) -> dict | None:
    """The last stored result, or None when there is none (or it cannot be read)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def summary_line(result: dict | None) -> str:
    """One line for ``convbench env``."""
    if not result:
        return "none stored (run `convbench selftest-timing`)"
    rows = result.get("layers", [])
    stable = [r for r in rows if r.get("stable")]
    inside = sum(1 for r in stable if r.get("contains_1"))
    return (f"{result.get('verdict', '?')} ({result.get('started', '?')}): {result.get('backend')} vs "
            f"{result.get('twin')}, {len(stable)}/{len(rows)} layer(s) stable, {inside}/{len(stable)} of those "
            "with 1.0 inside the ratio interval")


def lines(result: dict) -> list[str]:
    """Per-layer lines for the terminal."""
    from harness.bench.paired import format_ratio

    out = []
    for r in result["layers"]:
        mark = "ok " if r["contains_1"] else "OFF"
        flag = "stable" if r["stable"] else f"unstable: {r['reason']}"
        out.append(f"  {mark} {r['layer']:<28} {format_ratio(r['ratio'], r['lo'], r['hi']):>22}  {flag}")
    return out
