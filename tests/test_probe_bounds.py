"""The base-image probe reads hostile content: every read is bounded, and every layer it
reads is checked against its blob digest and diff_id before its facts are believed."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from reprolock.errors import ImageSourceError
from reprolock.image.probe import probe
from reprolock.image.reference import open_source
from reprolock.oci.model import LayerBlob
from reprolock.target import Platform
from tests.support.images import make_base
from tests.support.oci_writer import write_image

AMD64 = Platform.parse("linux/amd64")
BOMB = 300 << 20  # 300 MB of zeros: about 300 KB as gzip

PROBE = """
import resource, sys
from pathlib import Path
from reprolock.errors import ImageSourceError
from reprolock.image.probe import probe
from reprolock.image.reference import open_source
from reprolock.target import Platform

source = open_source(sys.argv[1], root=Path("/"))
try:
    probe(source, source.resolve(Platform.parse("linux/amd64")), cache_dir=None)
    print("accepted")
except ImageSourceError as exc:
    print("refused:", exc.diagnostics())
finally:
    # VmHWM, not ru_maxrss: Linux carries the forking parent's peak over exec into
    # ru_maxrss, so a big pytest process made the probe look big
    hwm = [line for line in Path("/proc/self/status").read_text().splitlines()
           if line.startswith("VmHWM:")]
    print("maxrss_kb", hwm[0].split()[1] if hwm else resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss)
"""


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


class _Sink:
    """Hashes the tar, gzips it into a file and hashes that: a layer, streamed."""

    def __init__(self, out: io.BufferedWriter) -> None:
        self.tar = hashlib.sha256()
        self.out = out
        self.blob = hashlib.sha256()
        self.size = 0
        self.gz = gzip.GzipFile(fileobj=self, mode="wb", compresslevel=6, mtime=0)  # type: ignore[arg-type]

    def write(self, data: bytes) -> int:  # from gzip: compressed bytes
        self.blob.update(data)
        self.size += len(data)
        return self.out.write(data)

    def flush(self) -> None:
        pass


def bomb_base(layout: Path, big: str) -> str:
    """An OCI layout whose one gzip layer holds a 300 MB file named ``big`` next to a
    stand-in interpreter and C library; its oci-layout reference."""
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    tmp = blobs / ".layer"
    with open(tmp, "wb") as out:
        sink = _Sink(out)

        class TarOut:
            def write(self, data: bytes) -> int:
                sink.tar.update(data)
                return sink.gz.write(data)

        with tarfile.open(fileobj=TarOut(), mode="w|") as tar:  # type: ignore[call-overload]
            for name, data in (("usr/bin/python3.11", b"#!/bin/sh\n"),
                               ("lib/x86_64-linux-gnu/libc.so.6",
                                b"GNU C Library (Debian GLIBC) stable release version 2.36.\n")):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            info = tarfile.TarInfo(big)
            info.size = BOMB
            tar.addfile(info, _Zeros(BOMB))  # type: ignore[arg-type]
        sink.gz.close()
    digest = "sha256:" + sink.blob.hexdigest()
    tmp.rename(blobs / digest.removeprefix("sha256:"))
    layer = LayerBlob(digest, "sha256:" + sink.tar.hexdigest(), sink.size,
                      "application/vnd.oci.image.layer.v1.tar+gzip")
    write_image(layout, config={"architecture": "amd64", "os": "linux"}, layers=[layer],
                tag="bomb")
    return f"oci-layout:{layout}:bomb"


@pytest.mark.parametrize("big", ["var/lib/dpkg/status", "lib/apk/db/installed"])
def test_a_huge_file_the_probe_reads_is_refused_in_bounded_memory(tmp_path: Path,
                                                                  big: str) -> None:
    reference = bomb_base(tmp_path / "layout", big)
    assert sum(f.stat().st_size for f in (tmp_path / "layout").rglob("*")) < 4 << 20
    proc = subprocess.run([sys.executable, "-c", PROBE, reference], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "refused:" in proc.stdout, proc.stdout
    assert big in proc.stdout and "layer 1" in proc.stdout
    rss_mb = int(proc.stdout.split("maxrss_kb")[1]) / 1024
    assert rss_mb < 200, proc.stdout


def _tiny(tmp_path: Path) -> tuple[Path, dict]:
    layout = tmp_path / "layout"
    make_base(layout, tmp_path / "work")
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads(_blob(layout, index["manifests"][0]["digest"]).read_bytes())
    return layout, manifest


def _blob(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest.removeprefix("sha256:")


def _probe(layout: Path, tag: str = "tiny") -> object:
    source = open_source(f"oci-layout:{layout}:{tag}", root=Path("/"))
    try:
        return probe(source, source.resolve(AMD64), cache_dir=None)
    finally:
        source.close()


def test_a_replaced_base_layer_is_refused(tmp_path: Path) -> None:
    """Another, valid layer under the old layer's name: the probe read its facts."""
    layout, manifest = _tiny(tmp_path)
    other = tmp_path / "other"
    make_base(other, tmp_path / "work-other", python="3.12.1")
    other_manifest = json.loads(_blob(other, json.loads(
        (other / "index.json").read_text())["manifests"][0]["digest"]).read_bytes())
    digest = manifest["layers"][0]["digest"]
    shutil.copyfile(_blob(other, other_manifest["layers"][0]["digest"]), _blob(layout, digest))
    with pytest.raises(ImageSourceError, match=r"replaced|longer|bytes") as caught:
        _probe(layout)
    assert digest in caught.value.message


def test_a_bogus_diff_id_of_the_base_is_refused(tmp_path: Path) -> None:
    """docker load refuses such an image: the lock must not record it."""
    layout, manifest = _tiny(tmp_path)
    layer = manifest["layers"][0]
    bogus = LayerBlob(layer["digest"], "sha256:" + "1" * 64, layer["size"], layer["mediaType"])
    write_image(layout, config={"architecture": "amd64", "os": "linux"}, layers=[bogus],
                tag="bogus")
    with pytest.raises(ImageSourceError, match="diff_id") as caught:
        _probe(layout, "bogus")
    assert "sha256:" + "1" * 64 in caught.value.message


@pytest.mark.parametrize("declared", ["3.11.2\nhome = /evil", "3.11.2 x", "3.11.2\u2028"])
def test_a_python_version_with_more_than_a_version_is_not_taken(tmp_path: Path,
                                                                declared: str) -> None:
    """The base's PYTHON_VERSION goes into the lock and pyvenv.cfg: a line break there
    would add a line to pyvenv.cfg, so only a plain version is taken from it."""
    layout = tmp_path / "layout"
    make_base(layout, tmp_path / "work", env=["PATH=/usr/bin:/bin",
                                              f"PYTHON_VERSION={declared}"])
    facts = _probe(layout)
    assert facts.python_version in ("3.11", "3.11.2")  # type: ignore[attr-defined]
    assert "\n" not in facts.python_version and " " not in facts.python_version  # type: ignore[attr-defined]


def test_a_plain_python_version_is_taken(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    make_base(layout, tmp_path / "work", env=["PATH=/usr/bin:/bin", "PYTHON_VERSION=3.11.9"])
    assert _probe(layout).python_version == "3.11.9"  # type: ignore[attr-defined]
