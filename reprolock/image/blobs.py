"""Reading layers with proof: every byte of a blob is hashed against its descriptor's
digest and size, and the tar inside against the config's diff_id, while it streams
(layers can be gigabytes, so nothing holds one in memory).

    >>> problems = check_layer(source, image.layers[0], image.diff_ids[0])  # doctest: +SKIP
    >>> problems                                                              # doctest: +SKIP
    ()
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import zlib
from collections.abc import Callable
from typing import IO, cast

import zstandard

from reprolock.errors import ImageSourceError
from reprolock.image.interface import Descriptor, ImageSource

CHUNK = 1 << 20
#: gzip's best is about 1032:1 (a file of zeros); real layers are 2-10:1
MAX_RATIO = 1100
#: zstd's best: a 4-byte run-length block stands for 128 KiB
MAX_ZSTD_RATIO = 33_000
MIN_INFLATED = 64 << 20  # a small layer of zeros is allowed its 64 MiB
_GZIP = b"\x1f\x8b"
_ZSTD = b"\x28\xb5\x2f\xfd"


class DigestReader(io.RawIOBase):
    """Passes a stream's bytes through, hashing them; never reads more than ``limit``
    bytes (a blob longer than its descriptor says is refused, not read on and on)."""

    def __init__(self, raw: IO[bytes], *, what: str, limit: int | None = None,
                 past_limit: str | None = None) -> None:
        self._raw = raw
        self._what = what
        self._limit = limit
        self._past_limit = past_limit or f"is longer than the {limit} bytes its descriptor says"
        self._head = b""
        self._sha = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def peek_head(self, size: int) -> bytes:
        """The first ``size`` bytes (fewer at the end), still to be read."""
        while len(self._head) < size:
            data = self._raw.read(size - len(self._head))
            if not data:
                break
            self._head += data
        return self._head[:size]

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._head:
            data, self._head = self._head[: len(buffer)], self._head[len(buffer):]
        else:
            data = self._raw.read(min(len(buffer), CHUNK))
        n = len(data)
        buffer[:n] = data
        self._sha.update(data)
        self.count += n
        if self._limit is not None and self.count > self._limit:
            raise ImageSourceError(f"{self._what} {self._past_limit}",
                                   hint="rebuild or re-export the image")
        return n

    def drain(self) -> str:
        """Read what is left; the digest of everything read."""
        buffer = bytearray(CHUNK)
        while self.readinto(buffer):
            pass
        return "sha256:" + self._sha.hexdigest()


def check_layer(source: ImageSource, desc: Descriptor, diff_id: str, *,
                read_tar: Callable[[IO[bytes]], None] | None = None) -> tuple[str, ...]:
    """Stream one layer; what is wrong with it (nothing: it is what the image says).

    ``read_tar`` is given the uncompressed tar stream first and may read as much of it
    as it likes; the rest is read here. An ImageSourceError it raises (a bound of
    its own) propagates; tar and decompression errors become problems.
    """
    with source.open_blob(desc.digest) as raw:
        return check_stream(raw, desc, diff_id, read_tar=read_tar)


def check_stream(raw: IO[bytes], desc: Descriptor, diff_id: str, *,
                 read_tar: Callable[[IO[bytes]], None] | None = None) -> tuple[str, ...]:
    """:func:`check_layer` of a blob already open."""
    what = f"layer {desc.digest}"
    blob = DigestReader(raw, what=what, limit=desc.size)
    try:
        actual_diff = _uncompressed(blob, what, read_tar, desc)
        unreadable = None
    except (OSError, EOFError, zlib.error, tarfile.TarError, zstandard.ZstdError) as exc:
        actual_diff, unreadable = None, f"{what} is not a readable layer: {exc}"
    actual = blob.drain()
    if actual != desc.digest:
        return (f"blob {desc.digest} is corrupt or was replaced: its content hashes to "
                f"{actual}",)
    problems = []
    if blob.count != desc.size:
        problems.append(f"blob {desc.digest} is {blob.count} bytes, its descriptor says "
                        f"{desc.size}")
    if unreadable:
        problems.append(unreadable)
    elif actual_diff != diff_id:
        problems.append(f"{what}: its tar hashes to {actual_diff}, not to the config's "
                        f"diff_id {diff_id}")
    return tuple(problems)


def _uncompressed(blob: DigestReader, what: str,
                  read_tar: Callable[[IO[bytes]], None] | None, desc: Descriptor) -> str:
    """Decompress ``blob`` (gzip, zstd or none, told by its first bytes, not by the media
    type a manifest claims) and return the digest of the tar."""
    head = blob.peek_head(4)
    tar = blob
    if head == _ZSTD and not desc.media_type.endswith("zstd"):
        # what the media type says is what an engine and the probe's checks go by
        raise ImageSourceError(f"{what} is compressed with zstd, but its media type "
                               f"{desc.media_type} says otherwise",
                               hint="rebuild or re-export the image")
    if head.startswith(_GZIP) or head == _ZSTD:
        # a crafted gzip layer can inflate 1032-fold, a zstd one (allowed only where its
        # media type says zstd: reprolock's own images) 32768-fold, which a file of
        # zeros also reaches: each is allowed its format's best, no more
        ratio = MAX_RATIO if head.startswith(_GZIP) else MAX_ZSTD_RATIO
        most = max(MIN_INFLATED, desc.size * ratio)
        tar = DigestReader(_decompressor(blob, head), what=f"{what} (uncompressed)",
                           limit=most, past_limit=f"inflates to more than {most} bytes, "
                           f"over {ratio} times its {desc.size}: no real layer does")
    if read_tar is not None:
        read_tar(io.BufferedReader(tar, CHUNK))
    return tar.drain()


def _decompressor(blob: DigestReader, head: bytes) -> IO[bytes]:
    buffered = io.BufferedReader(blob, CHUNK)
    if head.startswith(_GZIP):
        return cast(IO[bytes], gzip.GzipFile(fileobj=buffered, mode="rb"))
    return cast(IO[bytes], zstandard.ZstdDecompressor().stream_reader(
        buffered, read_across_frames=True, closefd=False))
