"""The shape of the code: imports flow one way through the stages, never in a circle.

The import graph is read from the source with ``ast`` (every ``import``, at the top of a
module or inside a function, since a deferred import is still a dependency), so the test
needs nothing of rackopt to be importable.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("optimizer", "models")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _imports(path: Path, known: set[str]) -> set[str]:
    """Modules of ours that ``path`` imports (``from a.b import c`` counts ``a.b.c`` when
    ``c`` is a module, else ``a.b``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name in known}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(path, known) - {name} for name, path in modules.items()}


def stage(module: str) -> str:
    """The stage a module belongs to: ``optimizer.<subpackage>`` or ``models``."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "optimizer" and len(parts) > 1 else parts[0]


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_cycle_finder_finds_a_planted_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_module_imports_itself_back():
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_stages_import_one_way():
    stages: dict[str, set[str]] = {}
    for module, imported in _graph().items():
        stages.setdefault(stage(module), set()).update(
            stage(other) for other in imported if stage(other) != stage(module)
        )
    cycle = _cycle(stages)
    assert cycle is None, "stages import each other: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("package", ["optimizer.verify", "optimizer.instance", "optimizer.site"])
def test_checker_and_inputs_import_no_solver(package):
    """The independent checker must not lean on the formulation it checks, and nothing
    upstream of the model may need the solver stack."""
    graph = _graph()
    reached: set[str] = set()
    todo = [m for m in graph if stage(m) == package]
    while todo:
        module = todo.pop()
        if module not in reached:
            reached.add(module)
            todo.extend(graph[module])
    assert not {stage(m) for m in reached} & {"models", "optimizer.solve"}
    for module in (m for m in reached if stage(m) == package):
        text = _modules()[module].read_text(encoding="utf-8")
        tree = ast.parse(text)
        names = {
            a.name.split(".")[0]
            for n in ast.walk(tree)
            if isinstance(n, ast.Import)
            for a in n.names
        }
        names |= {
            n.module.split(".")[0]
            for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and n.module and n.level == 0
        }
        assert not names & {"pyomo", "highspy"}, module
