"""A layer's tar stream without the members a reader will never open.

An SBOM generator opens a few files of an image: package databases, Python metadata,
binaries it can name by their file names. A copy of a layer that keeps every other
member's header but drops its bytes would still mislead a cataloger that reads sizes, so
a dropped member is dropped whole: header, pax records and data. What stays is copied
byte for byte (headers verbatim), so the same layer and the same rule give the same
bytes on every machine.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Protocol

BLOCK = 512
RECORD = 20 * BLOCK  # tarfile's record size: an archive it writes ends on a multiple
CHUNK = 1 << 20
MAX_META = 1 << 20  # a pax or GNU long-name record bigger than this is not a layer of ours

#: (path inside the layer, size in bytes) -> whether the regular file stays
Keep = Callable[[str, int], bool]


class Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...


class Unfilterable(Exception):
    """The layer cannot be thinned safely (a hard link to a dropped file, a sparse file,
    a malformed header): the caller uses the whole layer."""


@dataclass(frozen=True)
class Filtered:
    kept_bytes: int
    dropped_bytes: int
    dropped_files: int


def in_view(name: str, size: int, *, regular: bool, keep: Keep) -> bool:
    """Whether a layer's entry goes into syft's view (the one rule for the view written
    beside a layer and for :func:`filter_tar`): all but regular files stay, and so does
    every whiteout, which hides a lower layer's file that the view must hide too."""
    return not regular or name.rpartition("/")[2].startswith(".wh.") or keep(name, size)


def filter_tar(src: IO[bytes], dst: Writable, keep: Keep) -> Filtered:
    """Copy the tar stream ``src`` to ``dst`` without the regular files ``keep`` refuses."""
    state = _State(src, dst, keep)
    while state.member():
        pass
    return Filtered(state.kept, state.dropped, state.files)


class _State:
    def __init__(self, src: IO[bytes], dst: Writable, keep: Keep) -> None:
        self.src, self.dst, self.keep = src, dst, keep
        self.meta = bytearray()  # pax / GNU records that belong to the next member
        self.long_name: str | None = None
        self.pax: dict[str, str] = {}
        self.dropped_names: set[str] = set()
        self.kept = self.dropped = self.files = self.written = 0

    def member(self) -> bool:
        header = _exact(self.src, BLOCK)
        if header == bytes(BLOCK):
            if self.meta:
                raise Unfilterable("a pax or long-name record ends the archive")
            self._write(header + _exact(self.src, BLOCK))  # the end-of-archive marker
            if self.written % RECORD:  # padded as tarfile pads what it writes
                self._write(bytes(RECORD - self.written % RECORD))
            return False
        try:
            info = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
        except tarfile.TarError as exc:
            raise Unfilterable(f"a header does not parse: {exc}") from exc
        if info.type in (tarfile.XHDTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
            self._record(header, info)
        elif info.type == tarfile.XGLTYPE:
            self._write(header + self._data(info.size))  # applies to all that follows
        else:
            self._entry(header, info)
        return True

    def _record(self, header: bytes, info: tarfile.TarInfo) -> None:
        if info.size > MAX_META:
            raise Unfilterable(f"a {info.size}-byte pax or long-name record")
        data = self._data(info.size)
        self.meta += header + data
        body = data[: info.size]
        if info.type == tarfile.XHDTYPE:
            self.pax.update(_pax_records(body))
        elif info.type == tarfile.GNUTYPE_LONGNAME:
            self.long_name = body.rstrip(b"\0").decode("utf-8", "surrogateescape")

    def _entry(self, header: bytes, info: tarfile.TarInfo) -> None:
        name = self.pax.get("path") or self.long_name or info.name
        size_text = self.pax.get("size", str(info.size))
        if not (size_text.isascii() and size_text.isdigit()):
            raise Unfilterable(f"{name}: the pax size {size_text!r} is not a number")
        size = int(size_text)
        if info.type in (tarfile.GNUTYPE_SPARSE, tarfile.CONTTYPE) or "GNU.sparse.map" in self.pax:
            raise Unfilterable(f"{name} is a sparse or contiguous file")
        linked = self.pax.get("linkpath") or info.linkname
        if info.islnk() and _norm(linked) in self.dropped_names:
            raise Unfilterable(f"{name} is a hard link to {linked}, which was dropped")
        if in_view(name, size, regular=info.isreg(), keep=self.keep):
            self._write(bytes(self.meta) + header)
            self._copy(size)
            self.kept += size
        else:
            self._skip(size)
            self.dropped_names.add(_norm(name))
            self.dropped += size
            self.files += 1
        self.meta.clear()
        self.long_name, self.pax = None, {}

    def _write(self, data: bytes) -> None:
        self.dst.write(data)
        self.written += len(data)

    def _data(self, size: int) -> bytes:
        return _exact(self.src, _padded(size))

    def _copy(self, size: int) -> None:
        left = _padded(size)
        while left:
            chunk = _exact(self.src, min(left, CHUNK))
            self._write(chunk)
            left -= len(chunk)

    def _skip(self, size: int) -> None:
        left = _padded(size)
        while left:
            left -= len(_exact(self.src, min(left, CHUNK)))


def _norm(name: str) -> str:
    return name.removeprefix("./").lstrip("/")


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def _exact(src: IO[bytes], size: int) -> bytes:
    data = src.read(size)
    while len(data) < size:
        more = src.read(size - len(data))
        if not more:
            raise Unfilterable("the tar stream ends inside a member")
        data += more
    return data


def _pax_records(body: bytes) -> dict[str, str]:
    """``"%d %s=%s\\n"`` records (POSIX pax); only path, linkpath and size matter here."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(body) and body[pos] != 0:
        length_text, _, _rest = body[pos:pos + 24].partition(b" ")
        if not length_text.isdigit() or int(length_text) <= len(length_text) + 1:
            raise Unfilterable("a pax record has no length")
        length = int(length_text)
        record = body[pos + len(length_text) + 1: pos + length]
        key, eq, value = record.rstrip(b"\n").partition(b"=")
        if not eq or pos + length > len(body):
            raise Unfilterable("a pax record is malformed")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records
