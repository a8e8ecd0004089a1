"""The asv dashboard, rendered by convbench: one self-contained HTML file that needs no network.

asv's own ``asv publish`` writes pages that load jQuery, flot and bootstrap from CDNs, so they
are blank offline. This module reads asv's results directory instead
(``.asv/results/<machine>/<commit>-<env>.json`` and ``benchmarks.json``, through
:func:`harness.report.data.asv_long`) and draws, per metric and layer, each backend's value
across the commits benchmarked, as PNG plots embedded in the page (base64). Nothing in the
page points outside it: no script, stylesheet, font or image is fetched.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
from pathlib import Path

import pandas as pd

from harness.report import data

#: metric -> (title, unit, higher is better; None: a property, not a figure of merit); the order the dashboard shows them in.
METRICS = {
    "gflops": ("GFLOP/s (dense count)", "GFLOP/s", True),
    "time_median": ("time per call (median)", "s", False),
    "traced_peak_bytes": ("peak memory the call allocated (tracemalloc)", "kB", False),
    "peakmem_bytes": ("peak resident memory of the benchmark process (asv peakmem)", "MB", False),
    "cpr": ("CPR of the layer (multiply-adds per weight)", "MACs/param", None),
}
#: Memory metrics are stored in bytes and shown in the unit above.
_SCALE = {"traced_peak_bytes": 1e3, "peakmem_bytes": 1e6}


def commits(results_dir) -> pd.DataFrame:
    """One row per asv results file: ``source`` (as in the long frame), machine, commit, date.

    Sorted oldest commit first (asv's ``date`` is the commit's date, in milliseconds).
    """
    rows = []
    for path in sorted(Path(results_dir).glob("*/*.json")):
        if path.name == "machine.json":
            continue
        try:
            meta = json.loads(path.read_text())
        except ValueError:
            raise ValueError(f"{path} is truncated or not JSON; re-run `convbench asv run`") from None
        machine = meta.get("params", {}).get("machine", path.parent.name)
        date = meta.get("date")
        rows.append({"source": f"asv:{machine}/{path.name}", "machine": machine,
                     "commit": str(meta.get("commit_hash", ""))[:8],
                     "date": datetime.datetime.fromtimestamp(date / 1000, datetime.timezone.utc) if date else pd.NaT,
                     "env": meta.get("env_name", "")})
    frame = pd.DataFrame(rows, columns=["source", "machine", "commit", "date", "env"])
    return frame.sort_values(["date", "commit"], kind="stable").reset_index(drop=True)


def history(results_dir) -> pd.DataFrame:
    """asv's results, long, with the commit, its date and its position (``step``) per machine."""
    long = data.asv_long(results_dir)
    meta = commits(results_dir)
    if long.empty or meta.empty:
        return pd.DataFrame()
    meta["step"] = meta.groupby("machine").cumcount()
    out = long.merge(meta, on="source", how="left")
    # layer properties (CPR) have no backend: one series, named for what it is
    out["series"] = out.backend.astype(str).replace("", "the layer")
    if out.threads.nunique(dropna=True) > 1:  # one line per backend and thread count
        out["series"] = out.series + " (" + out.threads.map(lambda t: f"{t:g}" if t == t else "?") + " thr)"
    return out[out.value.notna()]


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    # no metadata: matplotlib's default names its web site in the PNG
    fig.savefig(buffer, format="png", dpi=80, metadata={"Software": None})
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _plot(part: pd.DataFrame, metric: str, labels: list[str], title: str) -> str:
    """One layer's history: a line per series across the commits, as a base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    name, unit, _ = METRICS[metric]
    scale = _SCALE.get(metric, 1.0)
    fig, ax = plt.subplots(figsize=(4.6, 2.6))
    for series, line in part.groupby("series"):
        line = line.groupby("step").value.median() / scale
        ax.plot(line.index, line.values, marker="o", ms=3.5, lw=1.2, label=series)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, fontsize=6, rotation=30 if len(labels) > 4 else 0)
    ax.set_xlim(-0.5, len(labels) - 0.5)
    ax.set_ylabel(unit, fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    if metric in ("gflops", "time_median") and (part.value > 0).all():
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=6, ncol=2, loc="best")
    fig.tight_layout()
    return _png(fig)


def _latest_table(frame: pd.DataFrame, metric: str) -> str:
    """The newest commit's values: layers as rows, series as columns (three significant figures)."""
    from harness.support.render import sig

    newest = frame[frame.step == frame.step.max()]
    scale = _SCALE.get(metric, 1.0)
    wide = newest.pivot_table(index="layer", columns="series", values="value", aggfunc="median") / scale
    wide = wide.reindex(list(dict.fromkeys(newest.layer)))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in ["layer", *wide.columns])
    rows = "".join("<tr>" + f"<td class=l>{html.escape(str(layer))}</td>" +
                   "".join(f"<td>{sig(v)}</td>" for v in values) + "</tr>"
                   for layer, values in wide.iterrows())
    return f"<table><tr>{head}</tr>{rows}</table>"


_CSS = """body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1500px;color:#222;padding:0 1em}
h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.6em}.grid{display:flex;flex-wrap:wrap;gap:6px}
.grid img{border:1px solid #e3e3e3}table{border-collapse:collapse;font-size:12px;margin:.5em 0}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f0f0f0}td.l{text-align:left}
.note{color:#555;font-size:13px;max-width:70em}nav a{margin-right:1em}details{margin:.4em 0}"""


def render_dashboard(results_dir, title: str = "convbench: asv benchmark history") -> str:
    """The dashboard page for asv's results in ``results_dir`` (one HTML string, self-contained)."""
    frame = history(results_dir)
    meta = commits(results_dir)
    body = [f"<h1>{html.escape(title)}</h1>"]
    if frame.empty:
        body.append("<p>No asv results yet: run <code>convbench asv run --suites smoke --quick</code>, "
                    "then <code>convbench asv publish</code>.</p>")
        return _page(title, body)
    body.append(f"<p class=note>{len(meta)} results file(s) from {meta.machine.nunique()} machine(s), "
                f"{meta.commit.nunique()} commit(s); generated {datetime.datetime.now():%Y-%m-%d %H:%M} by "
                "<code>convbench asv publish</code> from <code>.asv/results</code> (nothing fetched from the "
                "network; asv's own pages: <code>convbench asv publish --asv-web</code>).</p>")
    body.append("<table><tr><th>machine</th><th>commit</th><th>commit date (UTC)</th><th>results file</th></tr>" +
                "".join(f"<tr><td class=l>{html.escape(r.machine)}</td><td class=l><code>{html.escape(r.commit)}</code>"
                        f"</td><td class=l>{r.date:%Y-%m-%d %H:%M}</td><td class=l>{html.escape(r.source)}</td></tr>"
                        for r in meta.itertuples()) + "</table>")
    present = [m for m in METRICS if m in set(frame.metric)]
    body.append("<nav>" + "".join(f"<a href='#{m}'>{html.escape(METRICS[m][0])}</a>" for m in present) + "</nav>")
    for metric in present:
        body += _metric_section(frame[frame.metric == metric], metric)
    return _page(title, body)


def _metric_section(part: pd.DataFrame, metric: str) -> list[str]:
    name, unit, higher = METRICS[metric]
    better = "a property of the layer" if higher is None else f"{'higher' if higher else 'lower'} is better"
    out = [f"<h2 id='{metric}'>{html.escape(name)} ({html.escape(unit)}; {better})</h2>"]
    if metric == "traced_peak_bytes":
        out.append("<p class=note>The most memory one call held at once, as Python's tracemalloc sees it: "
                   "allocations through NumPy and Python (NumPy arrays, numba's arrays). Memory that a library "
                   "allocates by its own means (torch's CPU allocator, BLAS scratch) is not traced, so those "
                   "backends show only what they allocate through NumPy.</p>")
    for machine, per_machine in part.groupby("machine", sort=False):
        labels = [c for c in per_machine.sort_values("step").drop_duplicates("step").commit]
        out.append(f"<h3>{html.escape(str(machine))}: newest commit</h3>" + _latest_table(per_machine, metric))
        out.append("<details open><summary>history per layer</summary><div class=grid>")
        for layer, series in per_machine.groupby("layer", sort=False):
            encoded = _plot(series, metric, labels, str(layer))
            out.append(f"<img alt='{html.escape(str(layer))}' src='data:image/png;base64,{encoded}'>")
        out.append("</div></details>")
    return out


def _page(title: str, body: list[str]) -> str:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_dashboard(results_dir, out) -> Path:
    """Render the dashboard for ``results_dir`` and write it atomically to ``out``; return ``out``."""
    from harness.support.results_io import write_atomic

    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ValueError(f"no asv results in {results_dir}: run `convbench asv run` first")
    return write_atomic(Path(out), render_dashboard(results_dir))

