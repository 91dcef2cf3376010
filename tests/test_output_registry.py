"""Pushing to a real registry: chunked and monolithic uploads, skipped blobs, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from reprolock.errors import ImageSourceError
from reprolock.image.registry import parse_registry_ref
from reprolock.oci.blobstore import BlobStore
from reprolock.output.registry import RegistryOutput
from tests.support.buildproject import build_json
from tests.support.services import free_port

ACCEPT = "application/vnd.oci.image.manifest.v1+json"


def _image(build_project_template: Path, cache: Path) -> tuple[object, BlobStore, str]:
    result = build_json(build_project_template, cache)
    from reprolock.oci.model import Image, Layer, LayerBlob

    blobs = BlobStore(cache)
    layers = tuple(Layer(LayerBlob(x["digest"], x["diffId"], x["size"],
                                   "application/vnd.oci.image.layer.v1.tar+gzip"), x["holds"])
                   for x in result["layers"])
    manifest = blobs.read(result["manifestDigest"])
    image = Image(result["configDigest"], result["manifestDigest"], len(manifest), layers, 1)
    return image, blobs, result["manifestDigest"]


def test_chunked_upload(build_project_template: Path, tmp_path: Path, registry: str) -> None:
    image, blobs, digest = _image(build_project_template, tmp_path / "c")
    ref = parse_registry_ref(f"{registry}/chunked:v1")
    assert ref is not None
    out = RegistryOutput(ref, monolithic_limit=1024, chunk=256 * 1024)
    seen: list[str] = []
    written = out.write(image, blobs, tag=None, progress=seen.append)  # type: ignore[arg-type]
    assert written.digest == digest
    assert any("%" in line for line in seen)  # chunks report progress
    head = requests.head(f"http://{registry}/v2/chunked/manifests/v1",
                         headers={"Accept": ACCEPT}, timeout=10)
    assert head.headers["Docker-Content-Digest"] == digest
    again = RegistryOutput(ref)
    again.write(image, blobs, tag=None, progress=lambda _m: None)  # type: ignore[arg-type]
    assert again.uploaded == 0 and again.skipped == len(image.layers) + 1  # type: ignore[attr-defined]


def test_unreachable_registry_is_a_clear_error(build_project_template: Path,
                                               tmp_path: Path) -> None:
    image, blobs, _ = _image(build_project_template, tmp_path / "c")
    ref = parse_registry_ref(f"127.0.0.1:{free_port()}/nothing:v1")
    assert ref is not None
    with pytest.raises(ImageSourceError, match="unreachable"):
        RegistryOutput(ref).write(image, blobs, tag=None,  # type: ignore[arg-type]
                                  progress=lambda _m: None)


def test_a_fallback_tag_that_is_not_an_index_is_left_alone(build_project_template: Path,
                                                           tmp_path: Path, registry: str) -> None:
    """The referrers tag of an image holds an image (another tool's, or a forgery): the
    push stops before replacing it, and says which tag and what to do."""
    from reprolock.output.referrers import make_referrer

    image, blobs, digest = _image(build_project_template, tmp_path / "c")
    ref = parse_registry_ref(f"{registry}/occupied:v1")
    assert ref is not None
    RegistryOutput(ref).write(image, blobs, tag=None, progress=lambda _m: None)  # type: ignore[arg-type]
    fallback = "sha256-" + digest.removeprefix("sha256:")
    manifest = blobs.read(digest)
    put = requests.put(f"http://{registry}/v2/occupied/manifests/{fallback}", data=manifest,
                       headers={"Content-Type": ACCEPT}, timeout=10)
    assert put.status_code == 201
    referrer = make_referrer(blobs, image, data=b'{"spdxVersion": "SPDX-2.3"}',  # type: ignore[arg-type]
                             media_type="application/spdx+json", created="1980-01-01T00:00:00Z")
    with pytest.raises(ImageSourceError, match=f"tag {fallback} .* is not an image index"):
        RegistryOutput(ref).write(image, blobs, tag=None,  # type: ignore[arg-type]
                                  progress=lambda _m: None, referrers=[referrer])
    still = requests.get(f"http://{registry}/v2/occupied/manifests/{fallback}",
                         headers={"Accept": ACCEPT}, timeout=10)
    assert still.content == manifest


def test_a_link_off_the_registry_is_not_followed(registry: str) -> None:
    """A referrers page's Link header names the next page; the request carries the
    registry's token, so a link to another host is refused, not fetched."""
    from reprolock.image.registry import RegistryClient

    ref = parse_registry_ref(f"{registry}/any:v1")
    assert ref is not None
    client = RegistryClient(ref)
    with pytest.raises(ImageSourceError, match="off this registry"):
        client.get_url(f"http://127.0.0.1:{free_port()}/v2/any/referrers/x", "referrers")
