"""``convbench backends``: the capability matrix."""

from harness.backend.capabilities import capability_matrix, op_matrix
from harness.backend.plugins import add_plugin_option, load_plugins
from harness.ops.table import op_info
from harness.cli.help import examples
from harness.support.render import fit_table, wrap_text


def register(sub) -> None:
    parser = sub.add_parser("backends", help="list backends and what each supports",
                            description="The capability matrix: one column per backend (split into blocks "
                                        "to fit the terminal), x = yes, . = no.",
                            **examples("convbench backends", "convbench backends --op conv_transpose2d",
                                       "COLUMNS=160 convbench backends --plugin my_backend.py"))
    parser.add_argument("--op", default="conv2d", help="op whose features to show (default conv2d)")
    add_plugin_option(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    load_plugins(args.plugin)
    op_info(args.op)  # ValueError listing the known ops
    matrix = capability_matrix(args.op)
    shown = matrix.drop(columns=["reason"]).astype(object).replace({True: "x", False: "."}).T
    print(fit_table(shown.rename_axis("feature"), index=True))
    notes = [wrap_text(f"{name}: {reason}", indent="  ") for name, reason in matrix["reason"].items() if reason]
    if notes:
        print("\nunavailable:\n" + "\n".join(notes))
    ops = op_matrix().replace({"native": "N", "lowered": "L", "": "."}).T
    print("\n" + wrap_text("ops, native or lowered: N = the backend's own, L = lowered by the harness onto its "
                           "other ops (conv2d, the 2-D ops for 1-D and 3-D: harness/ops/lowering*.py), . = absent"))
    print(fit_table(ops.rename_axis("op"), index=True))
    return 0
