"""The package's layers, checked on its source (docs/architecture.md).

Imports are read statically (``ast``), function-level ones included, so a
lazy import counts as much as a top-level one; imports under
``if TYPE_CHECKING:`` never run and are left out.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "colocam_plugin"

#: lower layers may not import these (a layer imports only those below it)
FORBIDDEN = {
    "colocam_plugin.data": ("models", "losses", "train", "cam", "harness", "pipeline", "cli"),
    "colocam_plugin.metrics": ("data", "models", "losses", "train", "harness", "pipeline", "cli"),
    "colocam_plugin.models": ("losses", "train", "harness", "pipeline", "cli"),
    "colocam_plugin.losses": ("data", "models", "train", "harness", "pipeline", "cli"),
    "colocam_plugin.train": ("harness", "pipeline", "cli"),
    "colocam_plugin.harness": ("pipeline", "cli"),
    "colocam_plugin.pipeline": ("cli",),
    "colocam_plugin.builtin": ("cli", "harness", "pipeline"),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skip


@functools.cache
def import_graph() -> dict[str, set[str]]:
    """module -> package modules it imports at run time (anywhere in its body)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        tree = ast.parse(path.read_text())
        skip = _type_checking_nodes(tree)
        package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                names = [base, *(f"{base}.{a.name}" for a in node.names)]
            else:
                continue
            graph[mod] |= {n for n in names if n in modules and n != mod}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle() -> None:
    assert _cycles(import_graph()) == []


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_only_cli_imports_cli() -> None:
    graph = import_graph()
    offenders = {
        m: sorted(d for d in deps if d.startswith("colocam_plugin.cli"))
        for m, deps in graph.items()
        if not m.startswith("colocam_plugin.cli") and m != "colocam_plugin.__main__"
    }
    assert {m: d for m, d in offenders.items() if d} == {}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_only_below(layer: str) -> None:
    graph = import_graph()
    bad = {f"colocam_plugin.{name}" for name in FORBIDDEN[layer]}  # module or sub-package
    offenders = {
        m: sorted(d for d in deps if any(d == b or d.startswith(b + ".") for b in bad))
        for m, deps in graph.items()
        if m == layer or m.startswith(layer + ".")
    }
    assert {m: d for m, d in offenders.items() if d} == {}


def test_benchmarks_call_the_library_not_the_cli() -> None:
    offenders = [
        p.name
        for p in (ROOT / "benchmarks").glob("*.py")
        if "colocam_plugin.cli" in p.read_text().replace("colocam_plugin.cli.main", "")
    ]
    assert offenders == []
