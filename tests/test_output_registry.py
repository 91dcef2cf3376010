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
