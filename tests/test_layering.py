"""Imports point downward only (docs/architecture.md), checked on the source with the ast module."""

from __future__ import annotations

import ast
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
    "pipeline": {"core", "config", "parsing", "detectors", "policy"},
    "store": {"core", "config", "parsing"},
    "delivery": {"core", "config", "store"},
    "rollout": {"core", "config", "pipeline", "rules", "store", "policy", "parsing"},
    "services": {"core", "config", "parsing", "auth", "rules", "ml", "detectors", "policy",
                 "pipeline", "store", "delivery", "rollout", "history", "feeds", "app"},
    "eval": {"core", "config", "parsing", "ml", "detectors", "policy", "pipeline", "app"},
    "app": {"core", "config", "parsing", "auth", "rules", "ml", "detectors", "policy",
            "pipeline", "store", "delivery", "rollout", "services", "history", "feeds"},
    "interfaces": {"core", "config", "app", "services", "parsing", "store", "eval", "rollout",
                   "delivery", "pipeline", "auth", "policy", "ml", "rules", "detectors"},
    "testing": {"*"},
    "data": set(),  # package data only (the robustness set), no code
}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "mailsift" or len(parts) < 2:
        return None
    return parts[1]


def imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
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
