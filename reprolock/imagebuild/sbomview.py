"""The environment image as the SBOM generator needs to see it.

syft's image reader copies every layer, uncompressed, into a temporary file before any
cataloger runs: 5.15 GB on a CUDA training image, for catalogers that open package
databases, Python metadata and a few named binaries. The view keeps the base's layers as
they are and gives each layer reprolock built without the files no cataloger opens
(:class:`reprolock.sbom.interface.CatalogReads`); the generator then names the real
image's digests in place of the view's. A thinned layer is kept in the build cache by
the real layer's diff_id and the rule's key, so an SBOM made again reads no layer.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from reprolock._internal.files import atomic_write_bytes
from reprolock.errors import ImageSourceError
from reprolock.image.blobs import check_stream
from reprolock.image.interface import Descriptor
from reprolock.oci.blobstore import BlobStore
from reprolock.oci.canonical import canonical_json
from reprolock.oci.media import OCI_CONFIG, OCI_LAYER_TAR, OCI_MANIFEST
from reprolock.oci.model import Image, Layer, LayerBlob
from reprolock.oci.tarfilter import Unfilterable, filter_tar
from reprolock.sbom.interface import CatalogReads


@dataclass(frozen=True)
class View:
    image: Image  # in the same blob store as the real image
    rename: dict[str, str]  # the view's digests (hex) -> the real image's
    dropped_bytes: int


def sbom_view(env: Image, blobs: BlobStore, reads: CatalogReads, *, cache_dir: Path,
              jobs: int, fresh: Mapping[str, tuple[str, int]] | None = None) -> View:
    """A view of ``env`` for a generator that opens only what ``reads`` names. ``fresh``:
    views this process wrote beside the layers it built (diff_id -> (digest, bytes left
    out)), trusted as those layers are, not hashed again."""
    index = view_index(cache_dir, reads)
    ours = env.layers[env.base_layers:]
    made = fresh or {}

    def one(layer: Layer) -> tuple[Layer, int]:
        if layer.blob.diff_id in made:
            digest, dropped = made[layer.blob.diff_id]
            return _view_layer(blobs, digest, layer.holds), dropped
        return _thinned(layer, blobs, reads, index)

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        thinned = list(pool.map(one, ours))
    layers = [*env.layers[:env.base_layers], *(t[0] for t in thinned)]
    rename = {t[0].blob.diff_id.removeprefix("sha256:"): real.blob.diff_id.removeprefix(
        "sha256:") for t, real in zip(thinned, ours, strict=True)}
    image = _image(env, layers, blobs, rename)
    return View(image, rename, sum(t[1] for t in thinned))


def view_index(cache_dir: Path, reads: CatalogReads) -> Path:
    index = cache_dir / "sbom-view" / reads.key
    index.mkdir(parents=True, exist_ok=True)
    return index


class ViewWriter:
    """A layer's view as it is written: beside the layer while it is built
    (``write_layer(..., view=)``, so no layer is inflated again to make it), or by
    :func:`filter_tar` from the layer. :meth:`commit` keeps it, :meth:`discard` (also
    after a commit) drops what is left."""

    def __init__(self, blobs: BlobStore, reads: CatalogReads, index: Path) -> None:
        self.blobs, self.reads, self.index = blobs, reads, index
        self.tmp = blobs.temp_path()
        self.handle = open(self.tmp, "wb")  # noqa: SIM115 - closed by commit or discard
        self.sha = hashlib.sha256()
        self.dropped = 0

    def write(self, data: bytes, /) -> int:
        self.sha.update(data)
        return self.handle.write(data)

    def keeps(self, name: str, size: int) -> bool:
        return self.reads.needs(name, size)

    def left_out(self, size: int) -> None:
        self.dropped += size

    def commit(self, diff_id: str) -> str:
        """Keep the view of the layer ``diff_id``; its digest."""
        self.handle.close()
        digest = "sha256:" + self.sha.hexdigest()
        self.blobs.adopt(self.tmp, digest)  # unsynced, as the layers: reads check digests
        atomic_write_bytes(self.index / diff_id.removeprefix("sha256:"),
                           json.dumps({"digest": digest, "dropped": self.dropped}).encode())
        return digest

    def discard(self) -> None:
        self.handle.close()
        self.tmp.unlink(missing_ok=True)


def _thinned(layer: Layer, blobs: BlobStore, reads: CatalogReads,
             index: Path) -> tuple[Layer, int]:
    """The layer without what ``reads`` does not need, as an uncompressed tar blob."""
    known = _noted(index / layer.blob.diff_id.removeprefix("sha256:"), blobs, layer.holds)
    if known is not None:
        return known
    writer = ViewWriter(blobs, reads, index)
    try:
        if not _filter(layer, blobs, reads, writer):
            return layer, 0  # the whole layer: right, only slower
        digest = writer.commit(layer.blob.diff_id)
    finally:
        writer.discard()
    return _view_layer(blobs, digest, layer.holds), writer.dropped


def _filter(layer: Layer, blobs: BlobStore, reads: CatalogReads, out: ViewWriter) -> bool:
    """Stream the layer through the filter, checking its digest and diff_id; False when
    it cannot be thinned safely."""
    desc = Descriptor(layer.blob.media_type, layer.blob.digest, layer.blob.size)

    def thin(tar: IO[bytes]) -> None:
        out.dropped = filter_tar(tar, out, reads.needs).dropped_bytes

    try:
        with open(blobs.path(layer.blob.digest), "rb") as raw:
            problems = check_stream(raw, desc, layer.blob.diff_id, read_tar=thin)
    except Unfilterable:
        return False
    if problems:
        raise ImageSourceError(f"the build cache's {problems[0]}",
                               hint=f"remove {blobs.root.parent.parent} and build again")
    return True


def _view_layer(blobs: BlobStore, digest: str, holds: str) -> Layer:
    size = os.path.getsize(blobs.path(digest))
    return Layer(LayerBlob(digest, digest, size, OCI_LAYER_TAR), holds)


def _noted(noted: Path, blobs: BlobStore, holds: str) -> tuple[Layer, int] | None:
    """A view made before, if its blob is still whole."""
    try:
        doc = json.loads(noted.read_bytes()[:4096])
        digest, dropped = str(doc["digest"]), int(doc["dropped"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not digest.startswith("sha256:") or not blobs.valid(digest):
        return None
    return _view_layer(blobs, digest, holds), dropped


def _image(env: Image, layers: list[Layer], blobs: BlobStore, rename: dict[str, str]) -> Image:
    """The real config with the view's diff_ids, and a manifest of the view's layers."""
    config = json.loads(blobs.read(env.config_digest))
    config["rootfs"]["diff_ids"] = [x.blob.diff_id for x in layers]
    config_data = canonical_json(config)
    config_digest = blobs.put_bytes(config_data)
    manifest = canonical_json({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_data)},
        "layers": [{"mediaType": x.blob.media_type, "digest": x.blob.digest,
                    "size": x.blob.size} for x in layers]})
    manifest_digest = blobs.put_bytes(manifest)
    rename[config_digest.removeprefix("sha256:")] = env.config_digest.removeprefix("sha256:")
    rename[manifest_digest.removeprefix("sha256:")] = env.manifest_digest.removeprefix(
        "sha256:")
    return Image(config_digest, manifest_digest, len(manifest), tuple(layers), env.base_layers)
