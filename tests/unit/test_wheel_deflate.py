"""Issue 13: a gzip layer reuses the deflate streams its wheels already carry. A wheel
member of at least 64 KiB is a gzip member of its own around the wheel's own deflate
bytes (copied, not compressed again); the layer's tar, and so its diff_id, is the same as
without reuse; the bytes do not depend on the number of threads; a wheel whose deflate
stream does not end where its directory says is refused, never copied."""

from __future__ import annotations

import gzip
import hashlib
import struct
import zipfile
from pathlib import Path

import pytest

from reprolock.errors import ArtifactError, LockFileError
from reprolock.lock.model import Compression
from reprolock.oci.compress import GZIP_MEMBER_HEADER, MIN_BLOCK_SIZE, Compressor
from reprolock.oci.tarball import Entry, ZipMember, write_layer
from tests.unit.test_compress import compressible

BIG = compressible(300_000, seed=7)  # above WHEEL_DEFLATE_MIN, with real work for deflate
SMALL = b"print('small')\n" * 100  # below it: compressed with its neighbours


def wheel(path: Path, members: dict[str, bytes], level: int = 9) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data,
                        compress_type=zipfile.ZIP_DEFLATED, compresslevel=level)
    return path


def entries(archive: Path, members: dict[str, bytes]) -> list[Entry]:
    return [Entry(f"venv/{name}", "file", member=ZipMember(
        archive, name, len(data), hashlib.sha256(data).digest(), archive.name))
        for name, data in members.items()]


def raw_deflate(archive: Path, name: str) -> bytes:
    """The member's deflate stream as the wheel stores it."""
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo(name)
    data = archive.read_bytes()
    name_length, extra_length = struct.unpack_from("<HH", data, info.header_offset + 26)
    start = info.header_offset + 30 + name_length + extra_length
    return data[start:start + info.compress_size]


MEMBERS = {"pkg/big.so": BIG, "pkg/small.py": SMALL, "pkg/zz.bin": BIG[::-1]}
REUSE = Compressor.parse("gzip", block_size=MIN_BLOCK_SIZE, wheel_deflate=True)
PLAIN = Compressor.parse("gzip", block_size=MIN_BLOCK_SIZE, wheel_deflate=False)


def test_a_big_member_is_copied_as_a_gzip_member_of_its_own(tmp_path: Path) -> None:
    archive = wheel(tmp_path / "w.whl", MEMBERS)
    layer = write_layer(entries(archive, MEMBERS), tmp_path / "layer", compressor=REUSE)
    blob = (tmp_path / "layer").read_bytes()
    for name in ("pkg/big.so", "pkg/zz.bin"):
        raw = raw_deflate(archive, name)
        data = MEMBERS[name]
        member = GZIP_MEMBER_HEADER + raw + struct.pack("<II", _crc(data), len(data))
        assert member in blob  # the wheel's own bytes, with a header and a trailer
    assert raw_deflate(archive, "pkg/small.py") not in blob  # compressed again, in a block
    plain = write_layer(entries(archive, MEMBERS), tmp_path / "plain", compressor=PLAIN)
    assert layer.diff_id == plain.diff_id  # the same tar
    assert layer.digest != plain.digest
    assert "sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest() == layer.diff_id


def test_reused_members_do_not_depend_on_threads(tmp_path: Path) -> None:
    archive = wheel(tmp_path / "w.whl", MEMBERS)
    found = {write_layer(entries(archive, MEMBERS), tmp_path / f"l{n}", compressor=REUSE,
                         threads=n) for n in (1, 2, 4)}
    assert len(found) == 1


def test_the_lock_records_reuse_and_reads_it_back() -> None:
    described = Compressor.parse("gzip").describe()
    assert described["wheelDeflate"] is True  # a new gzip image reuses
    record = Compression.from_json(described)
    assert record.wheel_deflate and record.to_json() == described
    assert "wheelDeflate" not in Compressor.parse("zstd").describe()
    older = Compression.from_json({k: v for k, v in described.items() if k != "wheelDeflate"})
    assert not older.wheel_deflate  # a lock from before: rebuilt without reuse


@pytest.mark.parametrize("change", [{"wheelDeflate": "yes"}, {"wheelDeflate": 1},
                                    {"name": "zstd"}, {"blockSize": None}])
def test_a_lock_with_a_bad_wheel_deflate_is_refused(change: dict[str, object]) -> None:
    doc = {**Compressor.parse("gzip").describe(), **change}
    doc = {k: v for k, v in doc.items() if v is not None}
    with pytest.raises(LockFileError, match="wheelDeflate"):
        Compression.from_json(doc)


def test_a_deflate_stream_with_bytes_after_its_end_is_refused(tmp_path: Path) -> None:
    """A crafted wheel whose member's stream ends before its compressed size: the extra
    bytes would be copied into the layer and read as the member's trailer."""
    archive = wheel(tmp_path / "w.whl", {"pkg/big.so": BIG})
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("pkg/big.so")
    raw = raw_deflate(archive, "pkg/big.so")
    forged = tmp_path / "forged.whl"
    forged.write_bytes(_one_member_zip(raw + b"JUNK", info.CRC, len(BIG)))
    with zipfile.ZipFile(forged) as zf:  # zipfile itself reads it: CRC and length hold
        assert zf.read("pkg/big.so") == BIG
    with pytest.raises(ArtifactError, match="does not end where the archive says"):
        write_layer(entries(forged, {"pkg/big.so": BIG}), tmp_path / "layer",
                    compressor=REUSE)
    assert not (tmp_path / "layer").exists()


def _one_member_zip(raw: bytes, crc: int, size: int) -> bytes:
    """A zip whose one member, pkg/big.so, holds ``raw`` as its deflate data."""
    name = b"pkg/big.so"
    local = struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, 8, 0, 33, crc, len(raw), size,
                        len(name), 0) + name
    central = struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, 8, 0, 33, crc, len(raw),
                          size, len(name), 0, 0, 0, 0, 0, 0) + name
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, 1, 1, len(central),
                      len(local) + len(raw), 0)
    return local + raw + central + end


def _crc(data: bytes) -> int:
    import zlib

    return zlib.crc32(data)


def test_a_member_that_inflates_a_thousandfold_comes_in_bounded_pieces(tmp_path: Path) -> None:
    """Zeros deflate about 1000:1: one megabyte read would be a gigabyte in memory at once;
    it is passed on in pieces of at most 4 MiB, and the layer is still right."""
    from reprolock.oci.tarball import _deflate_pieces

    zeros = bytes(64 << 20)
    archive = wheel(tmp_path / "w.whl", {"pkg/zeros.bin": zeros}, level=9)
    with zipfile.ZipFile(archive) as zf:
        pieces = [len(plain) for _raw, plain in _deflate_pieces(zf, zf.getinfo("pkg/zeros.bin"))]
    assert sum(pieces) == len(zeros) and max(pieces) <= 4 << 20
    layer = write_layer(entries(archive, {"pkg/zeros.bin": zeros}), tmp_path / "layer",
                        compressor=REUSE)
    plain = write_layer(entries(archive, {"pkg/zeros.bin": zeros}), tmp_path / "plain",
                        compressor=PLAIN)
    assert layer.diff_id == plain.diff_id
