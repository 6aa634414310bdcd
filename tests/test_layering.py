"""Imports point downward only and modules import each other without cycles, checked on the
source with the ast module (docs/architecture.md, *Layers*)."""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator, Mapping
from itertools import pairwise
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "mailsift"

# layer -> layers it may import (besides itself). `config` is the typed schema, importable from
# every layer above core; `testing` may import anything; nothing imports `interfaces`.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "config": {"core"},
    "parsing": {"core", "config"},
    "auth": {"core", "config", "parsing"},
    "rules": {"core", "config", "parsing"},
    "ml": {"core", "config", "parsing"},
    "history": {"core", "config"},
    "feeds": {"core", "config"},
    "detectors": {"core", "config", "parsing", "auth", "rules", "ml", "history", "feeds"},
    "policy": {"core", "config"},
    "pipeline": {"core", "config", "parsing", "auth", "detectors", "policy"},
    "store": {"core", "config", "parsing"},
    "delivery": {"core", "config", "store"},
    "mailflow": {"core", "config", "parsing", "delivery"},
    "rollout": {"core", "config", "pipeline", "rules", "store", "policy", "parsing"},
    "services": {"core", "config", "parsing", "auth", "rules", "ml", "detectors", "policy",
                 "pipeline", "store", "delivery", "rollout", "history", "feeds", "mailflow"},
    "eval": {"core", "config", "parsing", "ml", "detectors", "policy", "pipeline"},
    "app": {"core", "config", "parsing", "auth", "rules", "ml", "detectors", "policy",
            "pipeline", "store", "delivery", "rollout", "services", "history", "feeds",
            "mailflow"},
    "interfaces": {"core", "config", "app", "services", "parsing", "store", "eval", "rollout",
                   "delivery", "pipeline", "auth", "policy", "ml", "rules", "detectors",
                   "mailflow"},
    "testing": {"*"},
    "data": set(),  # package data only (the robustness set), no code
}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "mailsift" or len(parts) < 2:
        return None
    return parts[1]


@functools.cache
def parsed(path: Path) -> ast.Module:
    """The module's syntax tree, parsed once for all the checks of this file."""
    return ast.parse(path.read_text(), str(path))


def imports(path: Path) -> list[tuple[int, str]]:
    tree = parsed(path)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_every_layer_is_known() -> None:
    layers = {p.stem if p.is_file() else p.name for p in SRC.iterdir()
              if not p.name.startswith("__") and p.name != "py.typed"}
    assert layers <= set(ALLOWED), layers - set(ALLOWED)


def test_imports_point_downward() -> None:
    problems = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        own = rel.parts[0].removesuffix(".py")
        if own in ("__init__", "__main__"):
            continue
        allowed = ALLOWED[own]
        for line, module in imports(path):
            target = layer_of(module)
            if target is None or target == own or "*" in allowed:
                continue
            if module == "mailsift":  # the version constant
                continue
            if target not in allowed:
                problems.append(f"{rel}:{line} ({own}) imports {module} ({target})")
    assert not problems, "\n".join(problems)


def test_core_uses_only_the_standard_library() -> None:
    import sys

    for path in (SRC / "core").rglob("*.py"):
        for line, module in imports(path):
            top = module.split(".")[0]
            assert top == "mailsift" or top in sys.stdlib_module_names or top == "__future__", (
                f"core/{path.name}:{line} imports {module}")


# -- no import cycles ----------------------------------------------------------------------------
# A cycle is a knot even when each edge points "down" inside one layer (or up a lazy import in a
# function): the modules can only be understood, tested and split together. Imports inside
# functions count; ``if TYPE_CHECKING:`` blocks do not (they never run).

Graph = Mapping[str, Mapping[str, int]]  # module -> {imported module: line of the import}


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph(root: Path) -> dict[str, dict[str, int]]:
    """Every module of the package at ``root`` and the package modules it imports.
    ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg``."""
    modules = {module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: dict[str, int] = {}
        for node in _runtime_imports(parsed(path)):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            for target in targets:
                if target in modules and target != name:
                    edges[target] = min(edges.get(target, node.lineno), node.lineno)
        graph[name] = edges
    return graph


def knots(graph: Graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def one_cycle(graph: Graph, knot: list[str]) -> list[str]:
    """The shortest cycle through the knot's first module (breadth-first inside the knot)."""
    start, members = knot[0], set(knot)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v]):
            if w == start:
                return [*paths[v], start]
            if w in members and w not in paths:
                paths[w] = [*paths[v], w]
                queue.append(w)
    raise AssertionError(f"no cycle through {start}")  # pragma: no cover - a knot has one


def describe(graph: Graph, knot: list[str]) -> str:
    """``module:line -> module:line -> ... -> first module``: each line imports the next."""
    cycle = one_cycle(graph, knot)
    steps = [f"{a}:{graph[a][b]}" for a, b in pairwise(cycle)]
    layers = sorted({m.split(".")[1] if "." in m else m for m in knot})
    where = f"inside {layers[0]}" if len(layers) == 1 else f"across {', '.join(layers)}"
    text = f"import cycle {where}: {' -> '.join([*steps, cycle[0]])}"
    if len(knot) > len(steps):
        text += f" (the knot has {len(knot)} modules: {', '.join(knot)})"
    return text


def test_no_import_cycles() -> None:
    graph = import_graph(SRC)
    problems = [describe(graph, knot) for knot in knots(graph)]
    assert not problems, "\n".join(problems)


def test_the_layer_table_has_no_cycles() -> None:
    graph = {layer: {dep: 0 for dep in deps if dep not in ("*", layer)}
             for layer, deps in ALLOWED.items()}
    assert knots(graph) == []


def test_cycles_are_found_with_lazy_imports_and_without_type_checking_ones(
        tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("from .. import a\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nimport pkg.a\n"
                              "if TYPE_CHECKING:\n    import pkg.d\n")
    (pkg / "d.py").write_text("import pkg.c\n")
    graph = import_graph(pkg)
    assert graph["pkg.a"] == {"pkg.sub.b": 2} and graph["pkg.sub.b"] == {"pkg.a": 1}
    assert knots(graph) == [["pkg.a", "pkg.sub.b"]]
    assert describe(graph, ["pkg.a", "pkg.sub.b"]) == (
        "import cycle across a, sub: pkg.a:2 -> pkg.sub.b:1 -> pkg.a")
