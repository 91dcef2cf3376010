"""Probing a base image: Python interpreter and version, C library, and the probe cache."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest

from reprolock.errors import ImageSourceError
from reprolock.image.interface import ImageSource, ResolvedImage
from reprolock.image.probe import BaseFacts, probe
from reprolock.image.reference import open_source
from reprolock.target import Platform
from tests.support.images import make_base, make_rootfs
from tests.support.oci_writer import add_layer_from_dir, write_image
from tests.support.services import skopeo_copy

AMD64 = Platform.parse("linux/amd64")
EXAMPLE_BASE = Path(__file__).resolve().parent.parent / "fixtures/example/.reprolock/base"
GLIBC_BANNER = b"\x7fELF...GNU C Library (Debian GLIBC) stable release version 2.36.\n"


def facts_of(reference: str, *, cache_dir: Path | None = None) -> BaseFacts:
    source = open_source(reference, root=Path("/"))
    try:
        return probe(source, source.resolve(AMD64), cache_dir=cache_dir)
    finally:
        source.close()


class CountingSource(ImageSource):
    """Wraps a source and counts the blobs read through it."""

    def __init__(self, inner: ImageSource) -> None:
        super().__init__(inner.reference)
        self.inner = inner
        self.opened = 0

    @property
    def pinned(self) -> bool:
        return self.inner.pinned

    def resolve(self, platform: Platform) -> ResolvedImage:
        return self.inner.resolve(platform)

    def open_blob(self, digest: str) -> IO[bytes]:
        self.opened += 1
        return self.inner.open_blob(digest)


@pytest.fixture
def image_from(tmp_path: Path) -> Callable[..., str]:
    """Write an image from layers given as ``{path: bytes | 'symlink->target'}``; return
    its oci-layout reference."""
    counter = iter(range(100))

    def make(*layers: dict[str, bytes | str], env: list[str] | None = None) -> str:
        n = next(counter)
        layout = tmp_path / f"layout-{n}"
        blobs = []
        for i, files in enumerate(layers):
            root = tmp_path / f"rootfs-{n}-{i}"
            root.mkdir()
            for name, content in files.items():
                path = root / name
                path.parent.mkdir(parents=True, exist_ok=True)
                if isinstance(content, str) and content.startswith("symlink->"):
                    path.symlink_to(content.removeprefix("symlink->"))
                else:
                    path.write_bytes(content if isinstance(content, bytes) else content.encode())
            blobs.append(add_layer_from_dir(layout, root))
        config = {"architecture": "amd64", "os": "linux",
                  "config": {"Env": env or ["PATH=/usr/bin:/bin"]}}
        write_image(layout, config=config, layers=blobs, tag="img")
        return f"oci-layout:{layout}:img"

    return make


# -- what a base runs --------------------------------------------------------------------

def test_debian_style(tiny_base: Path) -> None:
    facts = facts_of(f"oci-layout:{tiny_base}:tiny")
    assert facts == BaseFacts("/usr/bin/python3.11", "3.11.2", "glibc", "2.36")


def test_other_python_version(tiny_base: Path) -> None:
    facts = facts_of(f"oci-layout:{tiny_base}:py312")
    assert (facts.python_path, facts.python_version) == ("/usr/bin/python3.12", "3.12.1")


def test_musl(tiny_base: Path) -> None:
    facts = facts_of(f"oci-layout:{tiny_base}:musl")
    assert (facts.libc_family, facts.libc_version) == ("musl", "1.2")
    assert facts.python_path == "/usr/bin/python3.11"
    assert facts.python_version == "3.11"  # no package database that records the patch level


def test_without_dpkg_reads_the_libc_banner(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    make_base(layout, tmp_path, tag="nodpkg", dpkg=False, glibc="2.31")
    facts = facts_of(f"oci-layout:{layout}:nodpkg")
    assert facts == BaseFacts("/usr/bin/python3.11", "3.11", "glibc", "2.31")


def test_old_glibc_file_name(image_from: Callable[..., str]) -> None:
    ref = image_from({"usr/bin/python3.9": b"", "lib/x86_64-linux-gnu/libc-2.31.so": b"\x7fELF",
                      "lib/x86_64-linux-gnu/libc.so.6": "symlink->libc-2.31.so"})
    assert facts_of(ref) == BaseFacts("/usr/bin/python3.9", "3.9", "glibc", "2.31")


def test_python_version_env_wins(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    make_base(layout, tmp_path, tag="env", env=["PATH=/usr/bin", "PYTHON_VERSION=3.11.9"])
    assert facts_of(f"oci-layout:{layout}:env").python_version == "3.11.9"


def test_python_version_env_of_another_minor_is_ignored(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    make_base(layout, tmp_path, tag="env", env=["PYTHON_VERSION=3.12.4"])
    facts = facts_of(f"oci-layout:{layout}:env")
    assert facts.python_version == "3.11.2"  # from dpkg: the env names another Python


def test_official_python_image_shape(image_from: Callable[..., str]) -> None:
    """python:3.11-slim: CPython in /usr/local, Debian's libc, PYTHON_VERSION set."""
    ref = image_from(
        {"usr/local/bin/python3.11": b"\x7fELF", "usr/local/bin/python3": "symlink->python3.11",
         "usr/lib/x86_64-linux-gnu/libc.so.6": GLIBC_BANNER,
         "var/lib/dpkg/status": b"Package: libc6\nStatus: install ok installed\n"
                                b"Version: 2.36-9+deb12u7\n\n"},
        env=["PATH=/usr/local/bin:/usr/bin", "PYTHON_VERSION=3.11.9"])
    assert facts_of(ref) == BaseFacts("/usr/local/bin/python3.11", "3.11.9", "glibc", "2.36")


def test_usr_local_python_is_preferred(image_from: Callable[..., str]) -> None:
    ref = image_from({"usr/bin/python3.11": b"", "usr/local/bin/python3.11": b"",
                      "lib/x86_64-linux-gnu/libc.so.6": GLIBC_BANNER})
    assert facts_of(ref).python_path == "/usr/local/bin/python3.11"


def test_layers_add_up(image_from: Callable[..., str]) -> None:
    ref = image_from({"lib/x86_64-linux-gnu/libc.so.6": GLIBC_BANNER},
                     {"usr/bin/python3.11": b""})
    assert facts_of(ref) == BaseFacts("/usr/bin/python3.11", "3.11", "glibc", "2.36")


def test_a_python_minor_of_more_than_two_digits_is_no_interpreter(
        image_from: Callable[..., str]) -> None:
    """An adversarial base held usr/bin/python3.60099 (and 60,000 more): the lock passed
    "3.60099" to uv, whose refusal was the only message; and the probe kept every one."""
    ref = image_from({"usr/bin/python3.11": b"", "usr/bin/python3.60099": b"",
                      "usr/bin/python3.123": b"", "lib/x86_64-linux-gnu/libc.so.6": GLIBC_BANNER})
    assert facts_of(ref).python_path == "/usr/bin/python3.11"


def test_whiteout_removes_python_of_a_lower_layer(image_from: Callable[..., str]) -> None:
    lower = {"usr/bin/python3.11": b"", "usr/bin/python3.12": b"",
             "lib/x86_64-linux-gnu/libc.so.6": GLIBC_BANNER}
    ref = image_from(lower, {"usr/bin/.wh.python3.12": b""})
    assert facts_of(ref).python_path == "/usr/bin/python3.11"
    opaque = image_from(lower, {"usr/bin/.wh..wh..opq": b"", "usr/bin/python3.10": b""})
    assert facts_of(opaque).python_path == "/usr/bin/python3.10"
    gone = image_from(lower, {"usr/.wh.bin": b""})
    with pytest.raises(ImageSourceError, match="no Python interpreter"):
        facts_of(gone)


def test_no_python(image_from: Callable[..., str]) -> None:
    ref = image_from({"lib/x86_64-linux-gnu/libc.so.6": GLIBC_BANNER, "usr/bin/perl": b""})
    with pytest.raises(ImageSourceError, match="no Python interpreter") as caught:
        facts_of(ref)
    assert caught.value.hint and "Python" in caught.value.hint


def test_no_libc(image_from: Callable[..., str]) -> None:
    ref = image_from({"usr/bin/python3.11": b""})
    with pytest.raises(ImageSourceError, match="C library") as caught:
        facts_of(ref)
    assert caught.value.hint


def test_zstd_layers_are_refused(tiny_base: Path) -> None:
    source = open_source(f"oci-layout:{tiny_base}:tiny", root=Path("/"))
    image = source.resolve(AMD64)
    zstd_layer = type(image.layers[0])("application/vnd.oci.image.layer.v1.tar+zstd",
                                       image.layers[0].digest, image.layers[0].size)
    image = ResolvedImage(image.reference, None, image.manifest_digest, image.config_digest,
                          image.config, (zstd_layer,))
    with pytest.raises(ImageSourceError, match="zstd"):
        probe(source, image, cache_dir=None)


def test_uncompressed_layers_of_a_docker_archive(tiny_base: Path, tmp_path: Path) -> None:
    archive = tmp_path / "tiny.tar"
    skopeo_copy(f"oci:{tiny_base}:tiny", f"docker-archive:{archive}:tiny:1")
    assert facts_of(f"docker-archive:{archive}") == facts_of(f"oci-layout:{tiny_base}:tiny")


# -- the probe cache ---------------------------------------------------------------------

def _counting(reference: str) -> tuple[CountingSource, ResolvedImage]:
    source = CountingSource(open_source(reference, root=Path("/")))
    return source, source.resolve(AMD64)


def test_second_probe_reads_the_cache(tiny_base: Path, tmp_path: Path) -> None:
    source, image = _counting(f"oci-layout:{tiny_base}:tiny")
    first = probe(source, image, cache_dir=tmp_path)
    assert source.opened == len(image.layers)
    [entry] = (tmp_path / "probe").iterdir()
    assert image.config_digest.split(":", 1)[1] in entry.name
    assert json.loads(entry.read_text())["python_version"] == "3.11.2"
    second = probe(source, image, cache_dir=tmp_path)
    assert second == first
    assert source.opened == len(image.layers)  # no layer read again
    other_source, other = _counting(f"oci-layout:{tiny_base}:py312")
    assert probe(other_source, other, cache_dir=tmp_path).python_version == "3.12.1"
    assert other_source.opened == 1  # another config digest, another entry
    assert len(list((tmp_path / "probe").iterdir())) == 2


def test_cache_is_what_is_returned(tiny_base: Path, tmp_path: Path) -> None:
    source, image = _counting(f"oci-layout:{tiny_base}:tiny")
    probe(source, image, cache_dir=tmp_path)
    [entry] = (tmp_path / "probe").iterdir()
    data = json.loads(entry.read_text())
    entry.write_text(json.dumps({**data, "python_version": "3.11.7"}))
    assert probe(source, image, cache_dir=tmp_path).python_version == "3.11.7"
    assert source.opened == 1


@pytest.mark.parametrize("content", [
    "{not json",
    "\xff\xfe",
    "[]",
    '"3.11.2"',
    '{"python_path": "/usr/bin/python3.11"}',
    '{"python_path": "/usr/bin/python3.11", "python_version": 3.11, "libc_family": "glibc",'
    ' "libc_version": "2.36"}',
    '{"python_path": "", "python_version": "3.11.2", "libc_family": "glibc",'
    ' "libc_version": "2.36"}',
])
def test_corrupt_cache_is_discarded(tiny_base: Path, tmp_path: Path, content: str) -> None:
    source, image = _counting(f"oci-layout:{tiny_base}:tiny")
    good = probe(source, image, cache_dir=tmp_path)
    [entry] = (tmp_path / "probe").iterdir()
    entry.write_bytes(content.encode("latin-1") if content == "\xff\xfe" else content.encode())
    assert probe(source, image, cache_dir=tmp_path) == good
    assert source.opened == 2  # probed again instead of trusting the entry
    assert json.loads(entry.read_text()) == {
        "python_path": "/usr/bin/python3.11", "python_version": "3.11.2",
        "libc_family": "glibc", "libc_version": "2.36"}


def test_no_cache_dir_writes_nothing(tiny_base: Path, tmp_path: Path) -> None:
    source, image = _counting(f"oci-layout:{tiny_base}:tiny")
    probe(source, image, cache_dir=None)
    probe(source, image, cache_dir=None)
    assert source.opened == 2
    assert not list(tmp_path.iterdir())


# -- the real Debian base of the example project -----------------------------------------

def test_debootstrap_base() -> None:
    if not (EXAMPLE_BASE / "index.json").is_file():
        pytest.skip("fixtures/make_base.py has not built the example base (CI covers it)")
    facts = facts_of(f"oci-layout:{EXAMPLE_BASE}:bookworm")
    assert facts.python_path == "/usr/bin/python3.11"
    assert facts.python_version.startswith("3.11.")
    assert (facts.libc_family, facts.libc_version) == ("glibc", "2.36")


def test_make_rootfs_matches_what_probe_reports(tmp_path: Path) -> None:
    """The test helper and the probe agree on an arm64 layout too."""
    root = make_rootfs(tmp_path / "rootfs", arch="arm64", python="3.11.4", glibc="2.35")
    layout = tmp_path / "layout"
    layer = add_layer_from_dir(layout, root)
    write_image(layout, config={"architecture": "arm64", "os": "linux"}, layers=[layer],
                tag="arm")
    source = open_source(f"oci-layout:{layout}:arm", root=Path("/"))
    image = source.resolve(Platform.parse("linux/arm64"))
    assert probe(source, image, cache_dir=None) == BaseFacts(
        "/usr/bin/python3.11", "3.11.4", "glibc", "2.35")
