"""The lock in other tools' formats: hash-pinned requirements and PEP 751 pylock.toml.

Both name only the wheel chosen for the target. Relative local paths (find-links wheels)
are written relative to where the exported file goes, so it works from there; absolute
ones stay as the config wrote them.

Every value written is checked first, even though reading the lock checked it: a line
break in a version or an index URL would become a line of its own in a requirements
file (``--extra-index-url``, ``--trusted-host``, another pinned package), and pip splits
lines at CR, NEL and U+2028 too. The pylock.toml is written by tomli_w, which escapes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from reprolock import __version__
from reprolock._internal.urls import is_remote
from reprolock.errors import LockFileError
from reprolock.lock.model import Artifact, Lock, Package, checked

FORMATS = ("requirements", "pylock")
_MACHINES = {"amd64": "x86_64", "arm64": "aarch64"}


def export(lock: Lock, fmt: str, *, project: Path, dest_dir: Path) -> str:
    if fmt == "requirements":
        return to_requirements(lock, project=project, dest_dir=dest_dir)
    return to_pylock(lock, project=project, dest_dir=dest_dir)


def _rebase(path: str, project: Path, dest_dir: Path) -> str:
    """A relative path of the lock, relative to the export; an absolute one as it is."""
    if path.startswith("/"):
        return path
    return Path(os.path.relpath(project / path, dest_dir)).as_posix()


def _check_values(lock: Lock) -> None:
    """Refuse any value that could break out of its place in the exported file."""
    checked(lock.target.platform, "token", "target.platform")
    checked(lock.target.python_version, "python version", "target.python.version")
    checked(lock.inputs_digest, "digest", "inputsDigest")
    for i, index in enumerate(lock.indexes):
        checked(index["url"], "text", f"indexes[{i}].url")
    for pkg in lock.packages:
        where = f"packages[{pkg.name!r}]"
        checked(pkg.name, "name", f"{where}.name")
        checked(pkg.version, "version", f"{where}.version")
        checked(pkg.artifact.sha256, "sha256", f"{where}.artifact.sha256")
        checked(pkg.artifact.filename, "wheel", f"{where}.artifact.filename")
        if pkg.artifact.url is not None:
            checked(pkg.artifact.url, "text", f"{where}.artifact.url")
        if pkg.artifact.path is not None:
            checked(pkg.artifact.path, "wheel path", f"{where}.artifact.path")
        if pkg.source is not None:
            sdist = pkg.source.sdist
            checked(sdist.sha256, "sha256", f"{where}.build.sdist.sha256")
            checked(sdist.filename, "sdist", f"{where}.build.sdist.filename")
            if sdist.url is not None:
                checked(sdist.url, "text", f"{where}.build.sdist.url")
            if sdist.path is not None:
                checked(sdist.path, "sdist path", f"{where}.build.sdist.path")


def to_requirements(lock: Lock, *, project: Path, dest_dir: Path) -> str:
    """``pip install --require-hashes -r`` accepts this; one hash: the target's wheel."""
    _check_values(lock)
    lines = [
        f"# Exported by reprolock {__version__} for {lock.target.platform}, "
        f"CPython {lock.target.python_version}; do not edit, run 'reprolock export'.",
        f"# inputsDigest: {lock.inputs_digest}",
    ]
    kinds = {i["kind"] for i in lock.indexes}
    if "index" not in kinds:
        lines.append("--no-index")
    for i, index in enumerate(lock.indexes):
        url = index["url"]
        # pip splits an option's value at spaces: an index URL is one word or it is refused
        if index["kind"] != "find-links" or is_remote(url):
            checked(url, "token", f"indexes[{i}].url")
        if index["kind"] == "index":
            lines.append(f"--index-url {url}")
        elif index["kind"] in ("extra-index", "named"):
            # pip has no per-package index; every file is pinned by its hash below, so a
            # package that another index also serves cannot be swapped for its copy
            lines.append(f"--extra-index-url {url}")
        else:
            link = url if is_remote(url) else _rebase(url, project, dest_dir)
            checked(link, "token", "find-links directory, relative to the export,", owner="the",
                    hint="move the wheels to a directory whose path has no spaces, or "
                    "export with --format pylock")
            lines.append(f"--find-links {link}")
    for pkg in sorted(lock.packages, key=lambda p: p.name):
        # a wheel reprolock built is on no index: pip gets (and builds) the locked sdist
        sha256 = pkg.source.sdist.sha256 if pkg.source else pkg.artifact.sha256
        lines.append(f"{pkg.name}=={pkg.version} \\\n    --hash=sha256:{sha256}")
    return "\n".join(lines) + "\n"


def to_pylock(lock: Lock, *, project: Path, dest_dir: Path) -> str:
    import tomli_w

    _check_values(lock)
    python = lock.target.python_version
    minor = ".".join(python.split(".")[:2])
    machine = _MACHINES.get(lock.target.architecture)
    if machine is None:
        raise LockFileError(f"the lock's target.architecture is {lock.target.architecture!r}, "
                            "not amd64 or arm64", hint="run 'reprolock lock' to rewrite it")
    doc: dict[str, Any] = {
        "lock-version": "1.0",
        "created-by": "reprolock",
        "requires-python": f"=={minor}.*",
        "environments": [f"sys_platform == 'linux' and platform_machine == '{machine}' "
                         f"and python_version == '{minor}'"],
        "packages": [_pylock_package(p, project, dest_dir)
                     for p in sorted(lock.packages, key=lambda p: p.name)],
    }
    return tomli_w.dumps(doc)


def _pylock_package(pkg: Package, project: Path, dest_dir: Path) -> dict[str, Any]:
    if pkg.source is not None:  # the wheel reprolock built is on no index: its sdist is
        return {"name": pkg.name, "version": pkg.version,
                "sdist": _pylock_file(pkg.source.sdist, project, dest_dir)}
    return {"name": pkg.name, "version": pkg.version,
            "wheels": [_pylock_file(pkg.artifact, project, dest_dir)]}


def _pylock_file(artifact: Artifact, project: Path, dest_dir: Path) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": artifact.filename, "hashes": {"sha256": artifact.sha256}}
    if artifact.url:
        entry["url"] = artifact.url
    elif artifact.path:
        entry["path"] = _rebase(artifact.path, project, dest_dir)
    if artifact.size is not None:
        entry["size"] = artifact.size
    return entry
