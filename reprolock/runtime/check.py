"""The runtime checker: is the environment this runs in the locked one?

Standard library only and Python 3.8 syntax and APIs (no ``match``, no runtime ``X | Y``,
no ``str.removeprefix``, no ``hashlib.file_digest``): the build ships this file in the
image as ``/.reprolock/check.py`` and it runs with the image's own interpreter, where
reprolock is not installed::

    python /.reprolock/check.py [--fast] [--json]

It compares the running interpreter, platform, installed distributions, every installed
file, the code files and the declared environment variables with ``lock.json``,
``code.json`` and ``runtime.json`` beside it. GPU, CUDA and driver versions are recorded,
not enforced. Exit 0: as locked; 1: drift; 2: the check could not run.
"""
# (annotations are strings under "from __future__ import annotations": "X | None" and
# "list[str]" in them are fine on 3.8; nothing here evaluates them)

from __future__ import annotations

import argparse
import base64
import concurrent.futures
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
    if os.path.realpath(sys.prefix) != os.path.realpath(root.rstrip("/") + exp.prefix):
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
    """Files in site-packages or bin that no RECORD lists (a dropped .pth, a new module)."""
    prefix_bin = f"{exp.prefix}/bin"
    minor = exp.site.split("/lib/")[-1].split("/")[0]  # python3.11
    allowed = {f"{prefix_bin}/python", f"{prefix_bin}/python3", f"{prefix_bin}/{minor}"}
    problems = []
    for top in (exp.site, prefix_bin):
        for full in _walk_files(root.rstrip("/") + top):
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
        if rel not in known and "__pycache__" not in rel.split("/"):
            problems.append(f"{rel} was added (not in the built code)")
    return _result("code", sorted(problems), f"{len(entries)} code files in {workdir} as built "
                   f"(tree {exp.code.get('treeDigest', '?')})", "code differences")


# -- environment variables and accelerators -----------------------------------------------

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
    results = [check_python(exp, root), check_platform(exp),
               check_distributions(exp, dists, broken),
               check_records(exp, dists, record_problems),
               check_files(owned, root, fast=fast, jobs=jobs or os.cpu_count() or 1),
               check_unowned(exp, listed, root), check_code(exp, root, fast=fast),
               check_env(exp)]
    return {"ok": all(r.ok for r in results), "mode": "fast" if fast else "full",
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


if __name__ == "__main__":
    sys.exit(main())
