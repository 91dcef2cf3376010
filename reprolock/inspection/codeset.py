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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pathspec

from reprolock._internal.cache import CACHEDIR_SIGNATURE, CACHEDIR_TAG
from reprolock._internal.files import sha256_file
from reprolock.config import Config
from reprolock.errors import CodeError

ALWAYS_EXCLUDED = [".git/", ".hg/", ".svn/", "__pycache__/", "*.pyc", "*.pyo", ".venv/",
                   "venv/", ".tox/", ".nox/", ".mypy_cache/", ".pytest_cache/", ".ruff_cache/",
                   ".reprolock/", "*.egg-info/", ".ipynb_checkpoints/", ".DS_Store"]
# the SBOM, and the content-named copy a lock killed mid-write may leave (core.Locker)
LOCK_COMPANIONS = ("/reprolock.sbom.spdx.json", "/reprolock.sbom.cdx.json",
                   "/reprolock.sbom.*.json")
IGNORE_FILES = (".gitignore", ".dockerignore", ".reprolockignore")
# the names whose presence makes a directory something other than code (_NeverCode)
MARKERS = frozenset({"pyvenv.cfg", "conda-meta", CACHEDIR_TAG, "oci-layout"})
LARGE = 50_000_000  # bytes: a code set above this is said, with its largest directories


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
class Selection:
    """The paths of the code set, chosen without reading them (the audit reads them its
    own way). ``left_out`` names the tracked files that are never code."""

    paths: tuple[str, ...]
    untracked: tuple[str, ...]
    left_out: tuple[str, ...]


@dataclass(frozen=True)
class CodeSet:
    """The code files, their tree digest and, in a git work tree, its state.

    ``untracked`` names the files git neither tracks nor ignores that the same excludes
    and includes would have chosen: code that exists here but would not go into the image.
    ``warnings`` are what the user should hear about the set (each one line): tracked
    files left out as never code, a code set large enough to be data.
    """

    files: tuple[CodeFile, ...]
    tree_digest: str
    git: GitState | None
    untracked: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)


def collect_code(config: Config, *, extra_excludes: Iterable[str] = ()) -> CodeSet:
    selection = select_code(config, extra_excludes=extra_excludes)
    inside = _Inside(config.root)
    files = tuple(sorted((f for p in selection.paths if (f := _describe(inside, p))),
                         key=lambda f: f.path))
    git = git_state(config.root)
    warnings = [w for w in (_left_out_warning(selection.left_out),
                            _size_warning(files, git=git is not None)) if w]
    return CodeSet(files, tree_digest(files), git, selection.untracked, tuple(warnings))


def select_code(config: Config, *, extra_excludes: Iterable[str] = ()) -> Selection:
    """The one selection build, verify, run, inspect and audit share.

    In a git work tree the tracked files; else every file less what the ignore files at
    the root name. ``[code] include`` then chooses among them, and also brings in files
    the ignore files (or git) ignore: an explicit include is the user's decision. Never
    code, whatever git tracks or an include names: ALWAYS_EXCLUDED, a directory that is
    a virtual environment, a tagged cache or an OCI image layout (_NeverCode), and what
    reprolock itself writes (not_code); ``[code] exclude`` wins over everything.
    """
    root = config.root
    never = _NeverCode(root)
    include = (pathspec.GitIgnoreSpec.from_lines(config.code_include)
               if config.code_include else None)
    tracked = _git_files(root)
    untracked: list[str] = []
    if tracked is None:
        candidates = _walk(root, never, ignore_files=include is None)
    else:
        untracked = _git_paths(root, "--others", "--exclude-standard") or []
        ignored = (_git_paths(root, "--others", "--ignored", "--exclude-standard") or []
                   if include is not None else [])
        candidates = [*tracked, *(p for p in ignored if include and include.match_file(p))]
    excluded = pathspec.GitIgnoreSpec.from_lines(
        [*not_code(config), *config.code_exclude, *extra_excludes])
    never_code = pathspec.GitIgnoreSpec.from_lines(ALWAYS_EXCLUDED)

    def wanted(path: str) -> bool:
        return not excluded.match_file(path) and (include is None or include.match_file(path))

    def code(path: str) -> bool:
        return not never_code.match_file(path) and never.owner(path) is None

    paths = [p for p in candidates if wanted(p)]
    left_out = sorted({never.name(p) for p in tracked or () if wanted(p) and not code(p)})
    return Selection(tuple(sorted(p for p in paths if code(p))),
                     tuple(sorted(p for p in untracked if wanted(p) and code(p))),
                     tuple(left_out))


def not_code(config: Config) -> list[str]:
    """Project files that are never code: the lock and what comes with it describe the
    environment (a relock must not change the code tree), and the run outputs directory
    is what 'reprolock run' writes (a run must not change it either)."""
    found = [f"/{config.lockfile}", f"/{config.lockfile}.sig",
             f"/{config.lockfile}.sigstore.json", *LOCK_COMPANIONS]  # its two signatures
    outputs = config.run_outputs.strip().replace("\\", "/").strip("/")
    while outputs.startswith("./"):
        outputs = outputs[2:]
    if outputs and outputs != "." and not Path(config.run_outputs).is_absolute() \
            and ".." not in outputs.split("/"):
        found.append(f"/{outputs}/")
    return found


def _left_out_warning(left_out: tuple[str, ...]) -> str | None:
    if not left_out:
        return None
    named = ", ".join(left_out[:5]) + (" …" if len(left_out) > 5 else "")
    return (f"git tracks files that are never code, left out of the image: {named}; "
            "'git rm --cached' them, or name them in [code] exclude to silence this")


def _size_warning(files: tuple[CodeFile, ...], *, git: bool) -> str | None:
    """Name the largest parts of a code set over LARGE bytes: top-level files, and for
    each top-level directory the deepest one that still holds nine tenths of it
    (``data/raw/``, not ``data/``)."""
    total = sum(f.size for f in files)
    if total <= LARGE:
        return None
    sizes: dict[str, int] = {}  # each directory ("a/", "a/b/") and each top-level file
    for f in files:
        parts = f.path.split("/")
        names = ["/".join(parts[:depth]) + "/" for depth in range(1, len(parts))] or [f.path]
        for name in names:
            sizes[name] = sizes.get(name, 0) + f.size
    tops = [_deepest(n, sizes) for n in sizes if n.count("/") <= 1]  # "a/" and "x"
    largest = sorted(tops, key=lambda n: (-sizes[n], n))[:5]
    named = ", ".join(f"{n} {_mb(sizes[n])}" for n in largest)
    fix = "[code] exclude = [\"DIR/\"]" + ("" if git else " or a line in .reprolockignore")
    return (f"the code set is {_mb(total)} (over {_mb(LARGE)}), most of it in {named}; "
            f"if that is data or an environment, not code, leave it out with {fix}")


def _deepest(name: str, sizes: dict[str, int]) -> str:
    depth = name.count("/")
    while name.endswith("/"):
        children = [c for c in sizes if c.startswith(name) and c.count("/") == depth + 1]
        biggest = max(children, key=lambda c: sizes[c], default=None)
        if biggest is None or sizes[biggest] * 10 < sizes[name] * 9:
            break
        name, depth = biggest, depth + 1
    return name


def _mb(size: int) -> str:
    return f"{size / 1e6:.0f} MB" if size >= 1e6 else "<1 MB"


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


def _walk(root: Path, never: _NeverCode, *, ignore_files: bool) -> list[str]:
    """Every file under ``root`` less ALWAYS_EXCLUDED, the directories that are never
    code and, with ``ignore_files``, what the ignore files at the root name."""
    lines: list[str] = []
    for name in IGNORE_FILES if ignore_files else ():
        path = root / name
        if path.is_file():
            lines += path.read_text(encoding="utf-8", errors="replace").splitlines()
    spec = pathspec.GitIgnoreSpec.from_lines([*ALWAYS_EXCLUDED, *lines])
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        if never.listed(rel_dir, [*dirnames, *filenames]) is not None:
            dirnames[:] = []
            continue
        prefix = "" if rel_dir == "." else rel_dir + "/"
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        dirnames[:] = sorted(d for d in dirnames
                             if d not in links and not spec.match_file(prefix + d + "/"))
        # a link to a directory is one entry, as git records it; it is not followed
        found += [prefix + f for f in [*filenames, *links] if not spec.match_file(prefix + f)]
    return found


class _NeverCode:
    """Directories of the project that are never code, known by what they hold: a virtual
    environment (``pyvenv.cfg``, PEP 405) or a conda one (``conda-meta/``), a cache
    tagged by the CACHEDIR.TAG standard (reprolock's own cache tags itself; pip, uv and
    others do too), an OCI image layout (``oci-layout``: what 'build -o oci:DIR' wrote).

    Only the project's own directories count: a marker is a regular file (a directory
    for conda-meta) checked without following links, and a directory reached through a
    link is never skipped here, so that _Inside refuses its files as before.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._why: dict[str, str | None] = {".": None}
        self._links: dict[str, bool] = {}

    def owner(self, rel: str) -> str | None:
        """The directory above ``rel`` that is never code, if there is one."""
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            rel_dir = "/".join(parts[:depth])
            if self._link(rel_dir):
                return None
            if self.reason(rel_dir) is not None:
                return rel_dir
        return None

    def _link(self, rel_dir: str) -> bool:
        if rel_dir not in self._links:
            self._links[rel_dir] = os.path.islink(self.root / rel_dir)
        return self._links[rel_dir]

    def name(self, rel: str) -> str:
        """How a warning names ``rel``: its never-code directory if it is in one."""
        owner = self.owner(rel)
        return rel if owner is None else f"{owner}/ ({self.reason(owner)})"

    def listed(self, rel_dir: str, names: Iterable[str]) -> str | None:
        """The reason for a directory whose entries are known (a walk lists them)."""
        if rel_dir not in self._why and MARKERS.isdisjoint(names):
            self._why[rel_dir] = None
        return self.reason(rel_dir)

    def reason(self, rel_dir: str) -> str | None:
        if rel_dir not in self._why:
            self._why[rel_dir] = self._marked(self.root / rel_dir)
        return self._why[rel_dir]

    @staticmethod
    def _marked(path: Path) -> str | None:
        if _is(path / "pyvenv.cfg", stat.S_ISREG):
            return "a virtual environment"
        if _is(path / "conda-meta", stat.S_ISDIR):
            return "a conda environment"
        if _cache_tag(path / CACHEDIR_TAG):
            return "a cache, tagged CACHEDIR.TAG"
        if _is(path / "oci-layout", stat.S_ISREG) and _is(path / "index.json", stat.S_ISREG):
            return "an OCI image layout"
        return None


def _is(path: Path, kind: Callable[[int], bool]) -> bool:
    try:
        return kind(path.lstat().st_mode)
    except OSError:
        return False


def _cache_tag(path: Path) -> bool:
    """A CACHEDIR.TAG that is a regular file starting with the standard's signature."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return False
            return handle.read(len(CACHEDIR_SIGNATURE)) == CACHEDIR_SIGNATURE
    except OSError:
        return False


def git_state(root: Path) -> GitState | None:
    commit = _git(root, "rev-parse", "HEAD")
    if _git(root, "rev-parse", "--is-inside-work-tree") is None:
        return None
    status = _git(root, "status", "--porcelain", "--untracked-files=no", "--", ".")
    return GitState(commit.strip() if commit else None, bool(status and status.strip()))
