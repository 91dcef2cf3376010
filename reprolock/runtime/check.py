"""The runtime checker: is the environment this runs in the locked one?

Standard library only and Python 3.8 syntax and APIs (no ``match``, no runtime ``X | Y``,
no ``str.removeprefix``, no ``hashlib.file_digest``): the build ships this file in the
image as ``/.reprolock/check.py`` and it runs with the image's own interpreter, where
reprolock is not installed::

    python -I -S -B /.reprolock/check.py [--fast] [--json]

It compares the running interpreter, platform, installed distributions, every installed
file, the virtual environment's own files, the code files, every startup hook and
bytecode file on the interpreter's path and the environment variables with
``lock.json``, ``code.json`` and ``runtime.json`` beside it. GPU, CUDA and driver versions
are recorded, not enforced. Exit 0: as locked; 1: drift; 2: the check could not run.

``-I -S -B``: the checker must not run the image's startup hooks (a ``sitecustomize.py`` or
``.pth`` could patch the checker itself), so it runs isolated and finds the hooks by
reading directories, never by letting ``site`` run. Started without them it starts itself
again with them, before it reads anything.
"""
# (annotations are strings under "from __future__ import annotations": "X | None" and
# "list[str]" in them are fine on 3.8; nothing here evaluates them)

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import contextlib
import csv
import hashlib
import io
import json
import os
import platform
import posixpath
import re
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterable
from typing import Any

EXIT_OK, EXIT_DRIFT, EXIT_ERROR = 0, 1, 2
DEFAULT_DIR = "/.reprolock"
SHOWN = 8  # problems listed per check in text output; --json has all of them
_ARCH = {"amd64": ("x86_64", "amd64"), "arm64": ("aarch64", "arm64")}
_BIG = 1 << 20


class CheckError(Exception):
    """The check cannot run (missing or unreadable expectations): exit 2."""


class Result:
    """One check: its name, whether it passed, a summary and each problem found."""

    def __init__(self, name: str, ok: bool, detail: str,
                 problems: list[str] | None = None) -> None:
        self.name = name
        self.ok = ok
        self.detail = detail
        self.problems = problems or []

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail,
                "problems": self.problems}


def _result(name: str, problems: list[str], ok_detail: str, what: str) -> Result:
    if not problems:
        return Result(name, True, ok_detail)
    return Result(name, False, f"{len(problems)} {what}", problems)


# -- expectations ------------------------------------------------------------------------

class Expected:
    """What the build recorded: the lock, the code listing, records and env."""

    def __init__(self, lock: dict[str, Any], code: dict[str, Any],
                 runtime: dict[str, Any]) -> None:
        self.lock = lock
        self.code = code
        self.runtime = runtime
        self.prefix = str(runtime.get("prefix") or (lock.get("image") or {}).get("prefix")
                          or "/opt/venv")
        minor = ".".join(str(lock["target"]["python"]["version"]).split(".")[:2])
        self.site = f"{self.prefix}/lib/python{minor}/site-packages"
        image = lock.get("image") or {}
        # the lock's own copy wins; the build's embedded one covers older locks
        self.records = dict(image.get("records") or runtime.get("records") or {})
        self.env = dict(runtime.get("env") or {})
        self.minor = minor
        python = (lock.get("base") or {}).get("python") or {}
        self.base_python = str(python.get("path") or "")  # what bin/python links to
        self.base_version = str(python.get("version") or "")
        # the base's startup hooks and bytecode, as the build (or 'reprolock run', from
        # the locked base) recorded them; None: not recorded, nothing in the base vouched
        base = runtime.get("base")
        files = base.get("files") if isinstance(base, dict) else None
        if base is not None and not isinstance(files, dict):
            raise CheckError("runtime.json: 'base' has no 'files' object: the image's "
                             "expectations are damaged; rebuild it")
        self.base_files: dict[str, Any] | None = files


def _load_json(path: str, what: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read().decode("utf-8"))
    except FileNotFoundError:
        raise CheckError(f"{what} {path} is missing: this image was not built by "
                         "'reprolock build' with a code layer") from None
    except (OSError, ValueError) as exc:
        raise CheckError(f"cannot read {what} {path}: {exc}") from None
    if not isinstance(data, dict):
        raise CheckError(f"{what} {path} is not a JSON object")
    return data


def load_expected(directory: str) -> Expected:
    lock = _load_json(os.path.join(directory, "lock.json"), "the lock")
    version = lock.get("lockVersion")
    if not isinstance(version, int) or version > 1:
        raise CheckError(f"the lock has lockVersion {version!r}; this checker reads "
                         "lockVersion 1: rebuild the image with the reprolock that wrote it")
    code = _load_json(os.path.join(directory, "code.json"), "the code listing")
    runtime_path = os.path.join(directory, "runtime.json")
    runtime = _load_json(runtime_path, "the runtime record") if os.path.exists(
        runtime_path) else {}
    try:
        return Expected(lock, code, runtime)
    except (KeyError, TypeError) as exc:
        raise CheckError(f"the lock in {directory} lacks {exc}") from None


# -- interpreter and platform -------------------------------------------------------------

def check_python(exp: Expected, root: str) -> Result:
    want = exp.lock["target"]["python"]
    problems = []
    impl = platform.python_implementation().lower()
    if impl != str(want.get("implementation", "cpython")).lower():
        problems.append(f"implementation {impl}, the lock targets {want.get('implementation')}")
    version = platform.python_version()
    if version != want["version"]:
        problems.append(f"Python {version}, the lock targets {want['version']}")
    if sys.flags.no_site:
        # isolated (-S): sys.prefix is the base's, as site.py did not run; what matters is
        # that this is the interpreter the venv's python runs (the venv check says the
        # venv's own files are the build's)
        venv = root.rstrip("/") + exp.prefix + "/bin/python"
        if os.path.realpath(venv) != os.path.realpath(sys.executable):
            problems.append(f"this interpreter ({sys.executable}) is not the one "
                            f"{exp.prefix}/bin/python runs ({os.path.realpath(venv)})")
    elif os.path.realpath(sys.prefix) != os.path.realpath(root.rstrip("/") + exp.prefix):
        problems.append(f"the interpreter's prefix is {sys.prefix}, not the locked "
                        f"environment {exp.prefix} (run {exp.prefix}/bin/python)")
    return _result("python", problems, f"{platform.python_implementation()} {version} in "
                   f"{sys.prefix}", "interpreter differences")


def check_platform(exp: Expected) -> Result:
    target = exp.lock["target"]
    problems = []
    system = platform.system().lower()
    if system != target.get("os", "linux"):
        problems.append(f"OS {system}, the lock targets {target.get('os')}")
    machine = platform.machine().lower()
    arch = str(target.get("architecture", ""))
    if machine not in _ARCH.get(arch, (arch,)):
        problems.append(f"machine {machine}, the lock targets {arch}")
    libc = target.get("libc") or {}
    family, version = platform.libc_ver()
    if libc.get("family") == "glibc" and family == "glibc" and version != libc.get("version"):
        problems.append(f"glibc {version}, the lock targets glibc {libc.get('version')}")
    return _result("platform", problems, f"{system}/{machine}, libc {family} {version}".rstrip(),
                   "platform differences")


# -- the virtual environment's own files -------------------------------------------------

def _read_cfg(path: str) -> tuple[dict[str, str], list[str]]:
    """pyvenv.cfg as site.py and getpath read it (the last value of a key wins), and the
    keys set more than once."""
    values: dict[str, str] = {}
    repeated = []
    with open(path, "rb") as handle:
        text = handle.read(1 << 16).decode("utf-8", "replace")
    for line in text.splitlines():
        if "=" in line:
            key, _, value = line.partition("=")
            key = key.strip().lower()
            if key in values:
                repeated.append(key)
            values[key] = value.strip()
    return values, repeated


def venv_links(exp: Expected) -> dict[str, str]:
    """The interpreter links the build makes (reprolock/imagebuild/install.py venv_entries)."""
    return {"python": exp.base_python, "python3": "python", f"python{exp.minor}": "python"}


def check_venv(exp: Expected, root: str) -> Result:
    """pyvenv.cfg decides what the venv's python puts on sys.path (the base's site
    directories with include-system-site-packages = true) and bin/python what runs."""
    if not exp.base_python:
        return _result("venv", ["the lock records no base interpreter (base.python.path): "
                                "the venv cannot be compared with the build's"], "",
                       "venv differences")
    top = root.rstrip("/") + exp.prefix
    want = {"home": posixpath.dirname(exp.base_python), "include-system-site-packages":
            "false", "version": exp.base_version, "executable": exp.base_python}
    problems = []
    try:
        values, repeated = _read_cfg(top + "/pyvenv.cfg")
    except OSError:
        problems.append(f"{exp.prefix}/pyvenv.cfg is missing or unreadable")
        values, repeated = dict(want), []
    for key in sorted(set(want) | set(values)):
        if values.get(key) != want.get(key):
            have = "unset" if key not in values else repr(values[key])
            wrote = "nothing" if key not in want else repr(want[key])
            problems.append(f"{exp.prefix}/pyvenv.cfg: {key} is {have}, the build wrote "
                            f"{wrote}")
    problems.extend(f"{exp.prefix}/pyvenv.cfg sets {key} more than once" for key in repeated)
    for name, target in sorted(venv_links(exp).items()):
        try:
            actual = os.readlink(f"{top}/bin/{name}")
        except OSError:
            problems.append(f"{exp.prefix}/bin/{name} is no longer a link to {target}")
            continue
        if actual != target:
            problems.append(f"{exp.prefix}/bin/{name} points to {actual}, the build made it "
                            f"a link to {target}")
    return _result("venv", problems, f"pyvenv.cfg and the interpreter links of {exp.prefix} "
                   "as built", "venv differences")


# -- distributions ------------------------------------------------------------------------

def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class Dist:
    def __init__(self, name: str, version: str, path: str) -> None:
        self.name = name
        self.version = version
        self.path = path  # the .dist-info directory


def _metadata(path: str) -> tuple[str, str]:
    name = version = ""
    with open(os.path.join(path, "METADATA"), "rb") as handle:
        for raw in handle:  # the headers end at the first empty line: read no further
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not line:
                break
            if line.startswith("Name:"):
                name = line[5:].strip()
            elif line.startswith("Version:"):
                version = line[8:].strip()
    return name, version


def installed(site: str) -> tuple[list[Dist], list[str]]:
    """Every ``*.dist-info`` in ``site``, and those whose METADATA cannot be read."""
    found, broken = [], []
    try:
        names = sorted(os.listdir(site))
    except OSError as exc:
        raise CheckError(f"cannot list the environment's site-packages {site}: {exc}") from None
    for entry in names:
        if not entry.endswith(".dist-info"):
            continue
        path = os.path.join(site, entry)
        try:
            name, version = _metadata(path)
        except OSError:
            broken.append(entry)
            continue
        found.append(Dist(name or entry[: -len(".dist-info")], version, path))
    return found, broken


def check_distributions(exp: Expected, dists: list[Dist], broken: list[str]) -> Result:
    locked = {canonical(p["name"]): str(p["version"]) for p in exp.lock.get("packages", [])}
    have: dict[str, list[Dist]] = {}
    for dist in dists:
        have.setdefault(canonical(dist.name), []).append(dist)
    problems = [f"{entry}: no readable METADATA" for entry in broken]
    for name in sorted(set(locked) | set(have)):
        versions = sorted(d.version for d in have.get(name, []))
        if name not in have:
            problems.append(f"missing: {name} {locked[name]} is locked but not installed")
        elif name not in locked:
            problems.append(f"extra: {name} {', '.join(versions)} is installed but not locked")
        elif versions != [locked[name]]:
            problems.append(f"other version: {name} {', '.join(versions)} is installed, "
                            f"the lock has {locked[name]}")
    return _result("distributions", problems,
                   f"{len(locked)} locked distributions installed, no others",
                   "distribution differences")


# -- RECORD files -------------------------------------------------------------------------

class Owned:
    """An installed file a RECORD lists, with its recorded hash and size."""

    def __init__(self, path: str, algorithm: str, digest: str, size: int | None,
                 dist: str) -> None:
        self.path = path
        self.algorithm = algorithm
        self.digest = digest
        self.size = size
        self.dist = dist


def _record_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"))))


def read_records(exp: Expected, dists: list[Dist]) -> tuple[list[Owned], set[str], list[str]]:
    """Files every RECORD lists, the set of all listed paths, and RECORD problems."""
    owned: list[Owned] = []
    listed = set()
    problems = []
    for dist in dists:
        key = canonical(dist.name)
        record = os.path.join(dist.path, "RECORD")
        try:
            with open(record, "rb") as handle:
                data = handle.read()
        except OSError:
            problems.append(f"{dist.name}: RECORD is missing")
            continue
        want = exp.records.get(key)
        got = "sha256:" + hashlib.sha256(data).hexdigest()
        if want is not None and want != got:
            problems.append(f"{dist.name}: RECORD was changed after the build ({got}, "
                            f"the build recorded {want})")
        site = exp.site  # paths in the image's terms; the root is added when reading
        try:
            rows = _record_rows(data)
        except (UnicodeDecodeError, csv.Error) as exc:
            problems.append(f"{dist.name}: RECORD cannot be read: {exc}")
            continue
        for row in rows:
            if not row or not row[0]:
                continue
            path = posixpath.normpath(posixpath.join(site, row[0]))
            listed.add(path)
            if len(row) > 1 and "=" in row[1]:
                algorithm, _, digest = row[1].partition("=")
                size = int(row[2]) if len(row) > 2 and row[2].isdigit() else None
                owned.append(Owned(path, algorithm, digest, size, dist.name))
    return owned, listed, problems


def check_records(exp: Expected, dists: list[Dist], record_problems: list[str]) -> Result:
    problems = list(record_problems)
    if exp.records:
        # an extra distribution has no recorded digest: its own check reports it
        detail = f"{sum(canonical(d.name) in exp.records for d in dists)} RECORD files as built"
    else:
        detail = "no RECORD digests were recorded (older lock); file hashes still checked"
    return _result("records", problems, detail, "RECORD differences")


def _hash(path: str, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size < _BIG:
            digest.update(handle.read())
        else:
            for block in iter(lambda: handle.read(_BIG), b""):
                digest.update(block)
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode("ascii")


def _check_owned(item: Owned, root: str, fast: bool) -> str | None:
    full = root + item.path if root != "/" else item.path
    try:
        info = os.lstat(full)
    except OSError:
        return f"{item.path} ({item.dist}) is missing"
    if item.size is not None and info.st_size != item.size:
        return f"{item.path} ({item.dist}) changed: {info.st_size} bytes, RECORD says {item.size}"
    if fast:
        return None
    try:
        actual = _hash(full, item.algorithm)
    except (OSError, ValueError) as exc:
        return f"{item.path} ({item.dist}) cannot be hashed: {exc}"
    if actual != item.digest:
        return f"{item.path} ({item.dist}) changed: its hash differs from RECORD"
    return None


def _batches(items: list[Owned], count: int) -> list[list[Owned]]:
    """Biggest first, dealt round robin: every worker gets a share of the large files."""
    ordered = sorted(items, key=lambda i: -(i.size or 0))
    return [ordered[i::count] for i in range(count)]


def check_files(owned: list[Owned], root: str, *, fast: bool, jobs: int) -> Result:
    def work(batch: list[Owned]) -> list[str]:
        return [p for p in (_check_owned(i, root, fast) for i in batch) if p]

    if fast or jobs <= 1:
        problems = work(owned)
    else:
        # hashlib releases the GIL on big buffers: threads use every core without pickling
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            problems = [p for found in pool.map(work, _batches(owned, jobs * 4)) for p in found]
    how = "sizes (--fast)" if fast else "sha256"
    return _result("files", sorted(problems), f"{len(owned)} installed files match their "
                   f"RECORD {how}", "changed installed files")


def _walk_files(top: str) -> Iterable[str]:
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in sorted(filenames):
            yield os.path.join(dirpath, name)
        for name in dirnames:  # links to directories are entries of their own
            if os.path.islink(os.path.join(dirpath, name)):
                yield os.path.join(dirpath, name)


def check_unowned(exp: Expected, listed: set[str], root: str) -> Result:
    """Files anywhere in the venv that no RECORD lists (a dropped .pth, a new module, a
    .pyc); the venv's own files are the venv check's."""
    allowed = {f"{exp.prefix}/bin/{name}" for name in venv_links(exp)}
    allowed.add(f"{exp.prefix}/pyvenv.cfg")
    problems = []
    for full in _walk_files(root.rstrip("/") + exp.prefix):
        path = full[len(root.rstrip("/")):] if root != "/" else full
        if path not in listed and path not in allowed:
            problems.append(f"{path} belongs to no installed distribution")
    return _result("unowned", problems, "no files outside the installed distributions",
                   "files that no RECORD lists")


# -- code ---------------------------------------------------------------------------------

def _code_problem(entry: dict[str, Any], full: str, fast: bool) -> str | None:
    path = entry["path"]
    try:
        info = os.lstat(full)
    except OSError:
        return f"{path} is missing"
    link = entry.get("link")
    if link is not None:
        if not stat.S_ISLNK(info.st_mode) or os.readlink(full) != link:
            return f"{path} is no longer a link to {link}"
        return None
    if not stat.S_ISREG(info.st_mode):
        return f"{path} is no longer a regular file"
    if bool(info.st_mode & 0o111) != bool(entry.get("executable")):
        return f"{path} changed its executable bit"
    if info.st_size != entry.get("size", info.st_size):
        return f"{path} was edited ({info.st_size} bytes, the build had {entry['size']})"
    if not fast and _sha256(full) != entry["sha256"]:
        return f"{path} was edited (its sha256 differs from the build's)"
    return None


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_BIG), b""):
            digest.update(block)
    return digest.hexdigest()


def check_code(exp: Expected, root: str, *, fast: bool) -> Result:
    workdir = str(exp.code.get("workdir", "/app"))
    base = root.rstrip("/") + workdir
    entries = exp.code.get("files", [])
    problems = [p for p in (_code_problem(e, os.path.join(base, e["path"]), fast)
                            for e in entries) if p]
    known = {e["path"] for e in entries}
    for full in _walk_files(base):
        rel = os.path.relpath(full, base).replace(os.sep, "/")
        if rel in known:
            continue
        if rel.endswith(".pyc") or "__pycache__" in rel.split("/"):
            # the build writes no bytecode: a .pyc whose header matches its source's mtime
            # and size runs instead of the source
            problems.append(f"{rel} is bytecode the built code does not have (Python "
                            "would run it instead of the source)")
        else:
            problems.append(f"{rel} was added (not in the built code)")
    return _result("code", sorted(problems), f"{len(entries)} code files in {workdir} as built "
                   f"(tree {exp.code.get('treeDigest', '?')})", "code differences")


# -- startup hooks and bytecode on the interpreter's path --------------------------------

HOOKS = ("sitecustomize", "usercustomize")  # site.py imports these from anywhere on sys.path
_ZIP = re.compile(r"^python\d+\.zip$")
_LINK_DEPTH = 8


def _hook(name: str) -> bool:
    """sitecustomize.py, .pyc, .so, .cpython-311-x86_64-linux-gnu.so, a package directory."""
    return name.split(".", 1)[0] in HOOKS


def _kind(path: str) -> str:
    name = posixpath.basename(path)
    if _hook(name) or any(_hook(p) for p in path.split("/")):
        return "a startup hook"
    if name.endswith(".pth"):
        return "a .pth file (site.py runs its import lines)"
    if name.endswith(".pyc"):
        return "bytecode"
    return "an archive on sys.path"


class Scan:
    """The image paths found and the problems with them; ``seen`` keeps each path once."""

    def __init__(self, exp: Expected, root: str, fast: bool) -> None:
        self.exp = exp
        self.root = root.rstrip("/")
        self.fast = fast
        self.seen: set[str] = set()
        self.problems: list[str] = []
        self.unvouched: list[str] = []  # found, but no base record to compare with

    def full(self, path: str) -> str:
        return self.root + path

    def item(self, path: str) -> None:
        if path in self.seen:
            return
        self.seen.add(path)
        if self.exp.base_files is None:
            self.unvouched.append(path)
            return
        problem = self._problem(path, 0)
        if problem:
            self.problems.append(problem)

    def _problem(self, path: str, depth: int) -> str | None:
        want = (self.exp.base_files or {}).get(path)
        try:
            info = os.lstat(self.full(path))
        except OSError:
            return f"{path} cannot be read" if want is None else None
        if not isinstance(want, dict):
            return f"{path} is {_kind(path)} that the base image does not have"
        if "link" in want:
            if not stat.S_ISLNK(info.st_mode) or os.readlink(self.full(path)) != want["link"]:
                return f"{path} is no longer the base's link to {want['link']}"
            if depth >= _LINK_DEPTH:
                return f"{path}: too many links"
            # the content behind the link is what runs: it must be the base's too
            target = posixpath.normpath(posixpath.join(posixpath.dirname(path), want["link"]))
            return self._problem(target, depth + 1)
        if want.get("type") == "dir":
            return None if stat.S_ISDIR(info.st_mode) else f"{path} is no longer a directory"
        if "sha256" not in want:
            return f"{path} is {_kind(path)} whose content the base record cannot vouch for"
        if not stat.S_ISREG(info.st_mode) or info.st_size != want.get("size"):
            return f"{path} ({_kind(path)}) changed: it is not the base image's"
        if not self.fast and _sha256(self.full(path)) != want["sha256"]:
            return f"{path} ({_kind(path)}) changed: its sha256 is not the base image's"
        return None

    def directory(self, path: str, *, site: bool) -> None:
        """One directory on (or that site.py would put on) sys.path: its hooks, its .pth
        files when it is a site directory, every .pyc below it."""
        full = self.full(path)
        if os.path.lexists(full) and not os.path.isdir(full):
            self.item(path)  # a zip (python311.zip) imports like a directory
            return
        try:
            names = sorted(os.listdir(full))
        except OSError:
            return  # not there: nothing runs from it
        for name in names:
            if _hook(name) or (site and name.endswith(".pth")):
                self.item(posixpath.join(path, name))
                if os.path.isdir(self.full(posixpath.join(path, name))):
                    self._tree(posixpath.join(path, name), everything=True)
        self._tree(path, everything=False)

    def _tree(self, path: str, *, everything: bool) -> None:
        top = self.full(path)
        for full in _walk_files(top):
            image_path = full[len(self.root):] if self.root else full
            if everything or image_path.endswith(".pyc"):
                self.item(image_path)


def _interpreter_dirs(exp: Expected, listed: set[str], root: str) -> list[tuple[str, bool]]:
    """Every directory the image's python may import from before the training: the
    stdlib entries of sys.path, the base's site directories (used when pyvenv.cfg
    includes them, or by the base python), the user site, PYTHONPATH, and the directories
    that the venv's recorded .pth files add; as (image path, is a site directory)."""
    import site  # with -S, importing site runs nothing: main() is skipped

    found: list[tuple[str, bool]] = [(p, False) for p in sys.path if os.path.isabs(p)]
    prefixes = [sys.base_prefix, sys.base_exec_prefix]
    with contextlib.suppress(AttributeError, TypeError):  # a patched site module
        found.extend((p, True) for p in site.getsitepackages(prefixes))
    # Debian's site.py adds lib/pythonX.Y/site-packages only inside a venv, which this
    # process (-S: site never set sys.prefix) does not look like: name it for any python
    version = "python{}.{}".format(*sys.version_info[:2])
    found.extend((posixpath.join(prefix, lib, version, "site-packages"), True)
                 for prefix in prefixes
                 for lib in sorted({"lib", getattr(sys, "platlibdir", "lib")}))
    with contextlib.suppress(AttributeError, TypeError, KeyError):  # no home directory
        found.append((site.getusersitepackages(), True))
    found.extend((p, False) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                 if os.path.isabs(p))
    found.extend((p, False) for p in _pth_dirs(exp, listed, root))
    return found


def _pth_dirs(exp: Expected, listed: set[str], root: str) -> list[str]:
    """Directories that the recorded .pth files of the venv add to sys.path."""
    dirs = []
    for path in sorted(p for p in listed if p.endswith(".pth")
                       and posixpath.dirname(p) == exp.site):
        try:
            with open(root.rstrip("/") + path, "rb") as handle:
                lines = handle.read(1 << 16).decode("utf-8", "replace").splitlines()
        except OSError:
            continue  # the files check names it
        for line in lines:
            line = line.strip()
            if line and not line.startswith(("#", "import ", "import\t")):
                dirs.append(posixpath.normpath(posixpath.join(exp.site, line)))
    return dirs


def check_startup(exp: Expected, listed: set[str], root: str, *, fast: bool) -> Result:
    """What Python runs before the training and reprolock did not install: startup hooks,
    .pth files and bytecode that are not the base image's (the venv's own files are the
    files and unowned checks'; the code's, the code check's)."""
    scan = Scan(exp, root, fast)
    venv = exp.prefix.rstrip("/") + "/"
    for path, site in _interpreter_dirs(exp, listed, root):
        path = posixpath.normpath(path)  # under --root (tests), looked up inside it
        if not (path + "/").startswith(venv):
            scan.directory(path, site=site)
    problems = sorted(scan.problems)
    if scan.unvouched:
        problems.append(f"the expectations record none of the base image's startup hooks "
                        f"and bytecode (runtime.json has no 'base'), so {len(scan.unvouched)} "
                        f"such files cannot be told from planted ones, among them "
                        f"{sorted(scan.unvouched)[0]}: rebuild the image with a reprolock that "
                        "records them, or check it with 'reprolock run', which reads them "
                        "from the locked base")
    return _result("startup", problems, f"{len(scan.seen)} startup hooks and bytecode files "
                   "on the interpreter's path are the base image's",
                   "startup hooks or bytecode the image does not have")


# -- environment variables and accelerators -----------------------------------------------

# PYTHON* variables that change what runs or how (PYTHONPATH, PYTHONSTARTUP, PYTHONHOME,
# PYTHONUSERBASE, PYTHONPYCACHEPREFIX, PYTHONWARNINGS and PYTHONBREAKPOINT import modules,
# PYTHONOPTIMIZE drops asserts, …) are drift unless declared; these only add diagnostics
_HARMLESS = ("PYTHONVERBOSE", "PYTHONUNBUFFERED", "PYTHONFAULTHANDLER", "PYTHONTRACEMALLOC",
             "PYTHONPROFILEIMPORTTIME", "PYTHONNODEBUGRANGES", "PYTHONMALLOCSTATS",
             "PYTHONASYNCIODEBUG")


def _loads_code(name: str) -> bool:
    """A variable that can make Python or the dynamic loader run other code."""
    return (name.startswith("PYTHON") and name not in _HARMLESS) or name.startswith("LD_") \
        or name in ("GCONV_PATH", "GLIBC_TUNABLES")


def check_env(exp: Expected) -> Result:
    wanted = dict(exp.env)
    wanted.setdefault("VIRTUAL_ENV", exp.prefix)
    wanted.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    problems = []
    for name in sorted(wanted):
        if name == "PATH":
            continue  # the base's PATH behind the venv; the first entry is checked below
        value = os.environ.get(name)
        if value != wanted[name]:
            shown = "unset" if value is None else repr(value)
            problems.append(f"{name} is {shown}, the image declares {wanted[name]!r}")
    first = os.environ.get("PATH", "").split(":")[0]
    if first != f"{exp.prefix}/bin":
        problems.append(f"PATH starts with {first!r}, not {exp.prefix}/bin")
    for name in sorted(os.environ):
        if name not in wanted and _loads_code(name):
            # the name only: an undeclared variable's value may be a secret
            problems.append(f"{name} is set, but the image does not declare it (it changes "
                            "what Python or the loader runs)")
    return _result("env", problems, f"{len(wanted)} declared variables as set",
                   "environment differences")


def accelerators(site: str) -> dict[str, Any]:
    """GPU, driver and CUDA versions, recorded for the run record, never enforced."""
    found: dict[str, Any] = {}
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            done = subprocess.run(
                [smi, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                capture_output=True, timeout=10, check=False)
            found["gpus"] = [line.strip() for line in done.stdout.decode(
                "utf-8", "replace").splitlines() if line.strip()]
        except (OSError, subprocess.SubprocessError) as exc:
            found["nvidia-smi"] = f"failed: {exc}"
    version_py = os.path.join(site, "torch", "version.py")
    if os.path.isfile(version_py):  # read, not imported: importing torch takes seconds
        with open(version_py, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
        for key in ("__version__", "cuda", "hip"):
            found_at = re.search(rf"^{re.escape(key)}\s*(?::\s*\S+\s*)?=\s*'([^']*)'", text, re.M)
            if found_at:
                found[f"torch.{key.strip('_')}"] = found_at.group(1)
    return found


# -- the whole check ----------------------------------------------------------------------

def run(directory: str, *, root: str = "/", fast: bool = False,
        jobs: int | None = None) -> dict[str, Any]:
    started = time.monotonic()
    exp = load_expected(directory)
    site = root.rstrip("/") + exp.site
    dists, broken = installed(site)
    owned, listed, record_problems = read_records(exp, dists)
    results = [check_python(exp, root), check_platform(exp), check_venv(exp, root),
               check_distributions(exp, dists, broken),
               check_records(exp, dists, record_problems),
               check_files(owned, root, fast=fast, jobs=jobs or os.cpu_count() or 1),
               check_unowned(exp, listed, root),
               check_startup(exp, listed, root, fast=fast),
               check_code(exp, root, fast=fast), check_env(exp)]
    return {"ok": all(r.ok for r in results), "mode": "fast" if fast else "full",
            "isolated": bool(sys.flags.isolated and sys.flags.no_site),
            "checks": [r.to_json() for r in results],
            "lockDigest": _lock_digest(directory), "codeTree": exp.code.get("treeDigest"),
            "python": {"implementation": platform.python_implementation(),
                       "version": platform.python_version(), "executable": sys.executable},
            "accelerators": accelerators(site),
            "seconds": round(time.monotonic() - started, 3)}


def _lock_digest(directory: str) -> str:
    with open(os.path.join(directory, "lock.json"), "rb") as handle:
        return "sha256:" + hashlib.sha256(handle.read()).hexdigest()


def render(report: dict[str, Any]) -> str:
    lines = []
    for check in report["checks"]:
        mark = "\u2713" if check["ok"] else "\u2717"
        lines.append(f"{mark} {check['name']}: {check['detail']}")
        for problem in check["problems"][:SHOWN]:
            lines.append(f"    - {problem}")
        if len(check["problems"]) > SHOWN:
            lines.append(f"    … and {len(check['problems']) - SHOWN} more (--json lists all)")
    for key, value in sorted(report["accelerators"].items()):
        lines.append(f"  recorded {key}: {value}")
    verdict = "as locked" if report["ok"] else "DRIFT: this is not the locked environment"
    lines.append(f"{verdict} ({report['mode']} check, {report['seconds']:.2f} s)")
    return "\n".join(lines) + "\n"


def _failed(message: str, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"ok": False, "error": message}, indent=2, sort_keys=True))
    print(f"error: {message}", file=sys.stderr)
    return EXIT_ERROR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="check.py", description="Check this environment against its reprolock lock. "
        "Exit 0: as locked; 1: drift; 2: the check could not run.")
    parser.add_argument("--fast", action="store_true", help="metadata only: sizes, no hashes")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--dir", default=os.path.dirname(os.path.abspath(__file__))
                        if os.path.basename(os.path.dirname(os.path.abspath(__file__)))
                        == ".reprolock" else DEFAULT_DIR,
                        help="where lock.json, code.json and runtime.json are")
    parser.add_argument("--root", default="/", help="the file system root to check (tests)")
    parser.add_argument("--jobs", type=int, default=None, help="hashing threads (default: "
                        "every core)")
    args = parser.parse_args(argv)
    sys.dont_write_bytecode = True  # what it imports from here on (see isolate)
    try:
        report = run(args.dir, root=args.root, fast=args.fast, jobs=args.jobs)
    except CheckError as exc:
        return _failed(str(exc), args.json)
    except Exception as exc:  # a crash is "could not check" (2), never drift (1) or 0
        return _failed(f"the check crashed: {exc.__class__.__name__}: {exc}", args.json)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        sys.stdout.write(render(report))
    return EXIT_OK if report["ok"] else EXIT_DRIFT


def isolate(argv: list[str]) -> None:
    """Start again as ``python -I -S -B`` unless already so: isolated, this interpreter runs
    no sitecustomize, usercustomize or .pth and ignores PYTHON* variables, so a hook in the
    image cannot patch the check. (Started without them, the hooks have run once already:
    'reprolock run' and 'verify --runtime' pass -I -S -B themselves.) -B: a stale .pyc of
    the base (its header names the source's mtime from before the base was packed) would
    be rewritten by this very check, which would then find the base's bytecode changed;
    -I ignores PYTHONDONTWRITEBYTECODE."""
    flags = sys.flags
    if (flags.isolated and flags.no_site and flags.dont_write_bytecode) or not sys.executable:
        return
    os.execv(sys.executable, [sys.executable, "-I", "-S", "-B", os.path.abspath(__file__),
                              *argv])


if __name__ == "__main__":
    isolate(sys.argv[1:])
    sys.exit(main())
