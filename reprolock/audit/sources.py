"""The files an audit reads: the code set that goes into the image, read safely.

The selection is ``collect_code``'s, by the same function (``select_code``: the same
candidates, excludes, includes and never-code directories), but the files are read here
without its hashing: ``collect_code`` hashes every file and raises on the first one it
cannot read, while the audit must report such a file and go on.
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


def audited_dockerfile(path: str) -> bool:
    """A Dockerfile as the audit reads it: ``is_dockerfile`` (Dockerfile, Dockerfile.*,
    *.Dockerfile, Containerfile) and Dockerfile-* (Dockerfile-gpu), less the files the
    audit reads as something else (``dockerfile.py`` matches Dockerfile.*)."""
    from reprolock.inspection.dockerfile import is_dockerfile

    name = PurePosixPath(path).name.lower()
    if name.endswith((".py", ".ipynb", ".sh", ".bash")):
        return False
    return is_dockerfile(path) or name.startswith(("dockerfile-", "containerfile-"))


def code_paths(config: Config) -> list[str]:
    """The paths ``collect_code(config)`` would choose, sorted, without reading them."""
    from reprolock.inspection.codeset import select_code

    return list(select_code(config).paths)


def read_sources(root: Path, paths: Iterable[str],
                 wanted_text: set[str]) -> tuple[list[SourceFile], list[Finding]]:
    """Read each regular file (links are kept as links in the image: not followed).

    ``wanted_text`` names the files the audit must parse (Python, Dockerfiles,
    requirement files): for those, binary or non-UTF-8 content is a finding, and so is a
    link whose target the audit does not read in the code set (RL002): it is not hidden.
    """
    files: list[SourceFile] = []
    problems: list[Finding] = []
    links: list[str] = []
    for rel in paths:
        source, problem = read_source(root, rel, must_be_text=rel in wanted_text)
        if source is not None:
            files.append(source)
        if problem is not None:
            problems.append(problem)
        elif source is None and rel in wanted_text and os.path.islink(root / rel):
            links.append(rel)
    read = {f.path for f in files if f.data is not None}
    problems += [p for p in (_link_problem(root, rel, read) for rel in links) if p]
    return files, problems


def _link_problem(root: Path, rel: str, read: set[str]) -> Finding | None:
    """A linked source file is audited at its target when the target is in the code set;
    otherwise the audit says that it did not read it."""
    try:
        target = (root / rel).resolve(strict=True)
        inside = target.relative_to(root.resolve()).as_posix()
    except (OSError, RuntimeError):  # a loop, or a link to nothing
        return Finding("RL002", Severity.WARNING, rel, 0, "a symbolic link that does not "
                       "resolve (a loop or a missing target): not audited; the image holds "
                       "the broken link")
    except ValueError:  # outside the project
        inside = None
    if inside in read:
        return None
    where = inside if inside is not None else os.readlink(root / rel)
    return Finding("RL002", Severity.WARNING, rel, 0, f"a symbolic link to {where}, which "
                   "is not in the code set: not audited, and the image holds only the link")


def read_source(root: Path, rel: str, *, must_be_text: bool = False,
                follow_links: bool = False) -> tuple[SourceFile | None, Finding | None]:
    """One file, or why it was not read. A link is not followed (the image holds the link
    itself) unless ``follow_links``: files read only on the host, such as lock inputs."""
    full = root / rel
    if not follow_links and _through_link(root, rel):
        return None, Finding(
            "RL002", Severity.WARNING, rel, 0, "reached through a symbolic link to a "
            "directory: not audited, and 'reprolock build' refuses it (its content is not "
            "the project's)")
    try:
        info = full.lstat()
        if follow_links and stat.S_ISLNK(info.st_mode):
            full = full.resolve(strict=True)
            info = full.lstat()
    except FileNotFoundError:
        return None, None  # tracked by git but deleted: not in the image either
    except (OSError, RuntimeError) as exc:
        if isinstance(exc, RuntimeError):  # a link loop (Python < 3.13 raises this)
            exc = OSError(40, "Too many levels of symbolic links")
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


def _through_link(root: Path, rel: str) -> bool:
    """``rel``'s directory is reached through a link, so its files come from elsewhere."""
    parent = os.path.dirname(rel)
    if not parent:
        return False
    real_root = os.path.realpath(root)
    return os.path.realpath(os.path.join(real_root, parent)) != os.path.join(real_root, parent)


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
