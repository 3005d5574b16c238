"""The package in floors: each folder imports only the floors below it at run time.

The graph is read from the source (``ast``), not from what happens to be imported:
one node per folder (or top-level module) of ``dropscribe``, one edge per import
of another, imports under ``if TYPE_CHECKING:`` left out (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import dropscribe

PACKAGE = Path(dropscribe.__file__).parent
# The ground floor and what lies beneath it: the shared types, the exceptions, file
# names, descriptor-relative paths, and the transcript's own vocabulary.
GROUND = {"vocab", "errors", "names", "beneath", "transcript", "speakers", "markup"}
# The floors audio/ must never reach up to: it is signal work only.
ABOVE_AUDIO = {
    "transcribe",
    "jobs",
    "ledger",
    "config",
    "loading",
    "outputs",
    "ingest",
    "dispatch",
    "service",
    "commands",
    "ops",
}


def _floor(module: str) -> str | None:
    """The folder (or top-level module) of ``dropscribe`` that ``module`` is in."""
    parts = module.split(".")
    if parts[0] != "dropscribe":
        return None
    return parts[1] if len(parts) > 1 else "dropscribe"


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(tree: ast.AST) -> set[str]:
    """The modules ``tree`` imports at run time (``from dropscribe import x``: ``x``)."""
    found: set[str] = set()

    def walk(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node.test):
            for child in node.orelse:
                walk(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "dropscribe":
                found.update(f"dropscribe.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
        for child in ast.iter_child_nodes(node):
            walk(child)

    walk(tree)
    return found


def folder_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Each folder of the package -> the other folders it imports at run time."""
    graph: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        source = _floor(".".join(parts))
        assert source is not None
        targets = {_floor(m) for m in _imported(ast.parse(path.read_text(), str(path)))}
        graph.setdefault(source, set()).update(
            t for t in targets if t is not None and t not in {source, "__version__"}
        )
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected parts of ``graph`` with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            part = []
            while True:
                top = stack.pop()
                part.append(top)
                if top == node:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_folder_imports_another_in_a_circle():
    """The folder-level runtime import graph of the package has no cycle."""
    assert cycles(folder_graph()) == []


def test_config_imports_only_the_ground_floor():
    """config/ imports nothing at run time but the ground floor's types, errors and names."""
    assert folder_graph()["config"] - GROUND == set()


def test_the_ground_floor_imports_nothing_above_it():
    """vocab/ imports nothing of the package but errors and names."""
    assert folder_graph().get("vocab", set()) - {"errors", "names"} == set()


def test_audio_imports_no_upper_floor():
    """audio/ (signal work only) imports no engine, job, ledger, config or other upper floor."""
    assert folder_graph()["audio"] & ABOVE_AUDIO == set()


def test_the_graph_sees_a_cycle_where_there_is_one(tmp_path):
    """The graph reader finds a circle through two folders, and skips TYPE_CHECKING imports."""
    package = tmp_path / "dropscribe"
    for folder, body in {
        "a": "from dropscribe.b import x\n",
        "b": "from dropscribe import a\n",
        "c": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from dropscribe import a\n",
    }.items():
        (package / folder).mkdir(parents=True)
        (package / folder / "m.py").write_text(body)
    graph = folder_graph(package)
    assert graph["c"] == set()
    assert cycles(graph) == [["a", "b"]]
