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
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from reprolock._internal.files import atomic_writer
from reprolock.errors import ArtifactError
from reprolock.oci.compress import Compressor, Sink

BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
DEFAULT_MTIME = 315532800  # 1980-01-01T00:00:00Z, the oldest time a zip can hold


@dataclass(frozen=True)
class ZipMember:
    """File content that lives in a zip archive (a wheel), read when the layer is written."""

    archive: Path
    name: str
    size: int
    sha256: bytes | None  # expected digest, checked while the bytes stream into the layer
    origin: str  # for messages: the wheel's file name


@dataclass(frozen=True)
class Entry:
    name: str  # path inside the layer, without a leading or trailing slash
    kind: str  # "dir", "file" or "symlink"
    source: Path | None = None  # a file's content: a file on disk,
    link: str | None = None
    executable: bool = False
    data: bytes | None = None  # or bytes held in memory (small, generated files),
    member: ZipMember | None = None  # or a member of a zip archive


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
        info.size = _size(entry)
        info.mode = 0o755 if entry.executable else 0o644
    return info


def _size(entry: Entry) -> int:
    if entry.data is not None:
        return len(entry.data)
    if entry.member is not None:
        return entry.member.size
    assert entry.source is not None
    return entry.source.stat().st_size


CHUNK = 1 << 20


class _TarWriter:
    """The bytes ``tarfile.open(mode="w|", format=PAX_FORMAT)`` writes, with less copying.

    Headers and small files gather in a buffer that goes to ``out`` a megabyte at a time;
    big files go through in megabyte chunks. Zip members are hashed on the way and
    compared with the digest their wheel's RECORD gives.
    """

    def __init__(self, out: Sink) -> None:
        self.out = out
        self.buf = bytearray()
        self.offset = 0
        self.archives: dict[Path, zipfile.ZipFile] = {}

    def add(self, entry: Entry, mtime: int) -> None:
        info = _tarinfo(entry, mtime)
        self._emit(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        if entry.kind != "file":
            return
        if entry.data is not None:
            self._emit(entry.data)
        elif entry.member is not None:
            self._copy_member(entry.member)
        else:
            assert entry.source is not None
            with open(entry.source, "rb") as handle:
                self._copy(handle, info.size, str(entry.source))
        if info.size % BLOCK:
            self._emit(bytes(BLOCK - info.size % BLOCK))

    def close(self) -> None:
        self._emit(bytes(2 * BLOCK))
        if self.offset % RECORD:
            self._emit(bytes(RECORD - self.offset % RECORD))
        self._flush()
        for archive in self.archives.values():
            archive.close()

    def _emit(self, data: bytes) -> None:
        self.buf += data
        self.offset += len(data)
        if len(self.buf) >= CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self.buf:
            self.out.write(bytes(self.buf))
            self.buf.clear()

    def _pass(self, chunk: bytes) -> None:
        if len(chunk) < CHUNK // 4:
            self._emit(chunk)
            return
        self._flush()
        self.out.write(chunk)
        self.offset += len(chunk)

    def _copy(self, handle: IO[bytes], size: int, what: str,
              sha: hashlib._Hash | None = None) -> None:
        left = size
        while left:
            chunk = handle.read(min(CHUNK, left))
            if not chunk:
                raise ArtifactError(f"{what} ended {left} bytes early",
                                    hint="a file changed while the layer was written; "
                                    "build again")
            if sha is not None:
                sha.update(chunk)
            self._pass(chunk)
            left -= len(chunk)

    def _copy_member(self, member: ZipMember) -> None:
        archive = self.archives.get(member.archive)
        if archive is None:
            archive = self.archives[member.archive] = zipfile.ZipFile(member.archive)
        sha = hashlib.sha256()
        what = f"{member.origin}: {member.name}"
        try:
            with archive.open(member.name) as handle:
                self._copy(handle, member.size, what, sha)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:  # bad CRC, truncated data
            raise ArtifactError(f"{what} cannot be read: {exc}",
                                hint="the wheel is corrupt; delete it from the cache") from exc
        if member.sha256 is not None and sha.digest() != member.sha256:
            raise ArtifactError(f"{what} does not match its RECORD hash",
                                hint="the wheel was altered after it was built; do not use it")


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

    def close(self) -> None:
        pass


def write_tar(entries: Iterable[Entry], out: Sink, *, mtime: int = DEFAULT_MTIME) -> None:
    tar = _TarWriter(out)
    try:
        for entry in normalize(entries):
            tar.add(entry, mtime)
    finally:
        tar.close()


def write_layer(entries: Iterable[Entry], dest: Path, *, compressor: Compressor,
                mtime: int = DEFAULT_MTIME) -> LayerBlob:
    """Write the layer to ``dest`` atomically and return its digests."""
    with atomic_writer(dest) as handle:
        blob = _Hashing(handle)
        compressed = compressor.open(blob)  # type: ignore[arg-type]
        tar = _Hashing(compressed)
        write_tar(entries, tar, mtime=mtime)
        compressed.close()
    return LayerBlob(f"sha256:{blob.sha.hexdigest()}", f"sha256:{tar.sha.hexdigest()}",
                     blob.size, compressor.media_type)
