"""The file set that goes into the image, and one digest over it.

The tree digest hashes a sorted listing of ``<sha256> <mode> <path>`` lines, so it does
not depend on mtimes, on the order the filesystem lists files, or on the machine.

Symbolic links go into the image as links, never followed, and each must lead to a place
inside the project however it gets there: its target is resolved as the kernel would
(through every link on the way, so ``q -> .`` then ``link -> q/../x`` is seen to leave),
and a file reached through a linked directory (git still lists ``d/f`` after ``d`` became
a link to ``/etc``) is refused rather than read from wherever the link points.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pathspec

from reprolock._internal.files import sha256_file
from reprolock.config import Config
from reprolock.errors import CodeError

ALWAYS_EXCLUDED = [".git/", ".hg/", ".svn/", "__pycache__/", "*.pyc", ".venv/", "venv/",
                   ".tox/", ".nox/", ".mypy_cache/", ".pytest_cache/", ".ruff_cache/",
                   ".reprolock/", "*.egg-info/", ".ipynb_checkpoints/", ".DS_Store"]
# the SBOM, and the content-named copy a lock killed mid-write may leave (core.Locker)
LOCK_COMPANIONS = ("/reprolock.sbom.spdx.json", "/reprolock.sbom.cdx.json",
                   "/reprolock.sbom.*.json")
IGNORE_FILES = (".gitignore", ".dockerignore", ".reprolockignore")


@dataclass(frozen=True)
class CodeFile:
    path: str  # relative, forward slashes
    sha256: str
    size: int
    executable: bool
    link_target: str | None = None

    @property
    def mode(self) -> str:
        if self.link_target is not None:
            return "120000"
        return "100755" if self.executable else "100644"


@dataclass(frozen=True)
class GitState:
    commit: str | None
    dirty: bool


@dataclass(frozen=True)
class CodeSet:
    """The code files, their tree digest and, in a git work tree, its state.

    ``untracked`` names the files git neither tracks nor ignores that the same excludes
    and includes would have chosen: code that exists here but would not go into the image.
    """

    files: tuple[CodeFile, ...]
    tree_digest: str
    git: GitState | None
    untracked: tuple[str, ...] = ()

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)


def collect_code(config: Config, *, extra_excludes: Iterable[str] = ()) -> CodeSet:
    root = config.root
    candidates = _git_files(root)
    untracked: list[str] = []
    if candidates is None:
        candidates = _walk(root)
    else:
        untracked = _git_paths(root, "--others", "--exclude-standard") or []
    excludes = [*ALWAYS_EXCLUDED, *not_code(config), *config.code_exclude, *extra_excludes]
    ignore = pathspec.GitIgnoreSpec.from_lines(excludes)
    include = (pathspec.GitIgnoreSpec.from_lines(config.code_include)
               if config.code_include else None)

    def chosen(paths: Iterable[str]) -> list[str]:
        return [p for p in paths if not ignore.match_file(p)
                and (include is None or include.match_file(p))]

    inside = _Inside(root)
    files = tuple(sorted((f for p in chosen(candidates) if (f := _describe(inside, p))),
                         key=lambda f: f.path))
    return CodeSet(files, tree_digest(files), git_state(root), tuple(sorted(chosen(untracked))))


def not_code(config: Config) -> list[str]:
    """Project files that are never code: the lock and what comes with it describe the
    environment (a relock must not change the code tree), and the run outputs directory
    is what 'reprolock run' writes (a run must not change it either)."""
    found = [f"/{config.lockfile}", f"/{config.lockfile}.sig", *LOCK_COMPANIONS]
    outputs = config.run_outputs.strip().replace("\\", "/").strip("/")
    while outputs.startswith("./"):
        outputs = outputs[2:]
    if outputs and outputs != "." and not Path(config.run_outputs).is_absolute() \
            and ".." not in outputs.split("/"):
        found.append(f"/{outputs}/")
    return found


def tree_digest(files: Iterable[CodeFile]) -> str:
    listing = "".join(
        f"{f.sha256} {f.mode} {f.path}\n" for f in sorted(files, key=lambda f: f.path.encode()))
    return "sha256:" + hashlib.sha256(listing.encode("utf-8")).hexdigest()


def _describe(inside: _Inside, rel: str) -> CodeFile | None:
    full = inside.root / rel
    try:
        info = full.lstat()
    except OSError:
        return None  # tracked by git but deleted in the work tree
    inside.check_parent(rel)
    if stat.S_ISLNK(info.st_mode):
        target = os.readlink(full)
        inside.check_link(rel, target)
        return CodeFile(rel, hashlib.sha256(target.encode()).hexdigest(), len(target), False,
                        target)
    if not stat.S_ISREG(info.st_mode):
        return None
    return CodeFile(rel, sha256_file(full), info.st_size, bool(info.st_mode & 0o111))


class _Inside:
    """Whether paths of the project stay in it, as the kernel resolves them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.real = os.path.realpath(root)
        self._dirs: dict[str, bool] = {}

    def contains(self, real: str) -> bool:
        return real == self.real or real.startswith(self.real.rstrip(os.sep) + os.sep)

    def check_parent(self, rel: str) -> None:
        """``rel``'s directory is a real directory of the project, not reached through a
        link (whose files would be read from wherever it points)."""
        parent = posixpath.dirname(rel)
        if not parent:
            return
        direct = self._dirs.get(parent)
        if direct is None:
            direct = os.path.realpath(self.root / parent) == os.path.join(self.real, parent)
            self._dirs[parent] = direct
        if not direct:
            link = self._first_link(parent)
            raise CodeError(
                f"code file {rel} is reached through the symbolic link {link} (which leads "
                f"to {os.path.realpath(self.root / link)}); its content is not the project's",
                hint=f"replace the link {link} with the directory, or exclude {rel} in "
                "[code] exclude")

    def check_link(self, rel: str, target: str) -> None:
        """The link ``rel`` leads into the project, whatever links its target goes through."""
        lexical = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
        resolved = os.path.realpath(os.path.join(self.real, posixpath.dirname(rel), target))
        if (target.startswith("/") or lexical == ".." or lexical.startswith("../")
                or not self.contains(resolved)):
            raise CodeError(
                f"code file {rel} is a symbolic link to {target}, which leads to {resolved}, "
                "outside the project: in the image it would name something else",
                hint=f"copy the file into the project, or exclude {rel} in [code] exclude")

    def _first_link(self, parent: str) -> str:
        parts = parent.split("/")
        for i in range(1, len(parts) + 1):
            if os.path.islink(self.root.joinpath(*parts[:i])):
                return "/".join(parts[:i])
        return parent


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              check=False, stdin=subprocess.DEVNULL)
    except OSError:
        return None
    return done.stdout if done.returncode == 0 else None


def _git_files(root: Path) -> list[str] | None:
    """The files git tracks under ``root`` (None when ``root`` is not in a work tree)."""
    return _git_paths(root, "--cached")


def _git_paths(root: Path, *which: str) -> list[str] | None:
    """``git ls-files`` under ``root``, relative to ``root`` (None outside a work tree)."""
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None:
        return None
    listing = _git(root, "ls-files", "-z", *which, "--full-name", ".")
    if listing is None:
        return None
    prefix = Path(root).resolve().relative_to(Path(top.strip()).resolve()).as_posix()
    names = [n for n in listing.split("\0") if n]
    if prefix != ".":
        names = [n[len(prefix) + 1:] for n in names if n.startswith(prefix + "/")]
    return names


def _walk(root: Path) -> list[str]:
    """Every file under ``root`` less what the ignore files there name."""
    lines: list[str] = []
    for name in IGNORE_FILES:
        path = root / name
        if path.is_file():
            lines += path.read_text(encoding="utf-8", errors="replace").splitlines()
    spec = pathspec.GitIgnoreSpec.from_lines([*ALWAYS_EXCLUDED, *lines])
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        dirnames[:] = sorted(d for d in dirnames
                             if d not in links and not spec.match_file(prefix + d + "/"))
        # a link to a directory is one entry, as git records it; it is not followed
        found += [prefix + f for f in [*filenames, *links] if not spec.match_file(prefix + f)]
    return found


def git_state(root: Path) -> GitState | None:
    commit = _git(root, "rev-parse", "HEAD")
    if _git(root, "rev-parse", "--is-inside-work-tree") is None:
        return None
    status = _git(root, "status", "--porcelain", "--untracked-files=no", "--", ".")
    return GitState(commit.strip() if commit else None, bool(status and status.strip()))
