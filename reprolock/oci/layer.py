"""Deterministic layer tars: the same files give the same bytes on any machine.

Entries sorted by path with parents first; one integer mtime; uid/gid 0 and empty
names; modes 0755/0644; hard links written as regular files; gzip header without a
name or time. The uncompressed digest (diff_id) and the blob digest are computed while
streaming, so no layer is ever held in memory.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from reprolock._internal.files import atomic_writer

DEFAULT_MTIME = 315532800  # 1980-01-01T00:00:00Z: the oldest time a zip can hold


@dataclass(frozen=True)
class LayerBlob:
    digest: str  # of the compressed bytes
    diff_id: str  # of the tar
    size: int
    media_type: str


class _HashingSink:
    """A write-only stream that hashes and counts what passes through to ``target``."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        self.target.write(data)
        return len(data)

    def flush(self) -> None:
        self.target.flush()


def _entries(root: Path, prefix: str) -> list[tuple[str, Path]]:
    """Archive name → source path, sorted so that every parent precedes its children.

    The directories of ``prefix`` ("app/src/") are entries too, with ``root``'s mode.
    """
    found: list[tuple[str, Path]] = []
    parts = [p for p in prefix.split("/") if p]
    prefix = "".join(f"{p}/" for p in parts)
    found += [("/".join(parts[: i + 1]), root) for i in range(len(parts))]
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = Path(dirpath).relative_to(root).as_posix()
        base = prefix if rel == "." else f"{prefix}{rel}/"
        if rel != ".":
            found.append((base.rstrip("/"), Path(dirpath)))
        found += [(base + name, Path(dirpath) / name) for name in filenames]
        found += [(base + name, Path(dirpath) / name) for name in dirnames
                  if os.path.islink(Path(dirpath) / name)]
    return sorted(found, key=lambda item: os.fsencode(item[0]))


def _info(name: str, path: Path, mtime: int) -> tarfile.TarInfo | None:
    st = path.lstat()
    info = tarfile.TarInfo(name)
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if stat.S_ISLNK(st.st_mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(path)
        info.mode = 0o777
    elif stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    elif stat.S_ISREG(st.st_mode):
        info.size = st.st_size
        info.mode = 0o755 if st.st_mode & 0o111 else 0o644
    else:
        return None  # sockets, fifos and device nodes do not belong in a layer
    return info


def write_tar(root: Path, out: IO[bytes], *, prefix: str = "", mtime: int = DEFAULT_MTIME) -> None:
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name, path in _entries(root, prefix):
            info = _info(name, path, mtime)
            if info is None:
                continue
            if info.isreg():
                with open(path, "rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)


def write_layer(root: Path, dest: Path, *, prefix: str = "", mtime: int = DEFAULT_MTIME,
                level: int = 6) -> LayerBlob:
    """Write ``root`` as a gzip layer to ``dest`` (atomically)."""
    if not root.is_dir():  # os.walk would quietly give an empty layer
        raise NotADirectoryError(f"layer root {root} is not a directory")
    with atomic_writer(dest) as handle:
        blob = _HashingSink(handle)
        with gzip.GzipFile(filename="", mode="wb", fileobj=blob,
                           compresslevel=level, mtime=0) as gz:
            tar = _HashingSink(gz)  # type: ignore[arg-type]
            write_tar(root, tar, prefix=prefix, mtime=mtime)  # type: ignore[arg-type]
    return LayerBlob("sha256:" + blob.sha.hexdigest(), "sha256:" + tar.sha.hexdigest(),
                     blob.size, "application/vnd.oci.image.layer.v1.tar+gzip")
