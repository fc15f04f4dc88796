"""The package's imports run one way: no module imports, directly or through others, a module that imports it.

Every ``import`` and ``from ... import`` in ``embedtool/`` and ``cli/`` (installed as ``embedtool_cli``) counts,
wherever it stands: at module level, under ``if TYPE_CHECKING:``, or inside a function, where an import placed to
break a cycle at run time would otherwise hide it. Only the package's own modules are nodes. A parent package's
``__init__`` is not an edge of its submodules (Python runs it first, whatever imports what).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Importable name -> source folder (pyproject.toml's package-dir: cli/ installs as embedtool_cli).
PACKAGES = {"embedtool": ROOT / "embedtool", "embedtool_cli": ROOT / "cli"}


def modules() -> dict[str, Path]:
    """Every module of the packages: dotted name -> file (a package by its ``__init__.py``)."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The dotted module a ``from`` import names, its dots resolved against ``module`` (in file ``path``)."""
    if node.level == 0:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(module: str, path: Path, known: set[str]) -> dict[str, int]:
    """The package modules ``module`` imports, anywhere in its file: name -> line of the first such import."""
    edges: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, path, node)
            # ``from pkg import name``: the submodule pkg.name when there is one, else pkg itself.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in targets:
            while target and target not in known:  # ``import embedtool.formats.text.x``: the longest known prefix
                target = target.rpartition(".")[0]
            if target and target != module:
                edges.setdefault(target, node.lineno)
    return edges


def import_graph() -> dict[str, dict[str, int]]:
    found = modules()
    return {name: imports(name, path, set(found)) for name, path in found.items()}


def cycles(graph: dict[str, dict[str, int]]) -> list[tuple[set[str], list[str]]]:
    """Each group of modules that import one another (a strongly connected component, Tarjan's algorithm), with
    one of its shortest cycles as ``[a, b, ..., a]``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(v: str) -> None:  # recursive: the graph is a few dozen modules deep at most
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    found = []
    for group in groups:  # a shortest way back to the group's first module, through the group only
        start = min(group)
        paths = {start: [start]}
        queue = [start]
        while queue:
            v = queue.pop(0)
            for w in sorted(graph[v]):
                if w == start:
                    found.append((group, paths[v] + [start]))
                    queue = []
                    break
                if w in group and w not in paths:
                    paths[w] = paths[v] + [w]
                    queue.append(w)
    return found


def _shown(group: set[str], cycle: list[str], graph: dict[str, dict[str, int]]) -> str:
    files = modules()
    steps = [f"{a} -> {b}  ({files[a].relative_to(ROOT)}:{graph[a][b]})" for a, b in zip(cycle, cycle[1:])]
    return f"{len(group)} modules import one another: {', '.join(sorted(group))}\n  for one:\n    " + "\n    ".join(steps)


def test_imports_have_no_cycle():
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(_shown(group, cycle, graph) for group, cycle in found)


def test_the_graph_sees_imports_inside_functions():
    """The walk reaches function bodies: ``embedding_bag`` imports the GPU module only when it runs there."""
    graph = import_graph()
    assert "embedtool.gpu" in graph["embedtool.bag"]


def test_every_module_imports_alone():
    """``python -c 'import X'`` works for every module: none depends on another having been imported first."""
    import subprocess
    import sys

    for name in modules():
        run = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True, cwd=ROOT)
        assert run.returncode == 0, f"import {name}:\n{run.stderr[-2000:]}"
