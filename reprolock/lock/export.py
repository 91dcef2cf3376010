"""The lock in other tools' formats: hash-pinned requirements and PEP 751 pylock.toml."""

from __future__ import annotations

from typing import Any

from reprolock import __version__
from reprolock.lock.model import Lock

FORMATS = ("requirements", "pylock")


def to_requirements(lock: Lock) -> str:
    """``pip install --require-hashes -r`` accepts this; one hash: the target's artifact."""
    lines = [
        f"# Exported by reprolock {__version__} from a lock for {lock.target['platform']}, "
        f"CPython {lock.target['python']['version']}.",
        f"# Inputs digest: {lock.inputs_digest}",
    ]
    for index in lock.indexes:
        lines.append(f"# {index['kind']}: {index['url']}")
    for pkg in sorted(lock.packages, key=lambda p: p.name):
        lines.append(f"{pkg.name}=={pkg.version} \\\n    --hash=sha256:{pkg.artifact.sha256}")
    return "\n".join(lines) + "\n"


def to_pylock(lock: Lock) -> str:
    import tomli_w

    python = lock.target["python"]["version"]
    minor = ".".join(python.split(".")[:2])
    doc: dict[str, Any] = {
        "lock-version": "1.0",
        "created-by": "reprolock",
        "requires-python": f"=={minor}.*",
        "environments": [
            f"sys_platform == 'linux' and platform_machine == "
            f"'{_machine(lock.target['architecture'])}' and python_version == '{minor}'"
        ],
        "packages": [_package(p) for p in sorted(lock.packages, key=lambda p: p.name)],
    }
    return tomli_w.dumps(doc)


def _package(pkg: Any) -> dict[str, Any]:
    wheel: dict[str, Any] = {"name": pkg.artifact.filename,
                             "hashes": {"sha256": pkg.artifact.sha256}}
    if pkg.artifact.url:
        wheel["url"] = pkg.artifact.url
    else:
        wheel["path"] = pkg.artifact.path
    if pkg.artifact.size is not None:
        wheel["size"] = pkg.artifact.size
    return {"name": pkg.name, "version": pkg.version, "wheels": [wheel]}


def _machine(arch: str) -> str:
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch)


def export(lock: Lock, fmt: str) -> str:
    return to_requirements(lock) if fmt == "requirements" else to_pylock(lock)
