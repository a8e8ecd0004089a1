"""The report: stored verification and benchmark results -> Markdown, HTML, CSV and plots.

Everything is regenerated from the results files (nothing is re-run): ``convbench report``.
Written to ``reports/``: ``summary.md`` (tables, plots linked), ``report.html`` (the same,
self-contained: plots embedded as base64 PNG), ``results.csv`` (every number in the long
layout of :mod:`harness.report.data`, full precision) and the PNG plots.
"""

from __future__ import annotations

import base64
import html
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness.bench import calibration
from harness.report import data
from harness.report import fleet
from harness.report import figures as draw
from harness.report import scan
from harness.backend.capabilities import capability_matrix
from harness.support.machine import summary_lines
from harness.bench.paired import format_ratio
from harness.bench.stability import MAX_INTERVAL_WIDTH, MAX_REL_SPREAD, stable_rows, timed_flags
from harness.report.data import read_csv_results as read_results  # noqa: F401 the public reader
from harness.support.results_io import REPORTS, write_atomic, write_csv

ASV_RESULTS = Path(".asv/results")


@dataclass
class Section:
    """One part of the report: a title, sentences, then a table, preformatted text or a plot."""

    title: str
    lines: list = field(default_factory=list)
    table: pd.DataFrame | None = None
    pre: str | None = None
    plot: Path | None = None
    #: the table as HTML (status colours, marks), used by report.html instead of ``table``
    html: str | None = None


def markdown_table(frame: pd.DataFrame, float_format="{:.3g}") -> str:
    """A GitHub-flavoured Markdown table of ``frame`` (index included)."""
    frame = frame.reset_index()
    cells = [[_cell(v, float_format) for v in row] for row in frame.itertuples(index=False)]
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    return "\n".join([header, rule] + ["| " + " | ".join(row) + " |" for row in cells])


def _cell(value, float_format) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return "" if np.isnan(value) else float_format.format(value)
    return str(value).replace("|", "\\|")  # a '|' in a message (|diff|) would end the cell


# -- loading -----------------------------------------------------------------------------
def load_results(verify_csv=None, bench_csvs=(), asv_dir=None) -> pd.DataFrame:
    """Every stored result named (files that do not exist are skipped) in one long frame."""
    frames = []
    if verify_csv is not None and Path(verify_csv).is_file():
        verified = read_results(verify_csv, data.VERIFY_COLUMNS)
        frames.append(data.verify_long(verified, Path(verify_csv).name))
    for path in bench_csvs:
        if Path(path).is_file():
            frames.append(data.bench_long(read_results(path, data.BENCH_COLUMNS), Path(path).name))
    if asv_dir is not None and Path(asv_dir).is_dir():
        frames.append(data.asv_long(asv_dir))
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=list(data.LONG_COLUMNS))
    return pd.concat(frames, ignore_index=True)


# -- the report --------------------------------------------------------------------------
def write_report(verify_csv=REPORTS / "verify.csv", bench_csv=REPORTS / "bench.csv",
                 machine: dict | None = None, out=REPORTS / "summary.md", asv_dir=ASV_RESULTS,
                 history=None) -> Path:
    """Write summary.md, report.html, results.csv and the plots beside ``out``; return ``out``.

    ``bench_csv`` is one path or a list; ``history`` is the verification history (default:
    ``<verify stem>-history.jsonl`` beside ``verify_csv``). Missing files are left out;
    truncated or foreign ones raise ValueError naming the file.
    """
    out = Path(out)
    folder = out.parent
    bench_csvs = [] if bench_csv is None else [bench_csv] if isinstance(bench_csv, (str, Path)) else list(bench_csv)
    results = load_results(verify_csv, bench_csvs, asv_dir)
    if history is None and verify_csv is not None:
        history = Path(verify_csv).with_name(Path(verify_csv).stem + "-history.jsonl")
    runs = data.history_runs(history) if history is not None and Path(history).is_file() else pd.DataFrame()
    settings = [data.read_bench_settings(p) for p in bench_csvs if Path(p).is_file()]
    write_csv(results, folder / "results.csv")

    inprocess = results[results.source.isin([Path(p).name for p in bench_csvs])]
    asv = results[results.source.str.startswith("asv:")]
    verify = results[results.suite == "verify"]
    sections = [_machine_section(machine, inprocess, settings)]
    sections += _verification_sections(verify, runs, verify_csv, folder)
    sections += _bench_sections(inprocess, machine, folder, bench_csvs)
    sections += _asv_sections(asv)
    sections += fleet.sections(folder / fleet.FLEET_CSV, Section, asv_dir)  # machines side by side, when measured
    sections.append(Section("Backends and what they support", table=_matrix_for_report(),
                            html=scan.capability_html(_matrix_for_report()),
                            lines=["✓ = declared, · = not; N = the op is the backend's own, L = lowered by the harness.",
                                   *[f"- {b}: unavailable, {r}" for b, r in capability_matrix()["reason"].items() if r]]))
    sections += scan.network_sections(Section)
    headline = _headline(verify, inprocess)
    title = "convbench report"
    stamp = f"Generated {time.strftime('%Y-%m-%d %H:%M:%S %Z')} from stored results by `convbench report` (nothing re-run)."
    write_atomic(out, _markdown(title, stamp, headline, sections))
    write_atomic(folder / "report.html", _html(title, stamp, headline, sections))
    return out


def _headline(verify: pd.DataFrame, bench: pd.DataFrame) -> list[str]:
    """The minute-long read: did everything verify, who is fastest, how auto does."""
    lines = []
    if not verify.empty:
        status = verify[verify.metric.str.startswith("status:")]
        failed = status[status.metric == "status:failed"]
        judged = int(status.metric.isin(["status:passed", "status:failed", "status:mistrusted"]).sum())
        who = ", ".join(f"{b} ({n})" for b, n in failed.groupby("backend").size().items())
        mistrusted = int((status.metric == "status:mistrusted").sum())
        lines.append(f"- **Verification**: {status.backend.nunique()} backends, {len(status)} cases, {judged} judged "
                     f"against torch; " + (f"**{len(failed)} failed**: {who}." if who else "none failed.")
                     + (f" {mistrusted} mistrusted (passed on mostly-zero outputs; listed below)." if mistrusted else ""))
    # headline claims come from stable timings only (harness.bench.stability); the rest is flagged below
    stable = stable_rows(bench) if not bench.empty else bench
    unstable = timed_flags(bench) if not bench.empty else pd.DataFrame()
    unstable = unstable[~unstable.stable] if not unstable.empty else unstable
    if not unstable.empty:
        lines.append(f"- **Unstable timings**: {len(unstable)} (layer, backend) row(s) flagged and left out of "
                     "every claim below (see 'Unstable timings').")
    table = data.suite_table(stable)
    if not table.empty and "x torch (geomean)" in table:
        singles = table[[not b.startswith("auto") and b != data.baseline() for b in table.index.get_level_values("backend")]]
        for suite, part in singles.groupby(level="suite", sort=False):
            best = part["x torch (geomean)"].idxmax()[1]
            ratio, lo, hi, n = data.ratio_geomean(stable[stable.suite == suite], best)
            lines.append(f"- **{suite}**: fastest single backend {best}, {format_ratio(ratio, lo, hi)} torch "
                         f"(geomean over {n} stable layer(s)).")
    figures = data.auto_figures(stable)
    if not figures.empty:
        for variant, part in figures.groupby(level="auto", sort=False):
            combined = [s for s in part.index.get_level_values("suite") if "+" in s]
            suites = part.drop(index=[(variant, c) for c in combined])
            wins = int((suites["worst (torch aside)"] >= 1.0).sum())
            line = (f"- **{variant}**: at least as fast as every other non-torch backend (geomean) on "
                    f"{wins}/{len(suites)} suite(s)")
            if data.baseline() in part:
                where = combined[0] if combined else suites.index[0][1]
                chosen = [s for s in data.TARGET_SUITES if s in where] if combined else [where]
                ratio, lo, hi, n = data.ratio_geomean(stable, variant, chosen)
                line += f"; {format_ratio(ratio, lo, hi)} torch over {where} ({n} stable layer(s))"
            lines.append(line + ".")
    return lines or ["- No results stored yet: run `convbench verify` and `convbench bench` (or `convbench run`)."]


def _machine_section(machine, bench: pd.DataFrame, settings: list[dict]) -> Section:
    lines = []
    threads = sorted({int(t) for t in bench.threads.dropna()}) if not bench.empty else []
    # the thread count is stated once, with the machine record's own counts explained (scan.thread_lines)
    for s in settings:
        if s:
            lines.append(f"Benchmark run {s.get('started', '?')}: `{' '.join(map(str, s.get('command', [])))}` "
                         f"({s.get('wall_s', '?')} s, budget {s.get('budget_s')} s per case, cache {s.get('cache')}).")
    pre = "\n".join(summary_lines(machine)) if machine else "no machine record (run `convbench env`)"
    lines += scan.thread_lines(machine, threads)
    return Section("Machine, versions, threads", lines=lines, pre=pre)


def _verification_sections(verify: pd.DataFrame, runs: pd.DataFrame, path, folder: Path) -> list[Section]:
    if verify.empty:
        return []
    cases = verify[verify.metric.str.startswith("status:")]
    summary = cases.pivot_table(index="backend", columns="metric", values="value", aggfunc="sum", fill_value=0)
    summary.columns = [c.removeprefix("status:") for c in summary.columns]
    summary = summary.astype(int)
    summary["max_units"] = verify[verify.metric == "max_units"].groupby("backend").value.max()
    plot = draw.verify_error_figure(verify, folder / "verify_errors.png")
    out = [Section("Verification against torch", table=summary, plot=plot, html=scan.status_table_html(summary),
                   lines=["Cases per status per backend, and the worst error in units of each case's rounding-error "
                          "bound (<= 1 passes; 0: bit-identical to the reference).", *scan.STATUS_LINES,
                          f"All cases: `{path}`."])]
    raw = read_results(path, data.VERIFY_COLUMNS) if path is not None and Path(path).is_file() else None
    if raw is not None:
        out += scan.flagged_sections(raw, Section)
    if not runs.empty:
        out.append(Section("Verification history (append-only)", table=runs.tail(10),
                           lines=[f"The last {min(10, len(runs))} of {len(runs)} runs recorded."]))
    return out


def _bench_sections(bench: pd.DataFrame, machine, folder: Path, paths) -> list[Section]:
    if bench.empty:
        return []
    stable = stable_rows(bench)
    sections = [Section("Benchmark: per suite and backend", table=data.suite_table(stable), lines=[
        "GFLOP/s counts the dense formula (padding taps included); x torch = torch's time / the backend's, "
        "median over interleaved rounds of the same run (> 1: faster than torch); % of peak is against the "
        "roofline min(peak, intensity x bandwidth). Geomeans are over the layers each backend ran with a "
        "stable timing; unstable rows are listed under 'Unstable timings'."])]
    flags = timed_flags(bench)
    flagged = flags[~flags.stable]
    if not flagged.empty:
        sections.append(Section("Unstable timings (left out of the geomeans)", table=flagged.drop(columns="stable").set_index(
            ["suite", "layer"]), lines=[
            f"A timing is unstable when its ratio's 95% interval is more than {100 * MAX_INTERVAL_WIDTH:.0f}% of "
            f"the ratio wide, its own times spread more than {100 * MAX_REL_SPREAD:.0f}% (IQR/median), too few "
            "rounds ran, or other processes left too few cores free while the layer ran (harness/bench/stability.py). "
            "Re-measure on a quiet machine, or with `--until-stable SECONDS`."]))
    figures = data.auto_figures(stable)
    if not figures.empty:
        sections.append(Section("auto: choosing the backend per layer", table=figures, lines=[
            "Each cell: geomean over the layers both ran of (that backend's time / auto's time); >= 1 means auto "
            "is at least as fast. `auto` is what `harness.conv2d(backend=\"auto\")` runs: the cost model, with the "
            "candidates it predicts within 2x of its pick timed once per layer (torch not a candidate); "
            "`auto:measure` times every candidate; `auto:torch` lets that pick torch; `auto:estimate` uses the "
            "cost model alone "
            "(harness/autoselect.py). The last row per variant combines the target suites."]))
    held = calibration.saved_held_out()
    if held:  # this machine's calibration, judged leave-one-suite-out (harness.bench.calibration)
        sections.append(Section("auto: judged on layers it was not fitted on", pre=calibration.table(held), lines=[
            "`convbench calibrate` fits the cost model on all suites but one and lets `harness.conv2d`'s auto pick "
            "on the held-out suite's layers: the estimate's pick, or where it predicts other candidates within "
            "2x, the fastest of those timed again (a tie-break, measured apart from the samples); ratio = the "
            "pick's time in the calibration's samples / the best candidate's. `estimate` is the model alone. A layer "
            "marked `(contended core)` was timed while a core ran slowed by other guests' work "
            "(harness/support/core_speed.py): shown, counted, and left out of the summary's figures."]))
    win = data.winners(bench)  # names no winner where a timing is unstable
    if not win.empty:
        sections.append(Section("Fastest backend per layer", table=win))
    sections.append(Section("GFLOP/s per layer", plot=draw.gflops_plot(bench, folder / "gflops.png")))
    cpr_plot = draw.gflops_cpr_figure(bench, folder / "gflops_cpr.png")
    if cpr_plot:
        sections.append(Section("GFLOP/s against CPR", plot=cpr_plot, lines=[
            "Each point is one (layer, backend); each layer is named once, at its fastest backend. CPR "
            "(multiply-adds per weight) is how often each weight is reused: low-CPR layers (pointwise, depthwise, "
            "fully connected: CPR about 1) are bound by memory traffic."]))
    roof = draw.roofline_figure(bench, machine, folder / "roofline.png")
    if roof:
        lines = ["Each point is one (layer, backend), each layer named at its fastest backend. Left of the ridge "
                 "the roof is memory bandwidth, right of it the GEMM peak."]
        over = bench[(bench.metric == "pct_peak") & (bench.value > 100)]
        if not over.empty:
            lines.append(f"**Note**: {len(over)} result(s) exceed the recorded peak (up to {over.value.max():.0f}%): "
                         "the machine record's GEMM peak was measured low (a busy machine, or numpy's BLAS slower "
                         "than torch's oneDNN); re-measure with `convbench env --remeasure` on an idle machine.")
        sections.append(Section("Roofline", plot=roof, lines=lines))
    # the per-layer numbers are the plots' and results.csv's: no second, text copy of the tables above
    sections.append(Section("Where the numbers are", lines=[
        f"Benchmark results: {', '.join(f'`{p}`' for p in paths)}; every number in `results.csv`."]))
    return sections


def _asv_sections(asv: pd.DataFrame) -> list[Section]:
    gflops = asv[(asv.metric == "gflops") & asv.value.notna()]
    if gflops.empty:
        return []
    table = gflops.pivot_table(index=["source", "suite"], columns="backend", values="value", aggfunc=data.geomean)
    return [Section("asv results (GFLOP/s, geomean per suite)", table=table,
                    lines=["From asv's results directory (`convbench asv run`), one row per results file and suite."])]


def _matrix_for_report() -> pd.DataFrame:
    """Backends as columns (there are fewer backends than features)."""
    matrix = capability_matrix().drop(columns=["reason"])
    return matrix.astype(object).T.rename_axis("feature")


# -- rendering ---------------------------------------------------------------------------
def _markdown(title, stamp, headline, sections) -> str:
    parts = [f"# {title}", "", stamp, "", "## In one minute", "", *headline, ""]
    for s in sections:
        parts += [f"## {s.title}", ""]
        parts += [*s.lines, ""] if s.lines else []
        if s.table is not None and not s.table.empty:
            parts += [markdown_table(s.table), ""]
        if s.pre:
            parts += ["```", s.pre, "```", ""]
        if s.plot:
            parts += [f"![{s.title}]({s.plot.name})", ""]
    return "\n".join(parts)


_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1400px;color:#222}
table{border-collapse:collapse;font-size:12px;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;
text-align:right}th{background:#f0f0f0}pre{background:#f7f7f7;padding:.6em;font-size:11px;overflow-x:auto}
img{max-width:100%}li{margin:.2em 0}"""  + scan.CSS


def _html(title, stamp, headline, sections) -> str:
    body = [f"<h1>{html.escape(title)}</h1>", f"<p>{_inline(stamp)}</p>", "<h2>In one minute</h2>", "<ul>"]
    body += [f"<li>{_inline(line[2:])}</li>" for line in headline]
    body.append("</ul>")
    for s in sections:
        body.append(f"<h2>{html.escape(s.title)}</h2>")
        body += [f"<p>{_inline(line)}</p>" for line in s.lines]
        if s.html:
            body.append(s.html)
        elif s.table is not None and not s.table.empty:
            body.append(s.table.to_html(float_format=lambda v: f"{v:.3g}", na_rep="", border=0))
        if s.pre:
            body.append(f"<pre>{html.escape(s.pre)}</pre>")
        if s.plot:
            encoded = base64.b64encode(Path(s.plot).read_bytes()).decode()
            body.append(f'<img alt="{html.escape(s.title)}" src="data:image/png;base64,{encoded}">')
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _inline(text: str) -> str:
    """Markdown's **bold** and `code` in one line, as HTML (everything else escaped)."""
    import re

    out = html.escape(text.lstrip("- "))
    out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)
