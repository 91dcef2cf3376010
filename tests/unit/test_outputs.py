"""The output boundary in process: parse_output's forms, and an image written as an OCI
layout and as an OCI archive, read back with the layout reader to the same digests."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest

from reprolock.errors import ConfigError
from reprolock.image.layout_reader import DirFiles, OciLayoutSource, open_archive
from reprolock.oci.blobstore import BlobStore
from reprolock.oci.canonical import canonical_json
from reprolock.oci.media import OCI_CONFIG, OCI_MANIFEST, REF_NAME
from reprolock.oci.model import Image, Layer
from reprolock.output import parse_output
from reprolock.output.archive import ArchiveOutput
from reprolock.output.docker import DockerOutput
from reprolock.output.layout_writer import LayoutOutput
from reprolock.output.referrers import Referrer, make_referrer
from reprolock.output.registry import RegistryOutput
from reprolock.target import Platform
from tests.support.oci_writer import add_layer_from_dir

AMD64 = Platform.parse("linux/amd64")


def make_image(store_dir: Path, work: Path, *, seed: str = "1") -> tuple[Image, BlobStore]:
    """A two-layer image whose blobs are in a blob store, as the builder leaves one."""
    blobs = BlobStore(store_dir)
    layers = []
    for name in ("base", "app"):
        root = work / f"{name}-{seed}"
        (root / "opt").mkdir(parents=True)
        (root / "opt" / f"{name}.txt").write_text(f"{name} {seed}\n")
        layers.append(Layer(add_layer_from_dir(store_dir, root), name))
    config = {"architecture": "amd64", "os": "linux", "created": "1980-01-01T00:00:00Z",
              "config": {"Env": ["PATH=/usr/bin"], "Cmd": ["/usr/bin/python3"]},
              "rootfs": {"type": "layers", "diff_ids": [x.blob.diff_id for x in layers]}}
    config_digest = blobs.put_bytes(canonical_json(config))
    manifest = canonical_json({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest,
                   "size": blobs.path(config_digest).stat().st_size},
        "layers": [{"mediaType": x.blob.media_type, "digest": x.blob.digest,
                    "size": x.blob.size} for x in layers]})
    digest = blobs.put_bytes(manifest)
    return Image(config_digest, digest, len(manifest), tuple(layers), 1), blobs


def sbom_referrer(blobs: BlobStore, image: Image) -> Referrer:
    return make_referrer(blobs, image, data=b'{"spdxVersion": "SPDX-2.3"}',
                         media_type="application/spdx+json", created="1980-01-01T00:00:00Z")


def assert_reads_back(source: OciLayoutSource, image: Image, blobs: BlobStore) -> None:
    with source:
        resolved = source.resolve(AMD64)
        assert resolved.manifest_digest == image.manifest_digest
        assert resolved.config_digest == image.config_digest
        assert [d.digest for d in resolved.layers] == [x.blob.digest for x in image.layers]
        assert resolved.diff_ids == image.diff_ids
        for layer in image.layers:
            with source.open_blob(layer.blob.digest) as handle:
                data = handle.read()
            assert "sha256:" + hashlib.sha256(data).hexdigest() == layer.blob.digest
            assert data == blobs.read(layer.blob.digest)


# -- parse_output ------------------------------------------------------------------------

def test_parse_output_forms(tmp_path: Path) -> None:
    layout = parse_output("oci:out/image:v1", cwd=tmp_path)
    assert isinstance(layout, LayoutOutput)
    assert (layout.path, layout.tag) == (tmp_path / "out/image", "v1")
    untagged = parse_output("oci:out/image", cwd=tmp_path)
    assert isinstance(untagged, LayoutOutput) and untagged.tag is None
    archive = parse_output("oci-archive:/abs/image.tar:latest")
    assert isinstance(archive, ArchiveOutput)
    assert (archive.path, archive.tag) == (Path("/abs/image.tar"), "latest")
    assert isinstance(parse_output("docker:name:tag"), DockerOutput)
    assert isinstance(parse_output("registry:127.0.0.1:5000/repo:v1"), RegistryOutput)


@pytest.mark.parametrize(("text", "message"), [
    ("tarball:x", "unknown --output"), ("oci:", "needs a path"),
    ("registry:127.0.0.1:5000/repo@sha256:" + "a" * 64, "not a registry reference with a tag"),
])
def test_parse_output_refuses(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_output(text)
    assert caught.value.hint


# -- OCI layout --------------------------------------------------------------------------

def test_layout_round_trip(tmp_path: Path) -> None:
    image, blobs = make_image(tmp_path / "store", tmp_path / "work")
    seen: list[str] = []
    written = LayoutOutput(tmp_path / "out", None).write(image, blobs, tag="v1",
                                                         progress=seen.append)
    assert written.digest == image.manifest_digest
    assert written.where == f"oci:{tmp_path / 'out'}:v1" and "v1" in seen[0]
    for blob in (tmp_path / "out" / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    assert_reads_back(OciLayoutSource("oci:out:v1", DirFiles(tmp_path / "out"), tag="v1"),
                      image, blobs)
    by_digest = OciLayoutSource("oci:out", DirFiles(tmp_path / "out"),
                                digest=image.manifest_digest)
    assert_reads_back(by_digest, image, blobs)


def test_layout_retag_replaces_and_keeps_other_tags(tmp_path: Path) -> None:
    first, blobs = make_image(tmp_path / "store", tmp_path / "work", seed="1")
    second, _ = make_image(tmp_path / "store", tmp_path / "work", seed="2")
    out = LayoutOutput(tmp_path / "out", None)
    out.write(first, blobs, tag="a", progress=lambda _m: None)
    out.write(second, blobs, tag="b", progress=lambda _m: None)
    out.write(second, blobs, tag="a", progress=lambda _m: None)
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    tags = {m["annotations"][REF_NAME]: m["digest"] for m in index["manifests"]}
    assert tags == {"a": second.manifest_digest, "b": second.manifest_digest}
    assert_reads_back(OciLayoutSource("oci:out:a", DirFiles(tmp_path / "out"), tag="a"),
                      second, blobs)


def test_layout_with_a_referrer_still_names_one_image(tmp_path: Path) -> None:
    image, blobs = make_image(tmp_path / "store", tmp_path / "work")
    referrer = sbom_referrer(blobs, image)
    LayoutOutput(tmp_path / "out", "v1").write(image, blobs, tag=None,
                                               progress=lambda _m: None, referrers=[referrer])
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert {m["digest"] for m in index["manifests"]} == {image.manifest_digest,
                                                         referrer.manifest_digest}
    for digest in referrer.blobs:
        assert (tmp_path / "out" / "blobs" / "sha256" / digest.removeprefix("sha256:")).is_file()
    # no tag given: the referrer is an artifact, so the layout holds one image
    assert_reads_back(OciLayoutSource("oci:out", DirFiles(tmp_path / "out")), image, blobs)


def test_layout_over_a_bad_index_fails_and_leaves_it(tmp_path: Path) -> None:
    image, blobs = make_image(tmp_path / "store", tmp_path / "work")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "index.json").write_text('{"manifests": {"not": "a list"}}')
    with pytest.raises(ConfigError, match="not an OCI image index") as caught:
        LayoutOutput(tmp_path / "out", "v1").write(image, blobs, tag=None,
                                                   progress=lambda _m: None)
    assert caught.value.hint and "remove" in caught.value.hint
    assert (tmp_path / "out" / "index.json").read_text() == '{"manifests": {"not": "a list"}}'
    assert not list((tmp_path / "out" / "blobs" / "sha256").iterdir())  # ours removed


# -- OCI archive -------------------------------------------------------------------------

def test_archive_round_trip(tmp_path: Path) -> None:
    image, blobs = make_image(tmp_path / "store", tmp_path / "work")
    path = tmp_path / "image.tar"
    written = ArchiveOutput(path, "v1").write(image, blobs, tag=None,
                                              progress=lambda _m: None)
    assert written.digest == image.manifest_digest and written.where == f"oci-archive:{path}"
    source = open_archive(f"oci-archive:{path}:v1", path, tag="v1", docker=False)
    assert isinstance(source, OciLayoutSource)
    assert_reads_back(source, image, blobs)


def test_archive_is_deterministic_and_docker_loadable(tmp_path: Path) -> None:
    image, blobs = make_image(tmp_path / "store", tmp_path / "work")
    referrer = sbom_referrer(blobs, image)
    for name in ("one.tar", "two.tar"):
        ArchiveOutput(tmp_path / name, None).write(image, blobs, tag="v1",
                                                   progress=lambda _m: None,
                                                   referrers=[referrer])
    assert (tmp_path / "one.tar").read_bytes() == (tmp_path / "two.tar").read_bytes()
    with tarfile.open(tmp_path / "one.tar") as tar:
        names = tar.getnames()
        docker = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        assert {m.mtime for m in tar.getmembers()} == {tar.getmembers()[0].mtime}
    assert names[:2] == ["blobs", "blobs/sha256"]
    assert f"blobs/sha256/{referrer.manifest_digest.removeprefix('sha256:')}" in names
    assert docker == [{"Config": f"blobs/sha256/{image.config_digest.removeprefix('sha256:')}",
                       "RepoTags": ["reprolock/image:v1"],
                       "Layers": [f"blobs/sha256/{x.blob.digest.removeprefix('sha256:')}"
                                  for x in image.layers]}]
    # read as a docker archive too: the same config
    with open_archive("docker-archive:one.tar", tmp_path / "one.tar", tag="reprolock/image:v1",
                      docker=True) as source:
        assert source.resolve(AMD64).config_digest == image.config_digest


def test_a_failed_archive_write_keeps_the_old_file(tmp_path: Path) -> None:
    image, blobs = make_image(tmp_path / "store", tmp_path / "work")
    path = tmp_path / "image.tar"
    path.write_bytes(b"old archive")
    blobs.path(image.layers[1].blob.digest).unlink()  # the write cannot finish
    with pytest.raises(FileNotFoundError):
        ArchiveOutput(path, None).write(image, blobs, tag="v1", progress=lambda _m: None)
    assert path.read_bytes() == b"old archive"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.tar", "store", "work"]
