"""The base image's files that Python could run before the training: startup hooks
(``sitecustomize``, ``usercustomize``, ``*.pth``), bytecode (``*.pyc``) and stdlib zips,
recorded from the base's layers so the runtime checker can tell the base's own (Debian
ships ``/usr/lib/python3.X/sitecustomize.py`` and hundreds of ``.pyc``) from planted ones.

The record goes into ``runtime.json`` as ``base`` (``{"files": {path: entry}}``, where an
entry is ``{"sha256", "size"}``, ``{"link"}`` or ``{"type": "dir"}``). ``reprolock run``
makes it on the host from the locked base image, each layer checked against its digest,
so that an image cannot vouch for itself:

    >>> record = base_record(config.root, lock)                     # doctest: +SKIP
    >>> record["files"]["/usr/lib/python3.11/sitecustomize.py"]      # doctest: +SKIP
    {'link': '/etc/python3.11/sitecustomize.py'}
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import re
import tarfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from reprolock._internal.files import atomic_write_bytes
from reprolock._internal.jsonio import read_json
from reprolock._internal.tarsafe import open_tar
from reprolock.errors import ImageSourceError, ReprolockError
from reprolock.image.blobs import DigestReader, check_layer
from reprolock.oci.whiteouts import hidden_by

RECORD_VERSION = 1
HOOKS = ("sitecustomize", "usercustomize")  # what site.py imports from anywhere on sys.path
_ZIP = re.compile(r"^python\d+\.zip$")  # the stdlib zip, first on sys.path when it exists


def relevant(path: str) -> bool:
    """A file that Python may run without being asked to: a startup hook (or anything
    inside a hook package), a ``.pth``, bytecode, a stdlib zip. The checker uses the same
    rule (check.py keeps its own copy: it cannot import reprolock)."""
    parts = path.strip("/").split("/")
    name = parts[-1]
    return (name.endswith((".pyc", ".pth")) or bool(_ZIP.match(name))
            or any(part.split(".", 1)[0] in HOOKS for part in parts))


def _entry(member: tarfile.TarInfo, tar: tarfile.TarFile) -> dict[str, Any] | None:
    if member.isdir():
        return {"type": "dir"}
    if member.issym():
        return {"link": member.linkname}
    if member.isfile():
        handle = tar.extractfile(member)
        digest = hashlib.sha256()
        while handle is not None and (block := handle.read(1 << 20)):
            digest.update(block)
        return {"sha256": digest.hexdigest(), "size": member.size}
    return None  # devices, fifos: never legitimate hooks; the checker refuses them


def _absolute(name: str) -> str:
    """A tar member name (``./usr/lib``, ``usr/lib``, ``/usr/lib``) as an image path."""
    return posixpath.normpath("/" + name.lstrip("/"))


def scan_layer(stream: IO[bytes], files: dict[str, dict[str, Any]]) -> None:
    """Apply one layer (a tar, gzip-compressed or not) to ``files``."""
    hidden: list[str] = []
    found: dict[str, dict[str, Any]] = {}
    links: dict[str, str] = {}  # hard links, resolved within the layer
    try:
        with open_tar(fileobj=stream, mode="r|*") as tar:
            for member in tar:
                path = _absolute(member.name)
                parent, base = posixpath.split(path)
                if base.startswith(".wh."):
                    hidden.append(parent if base == ".wh..wh..opq"
                                  else posixpath.join(parent, base[4:]))
                elif relevant(path):
                    if member.islnk():
                        links[path] = _absolute(member.linkname)
                        continue
                    entry = _entry(member, tar)
                    found[path] = entry if entry is not None else {"type": "special"}
    except (tarfile.TarError, zlib.error, EOFError, OSError) as exc:
        raise ImageSourceError(f"a base image layer is not a readable tar: {exc}",
                               hint="re-export the base image") from exc
    if hidden:  # a layer's whiteouts hide the lower layers, never its own files
        gone = hidden_by(hidden)  # each path and everything below it
        for key in [k for k in files if gone(k)]:
            del files[key]
    for path, target in links.items():
        # a hard link to a file outside the relevant ones has no recorded content: the
        # checker then cannot vouch for it, which is what an unknown hook deserves
        found[path] = dict(found.get(target) or {"type": "hardlink", "target": target})
    files.update(found)


def scan_layers(streams: Iterable[tuple[IO[bytes], str]]) -> dict[str, Any]:
    """The record of layers given bottom first as ``(stream, blob digest)``; every blob is
    checked against its digest (the caller's stream is read to its end)."""
    files: dict[str, dict[str, Any]] = {}
    for raw, digest in streams:
        stream = DigestReader(raw, what=f"layer {digest}")
        scan_layer(io.BufferedReader(stream), files)
        got = stream.drain()
        if got != digest:
            raise ImageSourceError(f"a base image layer is {got}, its manifest says {digest}",
                                   hint="the base image is corrupt or was altered: fetch it "
                                   "again")
    return {"version": RECORD_VERSION, "files": dict(sorted(files.items()))}


def base_record(root: Path, lock: Any) -> dict[str, Any]:
    """The record of the lock's base image, read from where the build reads it."""
    from reprolock.image.reference import open_source
    from reprolock.target import Platform

    with open_source(lock.base.reference, root=root) as source:
        image = source.resolve(Platform.parse(lock.target.platform))
        if image.identity != lock.base.digest:
            raise ImageSourceError(
                f"base image {lock.base.reference} is now {image.identity}, but the lock "
                f"records {lock.base.digest}", hint="restore the locked base image, or run "
                "'reprolock lock' to lock the new one")
        files: dict[str, dict[str, Any]] = {}
        # one pass per layer, as everywhere a layer is read: blob digest, diff_id, and
        # (gzip, zstd or plain) tar to scan
        for layer, diff_id in zip(image.layers, image.diff_ids, strict=True):
            problems = check_layer(source, layer, diff_id,
                                   read_tar=lambda tar: scan_layer(tar, files))
            if problems:
                raise ImageSourceError(f"base image {lock.base.reference}: "
                                       + "; ".join(problems),
                                       hint="the base image is corrupt or was altered: fetch "
                                       "it again")
        return {"version": RECORD_VERSION, "files": dict(sorted(files.items()))}


def cached_base_record(root: Path, lock: Any, cache_dir: Path) -> dict[str, Any]:
    """:func:`base_record`, kept in the cache by the base's digest (reading a base's
    layers takes seconds per GB); for the build and for 'reprolock run' alike."""
    key = str(lock.base.digest).replace(":", "-")
    cached = cache_dir / "runtime-base" / f"v{RECORD_VERSION}-{key}.json"
    if cached.is_file():
        try:
            doc: dict[str, Any] = read_json(cached, limit=256 << 20)
            if doc.get("version") == RECORD_VERSION and isinstance(doc.get("files"), dict):
                return doc
        except ReprolockError:
            pass
        cached.unlink(missing_ok=True)  # a corrupt entry is discarded, never used
    doc = base_record(root, lock)
    atomic_write_bytes(cached, (json.dumps(doc, sort_keys=True) + "\n").encode())
    return doc


__all__ = ["HOOKS", "base_record", "cached_base_record", "relevant", "scan_layer",
           "scan_layers"]
