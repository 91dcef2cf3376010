"""Deterministic layer tars from an explicit list of entries.

Entries are sorted by their path's bytes (a parent is a prefix of its children, so it
always comes first); missing parent directories are added; every entry gets the same
integer mtime, uid/gid 0 and empty owner names; modes are 0755 for directories and
executables, 0644 for other files; symlinks keep their target; hard links are written as
regular files. The tar digest (diff_id) and the compressed digest are computed while
streaming: a layer is never held in memory.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from reprolock._internal.files import atomic_writer
from reprolock.oci.compress import Compressor, Sink

DEFAULT_MTIME = 315532800  # 1980-01-01T00:00:00Z, the oldest time a zip can hold


@dataclass(frozen=True)
class Entry:
    name: str  # path inside the layer, without a leading or trailing slash
    kind: str  # "dir", "file" or "symlink"
    source: Path | None = None
    link: str | None = None
    executable: bool = False


@dataclass(frozen=True)
class LayerBlob:
    digest: str  # sha256 of the compressed bytes
    diff_id: str  # sha256 of the tar
    size: int
    media_type: str


def entries_from_dir(root: Path, prefix: str = "") -> list[Entry]:
    """Every directory, file and symlink under ``root``, named ``prefix/relative``."""
    found: list[Entry] = []
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for name in [*dirnames, *filenames]:
            entry = _entry(base / name, _join(prefix, (base / name).relative_to(root).as_posix()))
            if entry is not None:
                found.append(entry)
    return found


def entry_for(path: Path, name: str) -> Entry | None:
    return _entry(path, name)


def _entry(path: Path, name: str) -> Entry | None:
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        return Entry(name, "symlink", link=os.readlink(path))
    if stat.S_ISDIR(info.st_mode):
        return Entry(name, "dir")
    if stat.S_ISREG(info.st_mode):
        return Entry(name, "file", source=path, executable=bool(info.st_mode & 0o111))
    return None  # sockets, fifos and device nodes do not belong in a layer


def _join(prefix: str, rel: str) -> str:
    return f"{prefix.strip('/')}/{rel}" if prefix.strip("/") else rel


def normalize(entries: Iterable[Entry]) -> list[Entry]:
    """Sorted by path bytes, with every missing parent directory added."""
    by_name = {e.name.strip("/"): e for e in entries if e.name.strip("/")}
    for name in list(by_name):
        parts = name.split("/")
        for i in range(1, len(parts)):
            by_name.setdefault("/".join(parts[:i]), Entry("/".join(parts[:i]), "dir"))
    return [by_name[k] for k in sorted(by_name, key=lambda n: n.encode())]


def _tarinfo(entry: Entry, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.name)
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if entry.kind == "dir":
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    elif entry.kind == "symlink":
        info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, entry.link or ""
    else:
        assert entry.source is not None
        info.size = entry.source.stat().st_size
        info.mode = 0o755 if entry.executable else 0o644
    return info


class _Hashing:
    """Hashes and counts what passes through to ``target`` (a file or a compressor)."""

    def __init__(self, target: Sink) -> None:
        self.target = target
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        self.target.write(data)
        return len(data)

    def flush(self) -> None:
        pass


def write_tar(entries: Iterable[Entry], out: IO[bytes], *, mtime: int = DEFAULT_MTIME) -> None:
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, bufsize=1 << 16) as tar:
        for entry in normalize(entries):
            info = _tarinfo(entry, mtime)
            if entry.kind == "file":
                assert entry.source is not None
                with open(entry.source, "rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)


def write_layer(entries: Iterable[Entry], dest: Path, *, compressor: Compressor,
                mtime: int = DEFAULT_MTIME) -> LayerBlob:
    """Write the layer to ``dest`` atomically and return its digests."""
    with atomic_writer(dest) as handle:
        blob = _Hashing(handle)
        compressed = compressor.open(blob)  # type: ignore[arg-type]
        tar = _Hashing(compressed)
        write_tar(entries, tar, mtime=mtime)  # type: ignore[arg-type]
        compressed.close()
    return LayerBlob(f"sha256:{blob.sha.hexdigest()}", f"sha256:{tar.sha.hexdigest()}",
                     blob.size, compressor.media_type)
