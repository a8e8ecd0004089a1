"""``convbench shapes``: list suites and their layers with FLOPs, params, CPR and intensity."""

from __future__ import annotations

import sys
import textwrap

import pandas as pd

from harness.suites import networks
from harness.support.render import fit_table, si, sig, terminal_width, wrap_text

from harness.ops.table import op_info
from harness import suites
from harness.bench.runner import op_spec, plan
from harness.cli.args import float_dtype, positive_int


def register(sub) -> None:
    from harness.cli.help import examples
    from harness.suites.networks import NETWORKS

    parser = sub.add_parser("shapes", help="list shape suites with FLOPs, parameters, CPR, intensity",
                            description="The layer suites (distinct conv shapes of real networks) with their "
                                        "counts, and whole networks layer by layer with totals, activation "
                                        "FLOPs and receptive fields. Counting conventions: harness/ops/metrics.py "
                                        "and harness/suites/networks.py.",
                            **examples("convbench shapes", "convbench shapes --suite resnet50 --batch 8",
                                       "convbench shapes --network lenet5",
                                       "convbench shapes --shapes my_layers.benchdnn"))
    parser.add_argument("--network", action="append", default=[], metavar="NAME",
                        help=f"a whole network layer by layer, with totals: {', '.join(NETWORKS)}")
    parser.add_argument("--suite", action="append", default=[], metavar="NAME",
                        help="suite(s) to list in full (default: a one-line summary of every suite)")
    parser.add_argument("--shapes", action="append", default=[], metavar="FILE",
                        help="a benchdnn / DeepBench / convbench CSV shape file to list")
    parser.add_argument("--batch", type=positive_int, default=1, help="batch size for the counts (default 1)")
    parser.add_argument("--dtype", type=float_dtype, default="float32", help="dtype for the byte counts (default float32)")
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
    try:
        if args.network:
            return _networks([n for item in args.network for n in item.split(",") if n], args.batch, args.dtype)
        if not names and not args.shapes:
            return _summary(args.batch, args.dtype)
        cases = plan(names, args.shapes, [args.batch], [args.dtype])
    except ValueError as exc:
        print(f"convbench shapes: error: {exc}", file=sys.stderr)
        return 2
    frame = layer_table(cases)
    frame["GFLOP"] = frame.get("flops_dense", pd.Series(dtype=float)) / 1e9
    frame["useful %"] = 100 * frame.get("flops_useful", 0) / frame.get("flops_dense", 1)
    frame["layer"] = frame.layer.str.split(".", n=1).str[-1]  # the suite is said once, per block below
    columns = ["layer", "op", "x", "w", "stride", "dilation", "groups", "out_shape", "GFLOP", "useful %",
               "params", "cpr", "intensity"]
    for suite, part in frame.groupby("suite", sort=False):
        print(f"{suite} (batch {args.batch}, {args.dtype}):")
        print(fit_table(part[[c for c in columns if c in part]].rename(columns={"out_shape": "y"}), keys=1))
        if suite in suites.names():
            print(textwrap.fill(suites.source(suite).replace("\n", " "), width=terminal_width()) + "\n")
    return 0


def _summary(batch: int, dtype: str) -> int:
    rows = []
    for name in suites.names():
        table = layer_table(plan([name], (), [batch], [dtype]))
        conv = table[table.op == "conv2d"]
        rows.append({"suite": name, "layers": len(table), "other ops": int((table.op != "conv2d").sum()),
                     "GFLOP": conv.flops_dense.sum() / 1e9, "params (M)": conv.params.sum() / 1e6,
                     "median CPR": conv.cpr.median(), "median intensity": conv.intensity.median(),
                     "source": suites.source(name).splitlines()[0]})
    print(wrap_text(f"suites (distinct conv shapes; batch {batch}, {dtype}); `convbench shapes --suite NAME` lists "
                    "the layers:"))
    print(fit_table(pd.DataFrame(rows), keys=1))
    print("\n" + wrap_text("whole networks (every layer, repeats, pooling, FC and activations; "
                           "`convbench shapes --network NAME` lists them):"))
    print(fit_table(network_totals(batch, dtype), keys=1))
    return 0


def network_totals(batch: int = 1, dtype: str = "float32") -> pd.DataFrame:
    """One row per whole network (:mod:`harness.suites.networks`): GFLOP, params, CPR, receptive field."""
    rows = []
    for name in networks.NETWORKS:
        t = networks.totals(networks.network(name, batch, dtype))
        rows.append({"network": name, "layers": t["layers"], "GMAC": t["macs"] / 1e9, "GFLOP": t["flops"] / 1e9,
                     "activation MFLOP": t["activation_flops"] / 1e6, "params (M)": t["params"] / 1e6,
                     "CPR": t["cpr"], "receptive field": t["receptive_field"]})
    return pd.DataFrame(rows)


def _networks(names: list[str], batch: int, dtype: str) -> int:
    for name in names:
        layers = networks.network(name, batch, dtype)  # ValueError names the known networks
        frame = networks.table(layers)
        t = networks.totals(layers)
        frame = frame.assign(MFLOP=frame.flops / 1e6, **{"act. kFLOP": frame.activation_flops / 1e3})
        columns = ["layer", "kind", "activation", "out", "MFLOP", "act. kFLOP", "params", "cpr", "receptive_field"]
        print(f"{name} (batch {batch}, {dtype}):")
        print(fit_table(frame[columns].rename(columns={"receptive_field": "RF"}), keys=1))
        fc, conv = frame[frame.kind == "fc"], frame[frame.kind.str.startswith("conv")]
        print(wrap_text(f"total: {si(t['macs'])}MAC, {si(t['flops'])}FLOP (activations "
                        f"{si(t['activation_flops'])}FLOP), {si(t['params']).strip()} parameters, CPR {sig(t['cpr'])}, "
                        f"receptive field {t['receptive_field']} px"
              + (f"; fully connected layers: CPR {sig(fc.cpr.min())}-{sig(fc.cpr.max())} (each weight used once "
                 f"per image) against {sig(conv.cpr.min())}-{sig(conv.cpr.max())} for the conv layers"
                 if not fc.empty else "")) + "\n")
    print(wrap_text("RF: receptive field in input pixels along the main path; activations per element: ReLU 1 FLOP, "
                    "sigmoid 4, tanh 5 (harness/suites/networks.py)."))
    return 0
