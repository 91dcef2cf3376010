"""The files an audit reads: the code set that goes into the image, read safely.

The selection is ``collect_code``'s (same candidates, same excludes and includes), but
without its hashing: ``collect_code`` hashes every file and raises on the first one it
cannot read, while the audit must report such a file and go on (a test keeps the two
selections equal).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from reprolock.audit.model import Finding, Severity
from reprolock.config import Config

MAX_BYTES = 4 * 1024 * 1024  # larger files are data or weights, not code: reported, not read
_SNIFF = 8192


@dataclass(frozen=True)
class SourceFile:
    """One regular file of the code set. ``data`` is None when it was not read."""

    path: str
    data: bytes | None
    binary: bool = False

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    def text(self) -> str | None:
        if self.data is None or self.binary:
            return None
        return self.data.decode("utf-8", errors="replace")


def code_paths(config: Config) -> list[str]:
    """The paths ``collect_code(config)`` would choose, sorted, without reading them."""
    import pathspec

    from reprolock.inspection.codeset import (
        ALWAYS_EXCLUDED,
        LOCK_COMPANIONS,
        _git_files,
        _walk,
    )

    candidates = _git_files(config.root)
    if candidates is None:
        candidates = _walk(config.root)
    lock_files = [f"/{config.lockfile}", f"/{config.lockfile}.sig", *LOCK_COMPANIONS]
    ignore = pathspec.GitIgnoreSpec.from_lines(
        [*ALWAYS_EXCLUDED, *lock_files, *config.code_exclude])
    include = (pathspec.GitIgnoreSpec.from_lines(config.code_include)
               if config.code_include else None)
    return sorted(p for p in candidates if not ignore.match_file(p)
                  and (include is None or include.match_file(p)))


def read_sources(root: Path, paths: Iterable[str],
                 wanted_text: set[str]) -> tuple[list[SourceFile], list[Finding]]:
    """Read each regular file (links are kept as links in the image: not followed).

    ``wanted_text`` names the files the audit must parse (Python, Dockerfiles,
    requirement files): for those, binary or non-UTF-8 content is a finding.
    """
    files: list[SourceFile] = []
    problems: list[Finding] = []
    for rel in paths:
        source, problem = read_source(root, rel, must_be_text=rel in wanted_text)
        if source is not None:
            files.append(source)
        if problem is not None:
            problems.append(problem)
    return files, problems


def read_source(root: Path, rel: str, *,
                must_be_text: bool = False) -> tuple[SourceFile | None, Finding | None]:
    full = root / rel
    try:
        info = full.lstat()
    except FileNotFoundError:
        return None, None  # tracked by git but deleted: not in the image either
    except OSError as exc:
        return None, _unreadable(rel, exc)
    if not stat.S_ISREG(info.st_mode):
        return None, None  # a symlink (even a loop) goes into the image as a link
    if info.st_size > MAX_BYTES:
        return SourceFile(rel, None), Finding(
            "RL003", Severity.INFO, rel, 0,
            f"not audited: {info.st_size} bytes, over the audit's {MAX_BYTES} byte limit")
    try:
        data = _read(full)
    except OSError as exc:
        return SourceFile(rel, None), _unreadable(rel, exc)
    binary = b"\0" in data[:_SNIFF]
    # Python declares its own encoding (PEP 263): ast.parse judges those files
    if must_be_text and (binary or (not rel.endswith(".py") and not _utf8(data))):
        what = "binary" if binary else "not UTF-8 text"
        return SourceFile(rel, data, binary=True), Finding(
            "RL003", Severity.INFO, rel, 0, f"not audited: the file is {what}")
    return SourceFile(rel, data, binary=binary), None


def _read(path: Path) -> bytes:
    # O_NOFOLLOW: the file was a regular file at lstat; never follow a link swapped in
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as handle:
        return handle.read(MAX_BYTES + 1)


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _unreadable(rel: str, exc: OSError) -> Finding:
    reason = exc.strerror or exc.__class__.__name__
    return Finding("RL002", Severity.WARNING, rel, 0, f"cannot read the file ({reason}); "
                   "its content was not audited but it would go into the image")
