"""Files the build puts into the code layer, under ``/.reprolock/``, so that
``reprolock verify --runtime`` (or ``python /.reprolock/check.py``) can check a running
container against its lock without reprolock installed in the image.

The builder calls :func:`image_files` for every image with code; what it returns goes
into the code layer (so the environment image, and the lock's digests of it, never
depend on it). Every file is canonical JSON or fixed source: the same lock and code give
the same bytes, so the code layer stays reproducible.

    >>> files = image_files(lock_bytes=b"{}", code=code, workdir="/app",      # doctest: +SKIP
    ...                     prefix="/opt/venv", records={"numpy": "sha256:..."})
    >>> [f.path.split("/")[-1] for f in files]                                 # doctest: +SKIP
    ['check.py', 'code.json', 'lock.json', 'runtime.json']
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reprolock.inspection.codeset import CodeSet

RUNTIME_DIR = ".reprolock"  # at the image's root
CHECKER = f"{RUNTIME_DIR}/check.py"
LISTING_VERSION = 1


@dataclass(frozen=True)
class EmbeddedFile:
    path: str  # inside the image, no leading slash
    data: bytes
    executable: bool = False


def checker_source() -> bytes:
    """The standard-library-only checker, as shipped in images and mounted by ``run``."""
    return Path(__file__).with_name("check.py").read_bytes()


def job_wrapper_source() -> bytes:
    """The standard-library-only wrapper each node of a cluster job runs (``reprolock
    job``): the check, then the command, then the node's run record."""
    return Path(__file__).with_name("jobrun.py").read_bytes()


def code_listing(code: CodeSet, workdir: str) -> dict[str, Any]:
    files = []
    for f in code.files:
        entry: dict[str, Any] = {"path": f.path, "sha256": f.sha256, "size": f.size,
                                 "executable": f.executable}
        if f.link_target is not None:
            entry["link"] = f.link_target
        files.append(entry)
    return {"version": LISTING_VERSION, "workdir": workdir, "treeDigest": code.tree_digest,
            "files": files}


def runtime_record(*, prefix: str, records: Mapping[str, str],
                   env: Mapping[str, str] | None,
                   base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``base``: the base image's startup hooks and bytecode
    (:func:`reprolock.runtime.basefiles.base_record`); without it the checker cannot tell
    the base's own ``sitecustomize.py`` and ``.pyc`` files from planted ones."""
    doc = {"version": LISTING_VERSION, "prefix": prefix, "records": dict(sorted(records.items())),
           "env": dict(sorted((env or {}).items()))}
    if base is not None:
        doc["base"] = dict(base)
    return doc


def _json(doc: Mapping[str, Any]) -> bytes:
    return (json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def image_files(*, lock_bytes: bytes, code: CodeSet, workdir: str, prefix: str,
                records: Mapping[str, str],
                env: Mapping[str, str] | None = None,
                base: Mapping[str, Any] | None = None) -> list[EmbeddedFile]:
    """``lock_bytes``: the lock file as read; ``records``: distribution name to the
    ``sha256:`` digest of its RECORD as installed under ``prefix``; ``env``: the image's
    declared environment variables (what the checker compares the container's with);
    ``base``: the base image's startup hooks and bytecode (``basefiles.scan_layers``)."""
    return [
        EmbeddedFile(CHECKER, checker_source(), executable=True),
        EmbeddedFile(f"{RUNTIME_DIR}/code.json", _json(code_listing(code, workdir))),
        EmbeddedFile(f"{RUNTIME_DIR}/lock.json", lock_bytes),
        EmbeddedFile(f"{RUNTIME_DIR}/runtime.json",
                     _json(runtime_record(prefix=prefix, records=records, env=env,
                                          base=base))),
    ]
