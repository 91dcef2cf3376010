"""Entry points: the programs of a project, so that seeding is judged per program.

One ``np.random.seed`` in one script does not seed another script, and a seed in a test
does not seed the training code (issue 14). So the seeding and determinism rules judge
each *entry point* with the project modules it imports (transitively; local imports
only), and a finding is anchored in the entry point's file, where a suppression comment
stays put when files are added. An entry point is:

- a module with ``if __name__ == "__main__":``, or a script that runs code at module
  level (a bare call or a loop), that no other module of the project imports;
- a console script of ``pyproject.toml`` (``[project.scripts]``), a ``__main__.py``;
- a notebook.

Tests (``tests/``, ``test/``, ``test_*.py``, ``*_test.py``, ``conftest.py``) are never
entry points and never count. Code that loads modules by name from its configuration
(``hydra.utils.instantiate``, ``importlib.import_module(name)``) may run any module of
the project, so such an entry point's closure is the whole code set. A project without
any entry point is judged as one program (today's folder-wide judgement), and so are the
modules that no entry point runs (a script whose top level only assigns, ``x =
np.random.rand(3)``), except in a library (a ``pyproject.toml`` ``[project]``,
``setup.py`` or ``setup.cfg``, and every such module inside a package): its caller seeds,
so nothing is judged there.

    >>> is_test("tests/test_train.py"), is_test("train.py")
    (True, False)
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from reprolock.audit.context import AuditContext
from reprolock.audit.pyindex import FileFacts, ModuleRef

# calls that import project modules named by configuration: the static imports say
# nothing about what runs
_LOADS_BY_NAME = frozenset({
    "hydra.utils.instantiate", "hydra.utils.call", "hydra.utils.get_class",
    "hydra.utils.get_method", "hydra.utils.get_object", "importlib.import_module"})
_NOT_PROGRAMS = frozenset({"setup.py", "conftest.py", "noxfile.py", "fabfile.py"})


@dataclass(frozen=True)
class EntryPoint:
    path: str
    line: int  # where its findings are anchored: the guard, else the first line
    kind: str  # how it was recognised, for the message


@dataclass(frozen=True)
class Unit:
    """One program: an entry point and the modules it imports. ``entry`` is None for a
    project without entry points, judged as a whole."""

    entry: EntryPoint | None
    files: tuple[FileFacts, ...]


def is_test(path: str) -> bool:
    parts = PurePosixPath(path).parts
    name = parts[-1] if parts else path
    return any(p in ("tests", "test") for p in parts[:-1]) or name == "conftest.py" \
        or name.startswith("test_") or name.endswith("_test.py")


def units(ctx: AuditContext) -> tuple[Unit, ...]:
    """The programs of the project (none for a library)."""
    python = {f.path: f for f in ctx.python if not is_test(f.path)}
    modules = _Modules(python)
    edges = {path: modules.imports_of(facts) for path, facts in python.items()}
    dynamic = {path for path, facts in python.items()
               if any(_loads_by_name(call.name, call.node.args) for call in facts.calls)}
    closures = _Closures(edges, dynamic, frozenset(
        p for p in python if PurePosixPath(p).name not in _NOT_PROGRAMS))
    entries = _entry_points(ctx, python, modules, edges, closures)
    found = [Unit(e, tuple(python[p] for p in sorted(closures.of(e.path)))) for e in entries]
    run = {f.path for unit in found for f in unit.files}
    rest = {p: f for p, f in python.items()
            if p not in run and PurePosixPath(p).name not in _NOT_PROGRAMS}
    if rest and not _library(ctx, rest):
        found.append(Unit(None, tuple(rest.values())))
    return tuple(found)


def _loads_by_name(name: str, args: list[ast.expr]) -> bool:
    if name == "importlib.import_module":
        return bool(args) and not isinstance(args[0], ast.Constant)
    return name in _LOADS_BY_NAME


class _Closures:
    """What each module runs: itself and what it imports, transitively (everything when
    one of them loads modules by name)."""

    def __init__(self, edges: dict[str, set[str]], dynamic: set[str],
                 everything: frozenset[str]) -> None:
        self.edges, self.dynamic, self.everything = edges, dynamic, everything
        self.cache: dict[str, frozenset[str]] = {}

    def of(self, path: str) -> frozenset[str]:
        if path not in self.cache:
            seen = {path}
            queue = [path]
            while queue:
                for nxt in self.edges.get(queue.pop(), ()):
                    if nxt not in seen:
                        seen.add(nxt)
                        queue.append(nxt)
            self.cache[path] = self.everything if seen & self.dynamic else frozenset(seen)
        return self.cache[path]


def _entry_points(ctx: AuditContext, python: dict[str, FileFacts], modules: _Modules,
                  edges: dict[str, set[str]], closures: _Closures) -> list[EntryPoint]:
    fixed = {e.path: e for e in _console_scripts(ctx, modules)}
    for path, facts in python.items():
        if path.endswith(".ipynb"):
            fixed.setdefault(path, EntryPoint(path, 1, "notebook"))
        elif PurePosixPath(path).name == "__main__.py":
            fixed.setdefault(path, EntryPoint(path, facts.main_guard or 1, "__main__.py"))
    imported = {target for source, targets in edges.items() for target in targets
                if target != source}
    scripts = [_script(facts) for path, facts in python.items()
               if path not in fixed and path not in imported]
    found = [s for s in scripts if s is not None]
    # a runnable module that another program runs is judged as part of that program
    # (its guard is a smoke test), unless the two run each other
    kept = [s for s in found if not any(
        other.path != s.path and s.path in closures.of(other.path)
        and other.path not in closures.of(s.path) for other in found)]
    return sorted([*fixed.values(), *kept], key=lambda e: e.path)


def _script(facts: FileFacts) -> EntryPoint | None:
    path = PurePosixPath(facts.path)
    if path.name in _NOT_PROGRAMS or "docs" in path.parts[:-1]:
        return None
    if facts.main_guard:
        return EntryPoint(facts.path, facts.main_guard, "__main__ guard")
    if facts.runs_at_top:
        return EntryPoint(facts.path, 1, "script")
    return None


def _console_scripts(ctx: AuditContext, modules: _Modules) -> list[EntryPoint]:
    """``[project.scripts]`` of pyproject.toml: ``name = "pkg.module:function"``."""
    project = _pyproject(ctx).get("project")
    scripts = project.get("scripts") if isinstance(project, dict) else None
    found = []
    for name, target in (scripts.items() if isinstance(scripts, dict) else ()):
        module = target.split(":")[0].strip() if isinstance(target, str) else ""
        for path in modules.resolve(ModuleRef(0, module), "") if module else ():
            if path.endswith(module.replace(".", "/") + ".py") \
                    or path.endswith(module.replace(".", "/") + "/__init__.py"):
                found.append(EntryPoint(path, 1, f"console script {name}"))
    return found


def _pyproject(ctx: AuditContext) -> dict[str, object]:
    source = ctx.file("pyproject.toml")
    text = source.text() if source is not None else None
    if text is None:
        return {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return {}


def _library(ctx: AuditContext, python: dict[str, FileFacts]) -> bool:
    """A package that others install and call: nothing of it runs by itself."""
    packaged = isinstance(_pyproject(ctx).get("project"), dict) \
        or any(ctx.file(name) is not None for name in ("setup.py", "setup.cfg"))
    paths = [p for p in python if PurePosixPath(p).name not in _NOT_PROGRAMS]
    return packaged and bool(paths) and all(
        str(PurePosixPath(p).parent / "__init__.py") in python
        and PurePosixPath(p).parent != PurePosixPath(".") for p in paths)


class _Modules:
    """The project's Python files by directory, to resolve imports without touching the
    disk. Only audited files count: a module outside the code set is not the project's."""

    def __init__(self, python: Iterable[str]) -> None:
        self.files = frozenset(python)
        self.dirs: dict[str, list[str]] = {}
        for path in sorted(self.files):
            parent = PurePosixPath(path).parent
            self.dirs.setdefault(str(parent), []).append(path)
            for ancestor in parent.parents:
                self.dirs.setdefault(str(ancestor), [])

    def imports_of(self, facts: FileFacts) -> set[str]:
        here = str(PurePosixPath(facts.path).parent)
        found: set[str] = set()
        for ref in facts.module_refs:
            found |= self.resolve(ref, here)
        return found

    def resolve(self, ref: ModuleRef, here: str) -> set[str]:
        """The project files ``ref`` runs, looked up from ``here``'s folder (a script's
        folder is on sys.path), its parents and ``src``; a relative import from its
        package only."""
        if ref.level:
            base = PurePosixPath(here)
            for _ in range(ref.level - 1):
                base = base.parent
            roots = [str(base)]
        else:
            here_path = PurePosixPath(here)
            roots = [here, *(str(p) for p in here_path.parents), "src"]
        names = [".".join(p for p in (ref.module, name) if p) for name in ref.names] \
            or [ref.module]
        for root in roots:
            found = set().union(*(self._from_root(root, n.split(".")) for n in names if n))
            if found:
                return found
        return set()

    def _from_root(self, root: str, parts: list[str]) -> set[str]:
        """``a.b.c`` from ``root``: the packages' ``__init__.py`` on the way and the
        longest prefix that is a module or a package (a package without
        ``__init__.py``, an excerpt or a namespace package, stands for its modules)."""
        base = PurePosixPath(root)
        found: set[str] = set()
        for depth in range(1, len(parts) + 1):
            folder = str(base.joinpath(*parts[:depth]))
            module = folder + ".py"
            if module in self.files:
                return found | {module}
            if folder not in self.dirs:
                break
            init = folder + "/__init__.py"
            if init in self.files:
                found.add(init)
            elif depth == len(parts) or not self._known(base.joinpath(*parts[:depth + 1])):
                found.update(self.dirs[folder])
        return found

    def _known(self, path: PurePosixPath) -> bool:
        """``path`` is a package or a module of the project."""
        return str(path) in self.dirs or f"{path}.py" in self.files
