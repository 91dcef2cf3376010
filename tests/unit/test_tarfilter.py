"""Issue 13: the SBOM's view of a layer. syft is given each layer reprolock built without
the files its catalogers never open; the view is written beside the layer while it is
built (a tee in the tar writer) or cut from the layer later (a filter of its tar stream),
and both must give the same bytes, or the SBOM would depend on the cache's history."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from reprolock.oci.compress import Compressor
from reprolock.oci.tarball import Entry, ZipMember, write_layer, write_tar
from reprolock.oci.tarfilter import Unfilterable, filter_tar
from reprolock.sbom.interface import CatalogReads
from reprolock.sbom.syft import READS

SITE = "opt/venv/lib/python3.11/site-packages"
LONG = f"{SITE}/pkg/" + "deep/" * 30 + "named_by_a_pax_record.py"  # over 100 bytes
BIG = hashlib.sha256(b"x").hexdigest().encode() * 5000  # 320 kB: a reused deflate stream


class _View(io.BytesIO):
    def __init__(self, reads: CatalogReads) -> None:
        super().__init__()
        self.reads = reads
        self.dropped = 0

    def keeps(self, name: str, size: int) -> bool:
        return self.reads.needs(name, size)

    def left_out(self, size: int) -> None:
        self.dropped += size


def _entries(tmp_path: Path) -> list[Entry]:
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("pkg/weights.bin", BIG)
        zf.writestr("pkg-1.0.dist-info/METADATA", "Name: pkg\nVersion: 1.0\n")
    member = ZipMember(wheel, "pkg/weights.bin", len(BIG), hashlib.sha256(BIG).digest(),
                       wheel.name)
    meta = ZipMember(wheel, "pkg-1.0.dist-info/METADATA", 23, None, wheel.name)
    return [
        Entry(f"{SITE}/pkg/weights.bin", "file", member=member),
        Entry(f"{SITE}/pkg-1.0.dist-info/METADATA", "file", member=meta),
        Entry(f"{SITE}/pkg-1.0.dist-info/RECORD", "file", data=b"pkg/weights.bin,,\n"),
        Entry(LONG, "file", data=b"print('dropped')\n"),
        Entry(f"{SITE}/pkg/bin/python3.11", "file", data=b"\x7fELF kept by name",
              executable=True),
        Entry(f"{SITE}/pkg/link", "symlink", link="weights.bin"),
        Entry(f"{SITE}/pkg/caf\u00e9.txt", "file", data=b"non-ASCII name, dropped"),
        Entry(f"{SITE}/pkg/.wh.old_module.py", "file", data=b""),  # hides a lower file
    ]


def _names(tar_bytes: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        return [m.name for m in tar.getmembers() if m.isreg()]


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_the_tee_and_the_filter_give_the_same_view(tmp_path: Path, compression: str) -> None:
    entries = _entries(tmp_path)
    view = _View(READS)
    layer = write_layer(entries, tmp_path / "layer", view=view, threads=2,
                        compressor=Compressor.parse(compression, wheel_deflate=True))
    whole = io.BytesIO()
    write_tar(entries, whole)
    assert "sha256:" + hashlib.sha256(whole.getvalue()).hexdigest() == layer.diff_id
    cut = io.BytesIO()
    stats = filter_tar(io.BytesIO(whole.getvalue()), cut, READS.needs)
    assert cut.getvalue() == view.getvalue()
    assert stats.dropped_bytes == view.dropped == len(BIG) + 17 + 23
    assert _names(view.getvalue()) == [f"{SITE}/pkg-1.0.dist-info/METADATA",
                                       f"{SITE}/pkg-1.0.dist-info/RECORD",
                                       f"{SITE}/pkg/.wh.old_module.py",
                                       f"{SITE}/pkg/bin/python3.11"]
    with tarfile.open(fileobj=io.BytesIO(view.getvalue())) as tar:
        assert tar.getmember(f"{SITE}/pkg/link").issym()  # links and directories stay
        assert tar.extractfile(f"{SITE}/pkg-1.0.dist-info/METADATA").read() == (  # type: ignore[union-attr]
            b"Name: pkg\nVersion: 1.0\n")
    assert len(view.getvalue()) % 10240 == 0  # ends as tarfile ends an archive


def test_the_filter_reads_gnu_long_names_and_drops_their_records() -> None:
    kept = f"{SITE}/{'a' * 120}-1.0.dist-info/METADATA"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in ((LONG, b"dropped"), (kept, b"Name: a\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    filter_tar(io.BytesIO(raw.getvalue()), out, READS.needs)
    assert _names(out.getvalue()) == [kept]
    assert b"named_by_a_pax_record" not in out.getvalue()  # its long-name record went too


def test_a_hard_link_to_a_dropped_file_keeps_the_whole_layer() -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("usr/bin/perl5.36.0")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"perl"))
        link = tarfile.TarInfo("usr/bin/perl")  # a name the binary classifier opens
        link.type, link.linkname = tarfile.LNKTYPE, "usr/bin/perl5.36.0"
        tar.addfile(link)
    with pytest.raises(Unfilterable, match="hard link"):
        filter_tar(io.BytesIO(raw.getvalue()), io.BytesIO(), READS.needs)


def test_a_truncated_layer_is_not_thinned(tmp_path: Path) -> None:
    whole = io.BytesIO()
    write_tar(_entries(tmp_path), whole)
    with pytest.raises(Unfilterable, match="ends inside"):
        filter_tar(io.BytesIO(whole.getvalue()[:3000]), io.BytesIO(), READS.needs)
    garbage = gzip.compress(b"not a tar" * 100)
    with pytest.raises(Unfilterable):
        filter_tar(io.BytesIO(garbage), io.BytesIO(), READS.needs)


@pytest.mark.parametrize(("path", "needed"), [
    (f"{SITE}/torch-2.13.0.dist-info/METADATA", True),
    (f"{SITE}/torch-2.13.0.dist-info/licenses/LICENSE", True),
    (f"{SITE}/legacy.egg-info", True),
    (f"{SITE}/old-1.0-py3.11.egg-info/installed-files.txt", True),
    (f"{SITE}/torch/lib/libtorch_cuda.so", False),
    (f"{SITE}/torch/__init__.py", False),
    (f"{SITE}/nodejs/bin/node", True),
    ("usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0", True),
    ("var/lib/dpkg/status", True),
    ("usr/share/doc/libc6/copyright", True),
    ("opt/venv/pyvenv.cfg", True),
])
def test_what_syft_1_18_1_opens(path: str, needed: bool) -> None:
    assert READS.needs(path, 10 << 30) is needed


def test_another_syft_version_is_given_the_whole_image(monkeypatch: pytest.MonkeyPatch) -> None:
    import reprolock.sbom.syft as syft

    monkeypatch.setattr(syft, "syft_binary", lambda: "/nowhere/syft")
    monkeypatch.setattr(syft, "_version", lambda _binary: "1.19.0")
    assert syft.SyftGenerator().reads() is None
    monkeypatch.setattr(syft, "_version", lambda _binary: syft.READS_REVIEWED_FOR)
    assert syft.SyftGenerator().reads() is syft.READS


def test_a_pax_size_that_is_not_a_number_is_not_thinned() -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(f"{SITE}/pkg/x.py")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    data = raw.getvalue()
    # a pax record naming a size, put in front of the member by hand
    record = b"15 size=notnum\n"
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type, pax.size = tarfile.XHDTYPE, len(record)
    header = pax.tobuf(tarfile.USTAR_FORMAT)
    crafted = header + record + bytes(512 - len(record)) + data
    with pytest.raises(Unfilterable, match="size"):
        filter_tar(io.BytesIO(crafted), io.BytesIO(), READS.needs)
