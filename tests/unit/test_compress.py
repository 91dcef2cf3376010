"""Issue 13: one big layer is compressed on every core, and its bytes do not depend on
the number of threads. Blocks of a fixed uncompressed size become independent gzip
members or zstd frames; a layer smaller than a block is byte for byte what the single
stream of earlier versions wrote, so older locks still rebuild to their digests."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import random
from pathlib import Path

import pytest
import zstandard

from reprolock.errors import LockFileError
from reprolock.lock.model import Compression
from reprolock.oci.compress import MIN_BLOCK_SIZE, Compressor
from reprolock.oci.tarball import Entry, write_layer

BLOCK = MIN_BLOCK_SIZE


def compressible(size: int, seed: int = 0) -> bytes:
    """Text-like bytes: random words, so deflate and zstd have real work to do."""
    rng = random.Random(seed)
    words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9)))
             for _ in range(500)]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + b" "
    return bytes(out[:size])


def compress(compressor: Compressor, data: bytes, *, threads: int, piece: int = 10_000) -> bytes:
    sink = io.BytesIO()
    stream = compressor.open(sink, threads=threads)
    for start in range(0, len(data), piece):  # written in pieces, as the tar writer does
        stream.write(data[start:start + piece])
    stream.close()
    return sink.getvalue()


def decompress(name: str, blob: bytes) -> bytes:
    if name == "gzip":
        return gzip.decompress(blob)
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob), read_across_frames=True)
    return reader.read()


@pytest.mark.parametrize("name", ["gzip", "zstd"])
def test_the_bytes_are_the_same_for_any_number_of_threads(name: str) -> None:
    data = compressible(7 * BLOCK + 1234)
    compressor = Compressor.parse(name, block_size=BLOCK)
    outputs = {threads: compress(compressor, data, threads=threads) for threads in (1, 2, 4)}
    assert len(set(outputs.values())) == 1
    assert decompress(name, outputs[1]) == data


@pytest.mark.parametrize("name", ["gzip", "zstd"])
def test_each_block_is_its_own_member(name: str) -> None:
    data = compressible(3 * BLOCK)
    compressor = Compressor.parse(name, block_size=BLOCK)
    blob = compress(compressor, data, threads=2)
    members = [compressor.compress_block(data[i:i + BLOCK]) for i in range(0, len(data), BLOCK)]
    assert blob == b"".join(members)
    assert len(members) == 3


@pytest.mark.parametrize("name", ["gzip", "zstd"])
def test_any_cut_of_the_writes_and_a_reused_buffer_give_the_same_bytes(name: str) -> None:
    """The blocks are joined from the pieces written: pieces across block boundaries,
    bigger than a block, empty, and a caller's buffer overwritten after each write."""
    data = compressible(5 * BLOCK + 777, seed=3)
    compressor = Compressor.parse(name, block_size=BLOCK)
    expected = b"".join(compressor.compress_block(data[i:i + BLOCK])
                        for i in range(0, len(data), BLOCK))
    rng = random.Random(5)
    sink = io.BytesIO()
    stream = compressor.open(sink, threads=2)
    buffer = bytearray(3 * BLOCK)
    pos = 0
    while pos < len(data):
        n = rng.choice([0, 1, 511, BLOCK - 3, BLOCK, 2 * BLOCK + 9])
        piece = data[pos:pos + n]
        buffer[:len(piece)] = piece
        stream.write(memoryview(buffer)[:len(piece)] if rng.random() < 0.5 else piece)
        buffer[:len(piece)] = bytes(len(piece))  # the caller reuses its buffer
        pos += len(piece)
    stream.close()
    assert sink.getvalue() == expected


@pytest.mark.parametrize("name", ["gzip", "zstd"])
@pytest.mark.parametrize("size", [0, 1, 5000, BLOCK - 1, BLOCK])
def test_a_layer_within_one_block_is_what_the_single_stream_wrote(name: str, size: int) -> None:
    data = compressible(size, seed=size)
    blocks = compress(Compressor.parse(name, block_size=BLOCK), data, threads=2)
    single = compress(Compressor.parse(name, block_size=0), data, threads=2)
    assert blocks == single
    assert decompress(name, blocks) == data


def test_a_new_image_gets_blocks_and_none_never_does() -> None:
    assert Compressor.parse("gzip").block_size == 8 << 20
    assert Compressor.parse("zstd:9").describe()["blockSize"] == 8 << 20
    assert Compressor.parse("none").block_size == 0
    assert "blockSize" not in Compressor.parse("none").describe()


def test_write_layer_digests_do_not_depend_on_threads(tmp_path: Path) -> None:
    big = compressible(5 * BLOCK, seed=3) + os.urandom(BLOCK)
    entries = [Entry("app/big.bin", "file", data=big), Entry("app/small.txt", "file", data=b"x\n")]
    compressor = Compressor.parse("gzip", block_size=BLOCK)
    one = write_layer(entries, tmp_path / "one", compressor=compressor, threads=1)
    two = write_layer(entries, tmp_path / "two", compressor=compressor, threads=2)
    assert one == two
    assert one.digest == "sha256:" + hashlib.sha256((tmp_path / "two").read_bytes()).hexdigest()


def test_a_failed_layer_leaves_no_file_and_no_thread(tmp_path: Path) -> None:
    import threading

    def entries():  # type: ignore[no-untyped-def]
        yield Entry("app/a.bin", "file", data=compressible(3 * BLOCK))
        raise OSError("the wheel could not be read")

    before = threading.active_count()
    with pytest.raises(OSError):
        write_layer(entries(), tmp_path / "layer", compressor=Compressor.parse(
            "zstd", block_size=BLOCK), threads=2)
    assert not (tmp_path / "layer").exists()
    assert threading.active_count() == before


@pytest.mark.parametrize("value", [1, MIN_BLOCK_SIZE - 1, (64 << 20) + 1, True, "16"])
def test_a_lock_with_a_block_size_out_of_bounds_is_refused(value: object) -> None:
    with pytest.raises(LockFileError, match="blockSize"):
        Compression.from_json({"name": "gzip", "level": 5, "library": "zlib 1.2.13",
                               "blockSize": value})


def test_a_lock_without_a_block_size_means_one_stream() -> None:
    record = Compression.from_json({"name": "gzip", "level": 5, "library": "zlib 1.2.13"})
    assert record.block_size == 0
    assert "blockSize" not in record.to_json()
    blocked = Compression.from_json({**record.to_json(), "blockSize": BLOCK})
    assert blocked.to_json()["blockSize"] == BLOCK
