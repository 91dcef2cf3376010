"""Layer compressors. The compressed bytes depend on the library and its version, so
the lock records them (name, level, library version, block size) next to the digests.

A layer is compressed in blocks of a fixed uncompressed size (8 MiB), each an independent
gzip member or zstd frame (a valid gzip or zstd stream either way; Docker, containerd and
every OCI runtime read concatenated members). The blocks are compressed on every core,
and the bytes depend only on the block size, never on the number of threads: one big
layer (a CUDA wheel set) no longer runs on one core, and its digest stays the same on
any machine. A layer smaller than a block is one member, byte for byte what the
single-stream compressor of earlier versions wrote, which locks without a block size
still use.

A gzip layer also reuses the compression its wheels already carry (``wheelDeflate``): a
wheel member's deflate stream is complete, so with a gzip header, its CRC-32 and its
length it is a gzip member as it stands. Such a member is copied, not compressed again
(after it has been inflated and checked against its RECORD hash and CRC-32); the block
being filled before it is cut short. Those bytes depend only on the wheel, not on this
machine's zlib, and compressing them, most of a gzip build's time, is skipped.
"""

from __future__ import annotations

import collections
import concurrent.futures
import io
import threading
import zlib
from dataclasses import dataclass
from typing import IO, Any, Protocol

from reprolock.errors import ConfigError

MEDIA_TYPES = {
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "none": "application/vnd.oci.image.layer.v1.tar",
}
# gzip 5, as podman and containers/image use: on the S1 layers 1.6x faster than zlib's 6
# for 1.4% more bytes (docs/benchmarks.md); zstd 3 is zstd's own default
DEFAULT_LEVELS = {"gzip": 5, "zstd": 3, "none": 0}
# 8 MiB: resetting the dictionary that often costs well under 0.1% in size (deflate's
# window is 32 KiB, zstd 3's 2 MiB), and the blocks in flight stay small: with 16 MiB and
# one more block in flight per layer, two S2 layers at once peaked at 553 MB
DEFAULT_BLOCK_SIZE = 8 << 20
#: the smallest wheel member whose deflate stream a gzip layer reuses: below it, the
#: 18 bytes of a member of its own and the lost context of its neighbours cost more than
#: compressing it again saves
WHEEL_DEFLATE_MIN = 64 << 10
#: the header of a reused member: no name, mtime 0, XFL 0 (the wheel's level is not
#: known), OS 255; the trailer is the member's CRC-32 and length, as for every member
GZIP_MEMBER_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
MAX_BLOCK_SIZE = 64 << 20  # a lock may be hostile: its block size is held in memory
MIN_BLOCK_SIZE = 64 << 10


class Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Compressor:
    name: str  # gzip, zstd or none
    level: int
    block_size: int = 0  # uncompressed bytes per member; 0: one stream (locks before blocks)
    #: gzip: a wheel member of at least WHEEL_DEFLATE_MIN bytes that its wheel deflates
    #: becomes a gzip member of its own around the wheel's deflate stream, copied as is
    wheel_deflate: bool = False

    @classmethod
    def parse(cls, text: str, *, block_size: int | None = None,
              wheel_deflate: bool | None = None) -> Compressor:
        """NAME[:LEVEL]; a new image's blocks are DEFAULT_BLOCK_SIZE unless given, and a
        new gzip image reuses its wheels' deflate streams unless told otherwise."""
        name, _, level = text.partition(":")
        if name not in MEDIA_TYPES:
            raise ConfigError(f"unknown compression {text!r}",
                              hint="use gzip, zstd or none (optionally NAME:LEVEL)")
        try:
            value = int(level) if level else DEFAULT_LEVELS[name]
        except ValueError as exc:
            raise ConfigError(f"compression level {level!r} is not a number") from exc
        blocks = DEFAULT_BLOCK_SIZE if block_size is None else block_size
        reuse = block_size is None if wheel_deflate is None else wheel_deflate
        return cls(name, value, 0 if name == "none" else blocks,
                   reuse and name == "gzip" and blocks > 0)

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.name]

    @property
    def library(self) -> str:
        if self.name == "gzip":
            return f"zlib {zlib.ZLIB_RUNTIME_VERSION}"
        if self.name == "zstd":
            import zstandard

            return f"zstd {zstandard.ZSTD_VERSION[0]}.{zstandard.ZSTD_VERSION[1]}." \
                   f"{zstandard.ZSTD_VERSION[2]}"
        return "none"

    def describe(self) -> dict[str, Any]:
        found: dict[str, Any] = {"name": self.name, "level": self.level,
                                 "library": self.library}
        if self.block_size:
            found["blockSize"] = self.block_size
        if self.wheel_deflate:
            found["wheelDeflate"] = True
        return found

    def open(self, sink: IO[bytes], *, threads: int = 1) -> Sink:
        """A writable stream that compresses into ``sink``; closing it flushes the frame.
        ``threads`` changes how fast, never which bytes."""
        if self.block_size and self.name != "none":
            return _Blocks(sink, self, threads)
        return self._stream(sink)

    def compress_block(self, data: bytes) -> bytes:
        """``data`` as one complete member, as the single stream writes it."""
        out = io.BytesIO()
        stream = self._stream(out)
        stream.write(data)
        stream.close()
        return out.getvalue()

    def _stream(self, sink: IO[bytes]) -> Sink:
        if self.name == "gzip":
            return _Gzip(sink, self.level)
        if self.name == "zstd":
            writer: Sink = _zstd_context(self.level).stream_writer(sink, closefd=False)
            return writer
        return _Passthrough(sink)


_THREAD = threading.local()


def _zstd_context(level: int) -> Any:
    """This thread's zstd context for ``level``: one per block cost an allocation of its
    tables every 8 MiB. A stream writer resets the context it starts, so the bytes are
    those of a new one."""
    import zstandard

    contexts: dict[int, Any] = _THREAD.__dict__.setdefault("zstd", {})
    if level not in contexts:
        # one thread: the same bytes whatever the machine; blocks run in parallel instead
        contexts[level] = zstandard.ZstdCompressor(level=level, threads=0,
                                                   write_checksum=False,
                                                   write_content_size=False)
    return contexts[level]


class _Blocks:
    """Cuts what is written into blocks of ``block_size`` and compresses them on a pool
    of threads (zlib and zstd release the GIL), writing the members in order. At most
    ``threads`` blocks are in flight besides the one filling, so memory stays bounded on
    any layer size."""

    def __init__(self, sink: IO[bytes], compressor: Compressor, threads: int) -> None:
        self.sink = sink
        self.compressor = compressor
        # what is written waits as pieces, joined once per block: each byte is copied once
        # under the GIL on its way to a compressing thread, not three times
        self.pieces: list[bytes | memoryview] = []
        self.filled = 0
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, threads),
                                                          thread_name_prefix="compress")
        self.pending: collections.deque[concurrent.futures.Future[bytes]] = collections.deque()
        self.limit = max(1, threads)
        self.members = 0

    def write(self, data: bytes) -> int:
        size = self.compressor.block_size
        view = memoryview(data)
        while self.filled + len(view) >= size:
            take = size - self.filled
            self.pieces.append(view[:take])
            view = view[take:]
            self._submit(self._take())
        if view:
            # a caller may reuse its buffer: keep a copy of what waits (bytes are kept as is)
            self.pieces.append(data if len(view) == len(data) and isinstance(data, bytes)
                               else bytes(view))
            self.filled += len(view)
        return len(data)

    def _take(self) -> bytes:
        block = self.pieces[0] if len(self.pieces) == 1 and isinstance(
            self.pieces[0], bytes) else b"".join(self.pieces)
        self.pieces, self.filled = [], 0
        return block

    def _submit(self, block: bytes) -> None:
        while len(self.pending) >= self.limit:
            self.sink.write(self.pending.popleft().result())
        self.pending.append(self.pool.submit(self.compressor.compress_block, block))
        self.members += 1

    @property
    def takes_deflate(self) -> bool:
        """Whether :meth:`begin_member` may be called: reused deflate streams."""
        return self.compressor.wheel_deflate

    def begin_member(self) -> None:
        """End the block being filled (short) and start a member around a deflate stream
        that :meth:`member_data` then passes through unchanged."""
        if self.filled:
            self._submit(self._take())
        self._ready(GZIP_MEMBER_HEADER)
        self.members += 1

    def member_data(self, raw: bytes) -> None:
        if raw:
            self._ready(raw)

    def end_member(self, crc: int, size: int) -> None:
        self._ready(crc.to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little"))

    def _ready(self, data: bytes) -> None:
        """Bytes that need no compressing, in order after the blocks still in flight."""
        done: concurrent.futures.Future[bytes] = concurrent.futures.Future()
        done.set_result(data)
        while len(self.pending) >= self.limit:
            self.sink.write(self.pending.popleft().result())
        self.pending.append(done)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        try:
            if self.filled or not self.members:  # an empty layer is one empty member
                self._submit(self._take())
            while self.pending:
                self.sink.write(self.pending.popleft().result())
        finally:
            for future in self.pending:  # a failed write: compress nothing more
                future.cancel()
            self.pool.shutdown(wait=True)


class _Gzip:
    """gzip with a fixed header: no file name, mtime 0, OS byte 255 ('unknown')."""

    def __init__(self, sink: IO[bytes], level: int) -> None:
        self.sink = sink
        self.crc = 0
        self.size = 0
        self.zobj = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, 9, 0)
        xfl = b"\x02" if level == 9 else (b"\x04" if level == 1 else b"\x00")
        sink.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + xfl + b"\xff")

    def write(self, data: bytes) -> int:
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)
        out = self.zobj.compress(data)
        if out:
            self.sink.write(out)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.sink.write(self.zobj.flush())
        trailer = self.crc.to_bytes(4, "little") + (self.size & 0xFFFFFFFF).to_bytes(4, "little")
        self.sink.write(trailer)


class _Passthrough:
    def __init__(self, sink: IO[bytes]) -> None:
        self.sink = sink

    def write(self, data: bytes) -> int:
        self.sink.write(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass
