"""The layout and the import graph, read from the code itself.

- No import cycles; rag/ (the pipeline) never reaches up into app/ (the offices), ui/ or evals/.
- rag/ reads as the pipeline's stages, with few top-level modules, and no module of rag/ or app/ is oversized.

Every `import` counts, including those inside functions (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("rag", "app", "evals", "ui")
MAX_LINES = 500  # a module longer than this does more than one job
MAX_TOP_LEVEL = 12  # rag/*.py: the records, errors and text helpers, prompts, present, engine; the rest in stages


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (`from a import b` counts as a.b when b is a module)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                    for a in node.names
                ]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as a path that comes back to its start, or [] when there is none.

    >>> find_cycle({"a": {"b"}, "b": {"a"}, "c": set()})
    ['a', 'b', 'a']
    >>> find_cycle({"a": {"b"}, "b": set()})
    []
    """
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return []


def test_the_graph_is_read_from_real_imports():
    graph = import_graph()
    assert "rag.documents" in graph["rag.engine"] and "evals.scoring" in graph["evals.runner"]
    assert "rag.present" in graph["ui.turn"] and "ui.turn" in graph["ui.chat"]


def test_no_import_cycles():
    assert find_cycle(import_graph()) == []


def test_rag_never_imports_app_ui_evals_or_streamlit():
    modules = _modules()
    for name, deps in import_graph().items():
        if name.startswith("rag"):
            assert not {d for d in deps if d.split(".")[0] in ("app", "ui", "evals")}, (name, deps)
            source = modules[name].read_text(encoding="utf-8")
            assert "import streamlit" not in source and "from streamlit" not in source, name


def test_rag_is_laid_out_by_stage():
    stages = {p.name for p in (ROOT / "rag").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert {"load", "embed", "index", "retrieve", "answer", "cite"} <= stages
    top = sorted(p.name for p in (ROOT / "rag").glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL, top


def test_no_module_of_rag_or_app_is_oversized():
    long = {
        name: n
        for name, path in _modules().items()
        if name.split(".")[0] in ("rag", "app")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}
