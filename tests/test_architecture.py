"""The package's shape (issue 12): no import cycles, no import from a lower layer to a
higher one, no function over 60 lines, and a CLI that only wires.

The import graph is read with ``ast`` from the source (every import, at module level or
inside a function; those under ``if TYPE_CHECKING`` are left out, as they never run).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "reprolock"

#: lowest first; a module may import from its own layer and the ones below it
LAYERS: tuple[tuple[str, ...], ...] = (
    ("reprolock", "reprolock._internal", "reprolock.errors", "reprolock.schemas",
     "reprolock.target"),
    ("reprolock.config", "reprolock.oci"),
    ("reprolock.lock", "reprolock.index", "reprolock.image", "reprolock.inspection",
     "reprolock.runtime", "reprolock.signing", "reprolock.sbom", "reprolock.resolver",
     "reprolock.engine", "reprolock.jobs"),
    ("reprolock.imagebuild", "reprolock.output"),
    ("reprolock.audit",),
    ("reprolock.workflows", "reprolock.verify"),
    ("reprolock.cli", "reprolock._entry", "reprolock.__main__"),
)


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The module that ``name`` (a module, or a name inside one) is."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _type_only(tree: ast.Module) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for n in ast.walk(node))
    return skipped


def _imports(module: str, path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _type_only(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            owner = _owner(name) if name.startswith("reprolock") else None
            if owner is not None and owner != module:
                yield owner


GRAPH = {m: set(_imports(m, p)) for m, p in MODULES.items()}


def _layer(module: str) -> int:
    best, found = -1, -1
    for level, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best:
                best, found = len(name), level
    return found


def test_every_module_has_a_layer() -> None:
    assert [m for m in MODULES if _layer(m) < 0] == []


def test_no_import_goes_up_a_layer() -> None:
    upward = sorted(f"{a} -> {b}" for a, targets in GRAPH.items() for b in targets
                    if _layer(b) > _layer(a))
    assert upward == []


def test_no_import_cycles() -> None:
    """Tarjan's strongly connected components: every one must be a single module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # the graph is ~120 modules: recursion is fine
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in GRAPH[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in GRAPH:
        if node not in index:
            visit(node)
    assert cycles == []


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=str)
def test_no_function_over_60_lines(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.end_lineno is not None and node.end_lineno - node.lineno + 1 > 60]
    assert long == []


def test_the_cli_imports_no_domain_module_but_workflows() -> None:
    """cli.py parses and prints: what it imports from reprolock is a workflow, the
    config loader, the console helpers or a vocabulary (errors, registries)."""
    allowed = ("reprolock", "reprolock.workflows", "reprolock.config", "reprolock.errors",
               "reprolock._internal", "reprolock.resolver", "reprolock.output",
               "reprolock.sbom", "reprolock.oci.compress", "reprolock.imagebuild.builder",
               "reprolock.signing.keys", "reprolock.lock.check", "reprolock.audit.command")
    used = sorted(m for m in GRAPH["reprolock.cli"]
                  if not any(m == a or m.startswith(a + ".") for a in allowed))
    assert used == []
