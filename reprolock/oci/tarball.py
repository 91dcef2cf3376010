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
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from reprolock._internal.files import atomic_writer
from reprolock.errors import ArtifactError
from reprolock.oci.compress import WHEEL_DEFLATE_MIN, Compressor, Sink
from reprolock.oci.model import LayerBlob as LayerBlob  # re-exported: written here
from reprolock.oci.tarfilter import in_view

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


class ViewSink(Protocol):
    """Where a thinned copy of the tar goes while the tar is written: the members it
    keeps, byte for byte, and its own end; the bytes
    :func:`reprolock.oci.tarfilter.filter_tar` would cut from the whole tar."""

    def write(self, data: bytes, /) -> int: ...

    def keeps(self, name: str, size: int) -> bool: ...

    def left_out(self, size: int) -> None: ...


class _TarWriter:
    """The bytes ``tarfile.open(mode="w|", format=PAX_FORMAT)`` writes, with less copying.

    Headers and small files gather in a buffer that goes to ``out`` a megabyte at a time;
    big files go through in megabyte chunks. Zip members are hashed on the way and
    compared with the digest their wheel's RECORD gives.
    """

    def __init__(self, out: Sink, view: ViewSink | None = None) -> None:
        self.out = out
        self.buf = bytearray()
        self.offset = 0
        self.archives: dict[Path, zipfile.ZipFile] = {}
        self.view = view
        self.to_view = False  # the entry being written goes to the view too
        self.vbuf = bytearray()
        self.voffset = 0

    def add(self, entry: Entry, mtime: int) -> None:
        info = _tarinfo(entry, mtime)
        if self.view is not None:
            self.to_view = in_view(entry.name, info.size, regular=entry.kind == "file",
                                   keep=self.view.keeps)
            if not self.to_view:
                self.view.left_out(info.size)
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
        self.to_view = False
        self._emit(bytes(2 * BLOCK))
        if self.offset % RECORD:
            self._emit(bytes(RECORD - self.offset % RECORD))
        self._flush()
        if self.view is not None:
            self._to_view(bytes(2 * BLOCK))
            if self.voffset % RECORD:
                self._to_view(bytes(RECORD - self.voffset % RECORD))
            self.view.write(bytes(self.vbuf))
            self.vbuf.clear()
        for archive in self.archives.values():
            archive.close()

    def abort(self) -> None:
        """Release the archives after a failure; the partial tar is the caller's to drop."""
        for archive in self.archives.values():
            archive.close()

    def _emit(self, data: bytes) -> None:
        self.buf += data
        self.offset += len(data)
        if self.to_view:
            self._to_view(data)
        if len(self.buf) >= CHUNK:
            self._flush()

    def _to_view(self, data: bytes) -> None:
        assert self.view is not None
        self.vbuf += data
        self.voffset += len(data)
        if len(self.vbuf) >= CHUNK:
            self.view.write(bytes(self.vbuf))
            self.vbuf.clear()

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
        if self.to_view:
            self._to_view(chunk)

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
        # no expected digest: RECORD was found to hold when an earlier layer was written
        sha = None if member.sha256 is None else hashlib.sha256()
        what = f"{member.origin}: {member.name}"
        size = 0
        try:
            if _reusable(self.out, archive, member.name):
                size = self._reuse_member(archive, member.name, sha)
            else:
                for chunk in _member_chunks(archive, member.name):
                    if sha is not None:
                        sha.update(chunk)
                    self._pass(chunk)
                    size += len(chunk)
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
            raise ArtifactError(f"{what} cannot be read: {exc}",
                                hint="the wheel is corrupt; delete it from the cache") from exc
        if size != member.size:
            raise ArtifactError(f"{what} holds {size} bytes, not the {member.size} planned",
                                hint="the wheel changed during the build; build again")
        if sha is not None and sha.digest() != member.sha256:
            raise ArtifactError(f"{what} does not match its RECORD hash",
                                hint="the wheel was altered after it was built; do not use it")

    def _reuse_member(self, archive: zipfile.ZipFile, name: str,
                      sha: hashlib._Hash | None) -> int:
        """The member's deflate stream as a gzip member of its own, copied; its inflated
        bytes are hashed (the tar's digest, the RECORD hash) and checked as
        :func:`_member_chunks` checks them, and the stream must end exactly where the
        archive says, or the copied bytes would not be the member's."""
        self._flush()
        out: DeflateSink = self.out  # type: ignore[assignment]
        out.begin_member()
        info = archive.getinfo(name)
        crc, size = 0, 0
        for raw, plain in _deflate_pieces(archive, info):
            crc = zlib.crc32(plain, crc)
            size += len(plain)
            if sha is not None:
                sha.update(plain)
            out.member_data(raw, plain)
            if self.to_view:
                self._to_view(plain)
        if size != info.file_size or crc != info.CRC:
            raise zipfile.BadZipFile(f"bad CRC-32 or length for {name}")
        out.end_member(crc, size)
        self.offset += size
        return size


class DeflateSink(Protocol):
    """A sink that also takes a deflate stream to pass through as a gzip member, with the
    bytes it inflates to (for the tar's digest): the compressors of ``wheelDeflate``."""

    takes_deflate: bool

    def write(self, data: bytes, /) -> int: ...

    def begin_member(self) -> None: ...

    def member_data(self, raw: bytes, plain: bytes) -> None: ...

    def end_member(self, crc: int, size: int) -> None: ...


def _reusable(out: Sink, archive: zipfile.ZipFile, name: str) -> bool:
    info = archive.getinfo(name)
    return (getattr(out, "takes_deflate", False) and info.compress_type == zipfile.ZIP_DEFLATED
            and not info.flag_bits & 0x1 and info.file_size >= WHEEL_DEFLATE_MIN)


def _deflate_pieces(archive: zipfile.ZipFile, info: zipfile.ZipInfo
                    ) -> Iterator[tuple[bytes, bytes]]:
    """(compressed piece, what it inflates to) over the member's deflate stream; the
    stream must end at the archive's compressed size, with nothing after it."""
    assert archive.fp is not None
    fd = archive.fp.fileno()
    pos, left = _data_offset(fd, info), info.compress_size
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    produced = 0
    while left:
        raw = os.pread(fd, min(CHUNK, left), pos)
        if not raw:
            raise EOFError("the archive ends inside a member")
        pos, left = pos + len(raw), left - len(raw)
        plain = inflater.decompress(raw, 4 * CHUNK)
        while True:  # memory bounded whatever the ratio: the rest comes in pieces
            produced += len(plain)
            if produced > info.file_size:
                raise zipfile.BadZipFile("member is longer than the archive says")
            yield raw, plain
            if not inflater.unconsumed_tail:
                break
            raw, plain = b"", inflater.decompress(inflater.unconsumed_tail, 4 * CHUNK)
    if not inflater.eof or inflater.unused_data:
        raise zipfile.BadZipFile(f"the deflate stream of {info.filename} does not end where "
                                 "the archive says")


def _data_offset(fd: int, info: zipfile.ZipInfo) -> int:
    header = os.pread(fd, 30, info.header_offset)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"bad local header for {info.filename}")
    return info.header_offset + 30 + int.from_bytes(header[26:28], "little") \
        + int.from_bytes(header[28:30], "little")


def _member_chunks(archive: zipfile.ZipFile, name: str) -> Iterator[bytes]:
    """The bytes of one member, inflated in megabyte pieces.

    zipfile's own reader works in 4 KiB steps through a lock-guarded shared handle, which
    costs half as much again as inflating; this reads the member's deflate stream with
    ``pread`` and checks the length and CRC-32 the archive's directory gives.
    """
    info = archive.getinfo(name)
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) \
            or info.flag_bits & 0x1:  # other methods, encryption: zipfile knows them
        with archive.open(info) as handle:
            while chunk := handle.read(CHUNK):
                yield chunk
        return
    assert archive.fp is not None
    fd = archive.fp.fileno()
    pos = _data_offset(fd, info)
    crc, produced = 0, 0
    for chunk in _inflate(fd, pos, info.compress_size, info.compress_type, info.file_size):
        crc = zlib.crc32(chunk, crc)
        produced += len(chunk)
        yield chunk
    if produced != info.file_size or crc != info.CRC:
        raise zipfile.BadZipFile(f"bad CRC-32 or length for {name}")


def _inflate(fd: int, pos: int, left: int, method: int, limit: int) -> Iterator[bytes]:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS) if method == zipfile.ZIP_DEFLATED else None
    produced = 0
    while left or (inflater is not None and inflater.unconsumed_tail):
        if inflater is not None and inflater.unconsumed_tail:
            data = inflater.unconsumed_tail
        else:
            data = os.pread(fd, min(CHUNK, left), pos)
            if not data:
                raise EOFError("the archive ends inside a member")
            pos, left = pos + len(data), left - len(data)
        # max_length bounds memory whatever the compression ratio (a zip bomb stops at
        # the size the directory declares, and then fails the length check)
        out = data if inflater is None else inflater.decompress(data, 4 * CHUNK)
        produced += len(out)
        if produced > limit:
            raise zipfile.BadZipFile("member is longer than the archive says")
        if out:
            yield out
    if inflater is not None:
        tail = inflater.flush()
        if tail:
            produced += len(tail)
            if produced > limit:
                raise zipfile.BadZipFile("member is longer than the archive says")
            yield tail


class HashingWriter:
    """Hashes and counts what passes through to ``target`` (a file or a compressor); a
    reused deflate stream passes through as it is, hashed as what it inflates to."""

    def __init__(self, target: Sink) -> None:
        self.target = target
        self.sha = hashlib.sha256()
        self.size = 0
        self.takes_deflate = bool(getattr(target, "takes_deflate", False))

    def begin_member(self) -> None:
        self.target.begin_member()  # type: ignore[attr-defined]

    def member_data(self, raw: bytes, plain: bytes) -> None:
        self.sha.update(plain)
        self.size += len(plain)
        self.target.member_data(raw)  # type: ignore[attr-defined]

    def end_member(self, crc: int, size: int) -> None:
        self.target.end_member(crc, size)  # type: ignore[attr-defined]

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        self.target.write(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def write_tar(entries: Iterable[Entry], out: Sink, *, mtime: int = DEFAULT_MTIME,
              view: ViewSink | None = None) -> None:
    tar = _TarWriter(out, view)
    try:
        for entry in normalize(entries):
            tar.add(entry, mtime)
    except BaseException:
        tar.abort()
        raise
    tar.close()


def write_layer(entries: Iterable[Entry], dest: Path, *, compressor: Compressor,
                mtime: int = DEFAULT_MTIME, durable: bool = True, threads: int = 1,
                view: ViewSink | None = None) -> LayerBlob:
    """Write the layer to ``dest`` atomically and return its digests; ``threads``
    compress its blocks (the bytes are the same for any number)."""
    with atomic_writer(dest, durable=durable) as handle:
        blob = HashingWriter(handle)
        compressed = compressor.open(blob, threads=threads)  # type: ignore[arg-type]
        tar = HashingWriter(compressed)
        try:
            write_tar(entries, tar, mtime=mtime, view=view)
        finally:  # also on failure: the compressing threads end (the file is discarded)
            compressed.close()
    return LayerBlob(f"sha256:{blob.sha.hexdigest()}", f"sha256:{tar.sha.hexdigest()}",
                     blob.size, compressor.media_type)
