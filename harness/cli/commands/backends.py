"""``convbench backends``: the capability matrix."""

from harness.backend.capabilities import capability_matrix, op_matrix, render_matrix, render_op_matrix
from harness.backend.plugins import add_plugin_option, load_plugins
from harness.ops.table import op_info


def register(sub) -> None:
    parser = sub.add_parser("backends", help="list backends and what each supports")
    parser.add_argument("--op", default="conv2d", help="op whose features to show (default conv2d)")
    add_plugin_option(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    load_plugins(args.plugin)
    op_info(args.op)  # ValueError listing the known ops
    print(render_matrix(capability_matrix(args.op)))
    print("\nops, native or lowered:")
    print(render_op_matrix(op_matrix()))
    return 0
