"""Parts of report.html made to be scanned: status colours, the cases to look at, marks for
yes/no, one thread count, whole-network totals.

:mod:`harness.report.page` assembles the sections; this module renders the ones whose HTML is
more than a plain table.
"""

from __future__ import annotations

import html
import importlib
import math

import pandas as pd

from harness.support.render import sig

CSS = """td.ok{background:#e3f4e6}td.bad{background:#fbd9d6;color:#9b1c12;font-weight:bold}
td.warn{background:#fff1c9}td.mute{color:#999}td.l,th.l{text-align:left}td.mono{font-family:monospace;font-size:11px;
text-align:left;max-width:60em;word-break:break-all}.badge{padding:1px 6px;border-radius:3px;font-size:11px}
.badge.failed{background:#d93025;color:#fff}.badge.mistrusted{background:#f9ab00;color:#222}
.badge.passed{background:#188038;color:#fff}pre{white-space:pre-wrap;word-break:break-all}"""

#: What each verification status means, for the reader of the report.
STATUS_LINES = [
    "**passed**: within the bound on every output element (green). **failed**: outside it, or NaN/Inf where torch "
    "has none, or an input modified (red). **mistrusted**: within the bound, but on a case whose reference "
    "output is mostly zeros, so the check proves little (amber): look at the case, then widen the data. "
    "**unsupported**: a table case needing a feature the backend does not declare. **skipped**: over the time limit.",
]
_STATUS_CLASS = {"passed": "ok", "failed": "bad", "mistrusted": "warn"}


def status_table_html(summary: pd.DataFrame) -> str:
    """Cases per status per backend, with failed (red), mistrusted (amber) and all-passed (green) cells."""
    columns = list(summary.columns)
    head = "<tr><th class=l>backend</th>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in columns) + "</tr>"
    rows = []
    for backend in summary.index:
        values = {column: summary.at[backend, column] for column in columns}  # per cell: ints stay ints
        cells = []
        for column in columns:
            value = values[column]
            kind = _STATUS_CLASS.get(column)
            if kind == "ok":
                kind = "ok" if value and not values.get("failed", 0) else ""
            elif kind and not value:
                kind = "mute"
            if column == "max_units" and isinstance(value, float) and not math.isnan(value):
                kind = "bad" if value > 1 else "ok"
                text = "0 (exact)" if value == 0 else sig(value)
            else:
                text = sig(value)
            cells.append(f"<td class='{kind}'>{html.escape(text)}</td>")
        rows.append(f"<tr><td class=l><b>{html.escape(str(backend))}</b></td>{''.join(cells)}</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _case_type(text: str):
    """The case class a case's text names (``Conv2dCase(...)``), from the op cases' modules."""
    name = text.split("(", 1)[0]
    for module in ("conv2d", "transpose", "pool", "backward", "separable"):
        found = getattr(importlib.import_module(f"harness.ops.cases.{module}"), name, None)
        if found is not None:
            return found
    return None


def reproducer_for(backend: str, case_text: str) -> str:
    """The one-line command that re-runs a case on ``backend`` (as the verifier prints for failures)."""
    case_type = _case_type(case_text)
    where = f"from {case_type.__module__} import {case_type.__name__}; " if case_type else ""
    return f"python -c \"import harness; {where}print(harness.check_case('{backend}', {case_text}))\""


def flagged_sections(raw: pd.DataFrame, section) -> list:
    """One section listing every failed and mistrusted case: status, error, reason, case; then the
    reproducers (a failing backend's minimal one first). ``section`` is the report's Section class."""
    flagged = raw[raw.status.isin(["failed", "mistrusted"])].copy()
    if flagged.empty:
        return []
    flagged["max_units"] = pd.to_numeric(flagged.max_units, errors="coerce")
    shown = flagged.groupby(["backend", "status"], sort=False).head(8)
    table = shown[["backend", "op", "status", "max_units", "message", "case"]].rename(
        columns={"message": "reason", "max_units": "error (units)"}).set_index("backend")
    rows = "".join(
        f"<tr><td class=l><b>{html.escape(str(r.backend))}</b></td><td class=l>{html.escape(str(r.op))}</td>"
        f"<td><span class='badge {r.status}'>{r.status}</span></td><td>{html.escape(sig(r.max_units))}</td>"
        f"<td class=l>{html.escape(str(r.message))}</td><td class=mono>{html.escape(str(r.case))}</td></tr>"
        for r in shown.itertuples())
    head = "".join(f"<th class=l>{c}</th>" for c in ("backend", "op", "status", "error (units)", "reason", "case"))
    counts = ", ".join(f"{n} {status} on {backend}" for (backend, status), n in
                       flagged.groupby(["backend", "status"], sort=False).size().items())
    lines = [f"{counts}. Up to 8 per backend and status are listed; every one is in the verification CSV "
             "(`status` column). Re-run one with its reproducer below."]
    reproducers = []
    for (backend, status), part in flagged.groupby(["backend", "status"], sort=False):
        minimal = part[part.get("minimal", pd.Series(False, index=part.index)).astype(str) == "True"]
        first = (minimal if not minimal.empty else part).iloc[0]
        text = str(first.get("reproducer", "") or "")
        if not text or text == "nan":
            text = reproducer_for(backend, str(first.case))
        label = "minimal reproducer (shrunk from the smallest failure)" if not minimal.empty else "reproducer"
        reproducers.append(f"# {backend}, {status}: {label}\n{text}")
    return [section("Cases to look at: failed and mistrusted", table=table, lines=lines,
                    html=f"<table><tr>{head}</tr>{rows}</table>", pre="\n\n".join(reproducers))]


def capability_html(matrix: pd.DataFrame) -> str:
    """The capability matrix with ✓ and · for yes and no (backends as columns)."""
    head = "<tr><th class=l>feature</th>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in matrix.columns) + "</tr>"
    rows = []
    for feature, values in matrix.iterrows():
        cells = []
        for value in values:
            if isinstance(value, bool) or value in (True, False):
                cells.append("<td class=ok>✓</td>" if value else "<td class=mute>·</td>")
            else:
                short = {"native": "N", "lowered": "L"}.get(str(value), str(value))
                cells.append(f"<td>{html.escape(short)}</td>")
        rows.append(f"<tr><td class=l>{html.escape(str(feature))}</td>{''.join(cells)}</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def thread_lines(machine: dict | None, threads: list[int]) -> list[str]:
    """One statement of the thread count the figures used, and how the machine record relates to it."""
    if not threads:
        return []
    count = ", ".join(map(str, threads))
    lines = [f"**Threads: every benchmark figure in this report ran with {count} thread(s) per backend** "
             "(BLAS, numba and torch pinned to that count for the run)."]
    if machine:
        from harness.support.machine import peak_gflops

        peak = peak_gflops(machine, "float32", max(threads))
        lines.append(f"The roofline and % of peak use the SGEMM peak scaled to {max(threads)} thread(s): "
                     f"{peak:.0f} GFLOP/s. The machine record below lists the libraries' default thread counts "
                     "when it was measured, not those of the run.")
    return lines


def network_sections(section) -> list:
    """Whole-network totals (every layer, pooling, FC and activations): the scale of each network."""
    from harness.suites import networks

    rows = []
    for name in networks.NETWORKS:
        layers = networks.network(name)
        t = networks.totals(layers)
        fc = networks.table(layers)
        fc = fc[fc.kind == "fc"]
        rows.append({"network": name, "layers": t["layers"], "GMAC": t["macs"] / 1e9, "GFLOP": t["flops"] / 1e9,
                     "activation MFLOP": t["activation_flops"] / 1e6, "params (M)": t["params"] / 1e6,
                     "CPR": t["cpr"], "FC layers' CPR": fc.cpr.max() if not fc.empty else math.nan,
                     "receptive field (px)": t["receptive_field"]})
    table = pd.DataFrame(rows).set_index("network")
    return [section("Whole networks at batch 1", table=table, lines=[
        "Every layer in order (repeats, pooling, fully connected layers, activations); `convbench shapes --network "
        "NAME` lists them with each layer's receptive field. Activations: ReLU 1 FLOP per element, sigmoid 4; "
        "batch norm folded into the convolutions. A fully connected layer uses each weight once per image "
        "(CPR about 1), a conv layer once per output position."])]
