"""The package's layers: every import, lazy ones included, points one way.

An import inside a function is still a dependency (it only moves the cost), so the
graph is read from the source with ``ast``, every ``import`` statement anywhere.
"""

import ast
from pathlib import Path

from helpers import ROOT

PACKAGE = ROOT / "src" / "qdsketch"


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, anywhere in its source. ``from
    pkg import name`` counts ``pkg.name`` where that is a module, else ``pkg``."""
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from . import x, from ..data import y
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in files and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_the_finder_sees_a_cycle_made_by_a_lazy_import(tmp_path):
    """The instrument can fail: a package whose only cycle hides in a function."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "low.py").write_text("def f():\n    from pkg.sub import top\n")
    (pkg / "sub" / "top.py").write_text("from .. import low\n")
    (pkg / "alone.py").write_text("import pkg.low\n")
    graph = import_graph(pkg)
    assert graph["pkg.sub.top"] == {"pkg.low"} and graph["pkg.low"] == {"pkg.sub.top"}
    assert cycles(graph) == [["pkg.low", "pkg.sub.top"]]


def test_no_module_of_the_package_takes_part_in_a_cycle():
    graph = import_graph(PACKAGE)
    assert len(graph) > 30 and graph["qdsketch.data.shards"] >= {"qdsketch.data.plan", "qdsketch.data.dataset"}
    assert cycles(graph) == []


def test_the_data_side_never_reaches_up_into_the_model_or_the_cli():
    """qdsketch.data is the bottom of the package: it needs neither torch's side nor the CLI's."""
    graph = import_graph(PACKAGE)
    above = {"qdsketch.cli", "qdsketch.model", "qdsketch.train", "qdsketch.checkpoint", "qdsketch.sample"}
    for name, targets in graph.items():
        if name.startswith("qdsketch.data"):
            assert not targets & above, name
