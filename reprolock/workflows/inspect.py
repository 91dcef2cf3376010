"""The inspect workflow: the code set, its tree digest and git state, and its imports
against the lock (when there is one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reprolock._internal.cache import default_cache_dir
from reprolock.config import Config
from reprolock.errors import LockFileError
from reprolock.inspection.codeset import CodeSet, collect_code
from reprolock.inspection.imports import ImportReport, scan_imports
from reprolock.lock.io import read_lock


@dataclass(frozen=True)
class Inspection:
    root: str
    code: CodeSet
    imports: ImportReport
    provided: dict[str, str | None]  # third-party module -> locked distribution
    locked: bool  # there is a readable lock

    def to_json(self, *, files: bool) -> dict[str, Any]:
        code = self.code
        data: dict[str, Any] = {
            "root": self.root,
            "code": {"treeDigest": code.tree_digest, "files": len(code.files),
                     "bytes": code.total_size,
                     "git": None if code.git is None else {"commit": code.git.commit,
                                                           "dirty": code.git.dirty},
                     "untracked": list(code.untracked), "warnings": list(code.warnings)},
            "imports": dict(self.provided),
            "ownModules": list(self.imports.own_modules),
            "syntaxErrors": [{"path": p, "line": n, "message": m}
                             for p, n, m in self.imports.syntax_errors],
        }
        if files:
            data["code"]["fileList"] = [
                {"path": f.path, "sha256": f.sha256, "size": f.size,
                 "executable": f.executable} for f in code.files]
        return data


def inspect_project(config: Config) -> Inspection:
    code = collect_code(config)
    imports = scan_imports(config.root, code)
    try:
        lock = read_lock(config.lock_path, cache_dir=default_cache_dir())
    except LockFileError:
        return Inspection(str(config.root), code, imports,
                          {m: None for m in imports.third_party()}, False)
    provided = {m: p.name for p in lock.packages for m in p.modules}
    return Inspection(str(config.root), code, imports,
                      {m: provided.get(m) for m in imports.third_party()}, True)


__all__ = ["Inspection", "inspect_project"]
