"""The third-party modules a project imports, found with ``ast`` (no code is run).

The one import scanner: ``init``, ``lock`` and ``inspect`` use it through
:func:`scan_files`, and the audit's one-pass index (``reprolock.audit.pyindex``) through
:func:`import_sites` and :func:`third_party_report`, so both see the same sites.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from reprolock.inspection.codeset import CodeSet


@dataclass(frozen=True)
class ImportSite:
    module: str  # top-level name
    path: str
    line: int
    optional: bool  # inside try/except ImportError, or under if TYPE_CHECKING


@dataclass(frozen=True)
class ImportReport:
    sites: tuple[ImportSite, ...]
    own_modules: tuple[str, ...]
    syntax_errors: tuple[tuple[str, int, str], ...]

    def third_party(self) -> dict[str, list[ImportSite]]:
        found: dict[str, list[ImportSite]] = {}
        for site in self.sites:
            found.setdefault(site.module, []).append(site)
        return dict(sorted(found.items()))


@dataclass(frozen=True)
class Unprovided:
    module: str
    first: ImportSite


# Import names whose distribution on PyPI is called otherwise: the common ones of ML code.
# Only a proposal for 'reprolock init' to write; the lock maps modules from the wheels.
DISTRIBUTION_NAMES = {
    "Bio": "biopython", "Crypto": "pycryptodome", "OpenSSL": "pyopenssl",
    "PIL": "pillow", "attr": "attrs", "bs4": "beautifulsoup4", "cv2": "opencv-python",
    "dateutil": "python-dateutil", "dotenv": "python-dotenv", "faiss": "faiss-cpu",
    "fitz": "pymupdf", "git": "gitpython", "hydra": "hydra-core", "jwt": "pyjwt",
    "mpl_toolkits": "matplotlib", "pkg_resources": "setuptools", "skimage": "scikit-image",
    "sklearn": "scikit-learn", "umap": "umap-learn", "yaml": "pyyaml", "zmq": "pyzmq",
}


def distribution_for(module: str) -> str:
    """The PyPI distribution that most likely provides the top-level ``module``."""
    return DISTRIBUTION_NAMES.get(module, module)


def scan_imports(root: Path, code: CodeSet) -> ImportReport:
    return scan_files(root, [f.path for f in code.files if f.link_target is None])


def scan_files(root: Path, paths: Iterable[str]) -> ImportReport:
    """The imports of the ``.py`` files among ``paths`` (relative to ``root``)."""
    py_files = [p for p in paths if p.endswith(".py")]
    sites: list[ImportSite] = []
    errors: list[tuple[str, int, str]] = []
    for rel in py_files:
        try:
            tree = ast.parse((root / rel).read_bytes(), filename=rel)
        except SyntaxError as exc:
            errors.append((rel, exc.lineno or 0, exc.msg))
            continue
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the source
            errors.append((rel, 0, str(exc)))
            continue
        except (RecursionError, MemoryError):  # a hostile file must not stop the scan
            errors.append((rel, 0, "nested too deeply (or too large) for Python to parse"))
            continue
        sites += import_sites(tree, rel)
    return third_party_report(py_files, sites, errors)


def third_party_report(py_files: Iterable[str], sites: Iterable[ImportSite],
                       syntax_errors: Iterable[tuple[str, int, str]] = ()) -> ImportReport:
    """The ``sites`` that name neither the standard library nor the project's own modules
    (those of ``py_files``): what the environment must provide."""
    own = own_modules(py_files)
    kept = [s for s in sites if s.module not in own and s.module not in sys.stdlib_module_names
            and s.module not in ("__future__", "__main__")]
    return ImportReport(tuple(kept), tuple(sorted(own)), tuple(syntax_errors))


def own_modules(py_files: Iterable[str]) -> set[str]:
    """Top-level names the project itself provides: ``train.py``; a folder (also under
    ``src/``) with Python files of its own or a package (``__init__.py``) inside; and, for
    a script in a folder that is not a package, its siblings by their bare names.

    A folder whose only Python files sit deeper, in folders that are not packages (a
    ``datasets/`` data folder with ``datasets/raw/prepare.py``), is no importable module,
    so it does not hide the distribution of that name (Hugging Face ``datasets``).
    """
    files = list(py_files)
    packages = {rel.rpartition("/")[0] for rel in files if rel.endswith("/__init__.py")}
    # src/ with an __init__.py is itself the package ("import src.models"), no src layout
    own: set[str] = {"src"} if "src" in packages else set()
    for rel in files:
        parts = rel.split("/")
        if parts[0] == "src" and len(parts) > 1:
            parts = parts[1:]
        if len(parts) == 1:
            own.add(parts[0][:-3])
        elif len(parts) == 2 or rel.rpartition("/")[0] in packages:
            own.add(parts[0])
        if len(parts) > 1 and rel.rpartition("/")[0] not in packages:
            own.add(parts[-1][:-3])
    return own


def import_sites(tree: ast.AST, path: str) -> list[ImportSite]:
    """Every absolute import of a parsed file, in line order (relative imports name the
    project's own code). Only statements are walked: an import is never an expression."""
    found: list[ImportSite] = []
    _collect(tree, path, found, optional=False)
    return sorted(found, key=lambda site: site.line)


def _collect(node: ast.AST, path: str, found: list[ImportSite], *, optional: bool) -> None:
    if isinstance(node, ast.Import | ast.ImportFrom):
        found += _sites_of(node, path, optional=optional)
        return
    # only a guarded body is optional: not its else, except or finally blocks
    guarded = {id(stmt) for stmt in node.body} \
        if isinstance(node, ast.Try | ast.If) and _guards_imports(node) else set()
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.stmt | ast.excepthandler | ast.match_case):
            _collect(child, path, found, optional=optional or id(child) in guarded)


def _sites_of(node: ast.Import | ast.ImportFrom, path: str, *,
              optional: bool) -> list[ImportSite]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif node.level == 0 and node.module:
        names = [node.module]
    else:
        return []
    return [ImportSite(module, path, node.lineno, optional) for name in names
            for module in (name.split(".")[0], *_needs(name))]


# Submodules that import a distribution of their own, which the code never names:
# torch.utils.tensorboard fails without tensorboard (karpathy/makemore, a first try).
IMPORTED_BY_SUBMODULE = {"torch.utils.tensorboard": "tensorboard"}


def _needs(name: str) -> tuple[str, ...]:
    return tuple(needed for sub, needed in IMPORTED_BY_SUBMODULE.items()
                 if name == sub or name.startswith(f"{sub}."))


def _guards_imports(node: ast.Try | ast.If) -> bool:
    if isinstance(node, ast.Try):
        return any(_catches_import_error(h) for h in node.handlers)
    return _is_type_checking(node.test)


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError",
                                                     "Exception") for n in names)


def unprovided(report: ImportReport, provided: Mapping[str, str]) -> list[Unprovided]:
    """Imports no locked distribution provides (optional imports are left out)."""
    missing = []
    for module, sites in report.third_party().items():
        if module in provided:
            continue
        required = [s for s in sites if not s.optional]
        if required:
            missing.append(Unprovided(module, required[0]))
    return missing
