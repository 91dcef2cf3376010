"""OCI 1.1 artifacts that refer to an image through ``subject``: its SBOM and its signed
build provenance, found next to the image by registry and layout users."""

from __future__ import annotations

from dataclasses import dataclass

from reprolock.oci.blobstore import BlobStore
from reprolock.oci.canonical import canonical_json
from reprolock.oci.media import DSSE_ENVELOPE, OCI_EMPTY, OCI_MANIFEST
from reprolock.oci.model import Image

EMPTY_MEDIA_TYPE = OCI_EMPTY
EMPTY_DATA = b"{}"
DSSE_MEDIA_TYPE = DSSE_ENVELOPE


@dataclass(frozen=True)
class Referrer:
    """An artifact manifest in the blob store, with the blobs it names."""

    artifact_type: str
    manifest_digest: str
    manifest_size: int
    blobs: tuple[str, ...]  # every blob the manifest names, the manifest last

    def descriptor(self) -> dict[str, object]:
        return {"mediaType": OCI_MANIFEST, "digest": self.manifest_digest,
                "size": self.manifest_size, "artifactType": self.artifact_type}


def make_referrer(blobs: BlobStore, subject: Image, *, data: bytes, media_type: str,
                  created: str) -> Referrer:
    empty = blobs.put_bytes(EMPTY_DATA)
    content = blobs.put_bytes(data)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": media_type,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": empty, "size": len(EMPTY_DATA)},
        "layers": [{"mediaType": media_type, "digest": content, "size": len(data)}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject.manifest_digest,
                    "size": subject.manifest_size},
        "annotations": {"org.opencontainers.image.created": created},
    }
    raw = canonical_json(manifest)
    digest = blobs.put_bytes(raw)
    return Referrer(media_type, digest, len(raw), (empty, content, digest))
