"""Layer compressors. The compressed bytes depend on the library and its version, so
the lock records all three (name, level, library version) next to the digests."""

from __future__ import annotations

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


class Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Compressor:
    name: str  # gzip, zstd or none
    level: int

    @classmethod
    def parse(cls, text: str) -> Compressor:
        name, _, level = text.partition(":")
        if name not in MEDIA_TYPES:
            raise ConfigError(f"unknown compression {text!r}",
                              hint="use gzip, zstd or none (optionally NAME:LEVEL)")
        try:
            value = int(level) if level else DEFAULT_LEVELS[name]
        except ValueError as exc:
            raise ConfigError(f"compression level {level!r} is not a number") from exc
        return cls(name, value)

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
        return {"name": self.name, "level": self.level, "library": self.library}

    def open(self, sink: IO[bytes]) -> Sink:
        """A writable stream that compresses into ``sink``; closing it flushes the frame."""
        if self.name == "gzip":
            return _Gzip(sink, self.level)
        if self.name == "zstd":
            import zstandard

            # one thread: the same bytes whatever the machine; layers run in parallel instead
            cctx = zstandard.ZstdCompressor(level=self.level, threads=0, write_checksum=False,
                                            write_content_size=False)
            writer: Sink = cctx.stream_writer(sink, closefd=False)
            return writer
        return _Passthrough(sink)


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
