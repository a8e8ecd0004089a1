"""``convbench shapes``: list suites and their layers with FLOPs, params, CPR and intensity."""

from __future__ import annotations


import pandas as pd

from harness.ops.table import op_info
from harness import suites
from harness.bench.runner import op_spec, plan
from harness.cli.args import positive_int


def register(sub) -> None:
    parser = sub.add_parser("shapes", help="list shape suites with FLOPs, parameters, CPR, intensity")
    parser.add_argument("--suite", action="append", default=[], metavar="NAME",
                        help="suite(s) to list in full (default: a one-line summary of every suite)")
    parser.add_argument("--shapes", action="append", default=[], metavar="FILE",
                        help="a benchdnn / DeepBench / convbench CSV shape file to list")
    parser.add_argument("--batch", type=positive_int, default=1, help="batch size for the counts (default 1)")
    parser.add_argument("--dtype", default="float32", help="dtype for the byte counts (default float32)")
    parser.set_defaults(func=run)


def layer_table(cases) -> pd.DataFrame:
    """One row per layer: shape, op, and its counts (the op record's ``counts``)."""
    rows = []
    for suite, layer in cases:
        s = layer.spec
        row = {"suite": suite, "layer": layer.label, "op": layer.op,
               "x": "x".join(map(str, s.x_shape)), "w": "x".join(map(str, s.w_shape)),
               "stride": s.stride[0] if s.stride[0] == s.stride[1] else s.stride,
               "dilation": s.dilation[0] if s.dilation[0] == s.dilation[1] else s.dilation,
               "groups": s.groups}
        spec = op_spec(layer.op, s)  # counts of the op the row names (its record's)
        row.update(op_info(layer.op).counts(spec), w="x".join(map(str, spec.w_shape)))
        rows.append(row)
    return pd.DataFrame(rows)


def run(args) -> int:
    # a bad suite, shape file or dtype raises ValueError: harness.cli prints it as one 'error:' line
    names = [n for item in args.suite for n in item.split(",") if n]
    if not names and not args.shapes:
        return _summary(args.batch, args.dtype)
    cases = plan(names, args.shapes, [args.batch], [args.dtype])
    frame = layer_table(cases)
    frame["GFLOP"] = frame.get("flops_dense", pd.Series(dtype=float)) / 1e9
    frame["useful %"] = 100 * frame.get("flops_useful", 0) / frame.get("flops_dense", 1)
    columns = ["layer", "op", "x", "w", "stride", "dilation", "groups", "out_shape", "GFLOP", "useful %",
               "params", "cpr", "intensity"]
    with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", 44):
        print(frame[[c for c in columns if c in frame]].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    for name in names:
        print(f"\n{name}: {suites.source(name).splitlines()[0]}")
    return 0


def _summary(batch: int, dtype: str) -> int:
    rows = []
    for name in suites.names():
        table = layer_table(plan([name], (), [batch], [dtype]))
        conv = table[table.op == "conv2d"]
        rows.append({"suite": name, "layers": len(table), "other ops": int((table.op != "conv2d").sum()),
                     "GFLOP": conv.flops_dense.sum() / 1e9, "params (M)": conv.params.sum() / 1e6,
                     "median CPR": conv.cpr.median(), "median intensity": conv.intensity.median(),
                     "source": suites.source(name).splitlines()[0][:60]})
    print(f"batch {batch}, {dtype}; `convbench shapes --suite NAME` lists the layers")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return 0
