"""The package's shape: layers that import only downward, no cycles, no backend known by name.

The layers, lowest first (``README.md``, "Architecture"): ``errors`` and ``support`` (no op
knowledge), ``ops`` (the op contract: specs, records, cases, bounds, counts), ``backend``
(registry and the one dispatch path), ``autoselect``, ``api`` (the public functions), then
``verify`` and ``bench`` side by side, ``report``, ``distributed`` (their work on a Dask cluster), and ``cli`` with the package's public face
(``harness/__init__.py``) on top. ``impls/`` sees only the op contract.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {
    "harness.errors": 0, "harness.support": 0,
    "harness.ops": 1,
    "harness.backend": 2, "harness.suites": 2,
    "harness.autoselect": 3,
    "harness.api": 4,
    "harness.verify": 5, "harness.bench": 5,
    "harness.report": 6,
    "harness.testing": 7, "harness.strategies": 7, "harness.distributed": 7,
    "harness.cli": 8, "harness.pytest_plugin": 8, "harness": 8,
}
#: What a backend may import from the harness: the op contract.
IMPLS_MAY_IMPORT = ("harness.errors", "harness.support", "harness.ops", "harness.backend.registry")
BUILTIN_BACKENDS = {p.stem for p in (ROOT / "impls").glob("*.py") if not p.stem.startswith("_")}


def modules(package: str) -> dict[str, Path]:
    out = {}
    for path in (ROOT / package).rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


ALL = {**modules("harness"), **modules("impls")}


def imports(name: str, path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import in a module, top level or not."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - child.level + 1]
                    module = ".".join(base + ([child.module] if child.module else []))
                else:
                    module = child.module
                for a in child.names:
                    target = f"{module}.{a.name}"
                    found.append((target if target in ALL else module, child.lineno, in_function))
            visit(child, nested)

    visit(tree, False)
    return [(m, line, fn) for m, line, fn in found if m.split(".")[0] in ("harness", "impls")]


GRAPH = {name: imports(name, path) for name, path in ALL.items()}


def layer_of(module: str) -> tuple[str, int]:
    for prefix in sorted(LAYERS, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return prefix, LAYERS[prefix]
    raise KeyError(module)


def test_no_import_cycles_even_through_imports_inside_functions():
    internal = {name: {m for m, _, _ in deps if m in ALL and m != name} for name, deps in GRAPH.items()}
    state, cycles = {}, []

    def walk(node, stack):
        state[node] = "open"
        for nxt in sorted(internal[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(internal):
        if node not in state:
            walk(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_harness_layers_import_only_downward():
    wrong = []
    for name, deps in GRAPH.items():
        if not name.startswith("harness"):
            continue
        home, level = layer_of(name)
        for target, line, _ in deps:
            if target.startswith("impls"):
                if name != "harness.backend.registry":  # backend discovery is the one way in
                    wrong.append(f"{name}:{line} imports {target} (only backend discovery may)")
                continue
            there, target_level = layer_of(target)
            if there != home and target_level >= level:
                wrong.append(f"{name}:{line} ({home}, layer {level}) imports {target} ({there}, layer {target_level})")
    assert not wrong, "\n".join(wrong)


def test_backends_import_nothing_above_the_op_contract():
    wrong = [f"{name}:{line} imports {target}"
             for name, deps in GRAPH.items() if name.startswith("impls")
             for target, line, _ in deps
             if target.startswith("harness") and not target.startswith(IMPLS_MAY_IMPORT)]
    assert not wrong, "\n".join(wrong)


def test_no_private_names_imported_across_modules():
    wrong = []
    for name, path in ALL.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("harness", "impls"):
                wrong += [f"{name}:{node.lineno} imports {node.module}.{a.name}" for a in node.names
                          if a.name.startswith("_") and f"{node.module}.{a.name}" not in ALL]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("name", sorted(n for n in ALL if n.startswith("harness") and not n.startswith("harness.support")))
def test_harness_code_never_branches_on_a_backend_name(name):
    """Roles, cost models and error models come from each backend's declaration; a backend's
    name may appear in prose (docstrings, help texts) but never in a comparison or a lookup."""
    tree = ast.parse(ALL[name].read_text())
    wrong = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            parts = [node.left, *node.comparators]
        elif isinstance(node, ast.Subscript):
            parts = [node.slice]
        else:
            continue
        for part in parts:
            for leaf in ast.walk(part):
                if isinstance(leaf, ast.Constant) and leaf.value in BUILTIN_BACKENDS:
                    wrong.append(f"line {leaf.lineno}: {ast.unparse(node)}")
    assert not wrong, "\n".join(wrong)
