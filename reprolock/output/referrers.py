"""OCI 1.1 artifacts that refer to an image through ``subject``: its SBOM and its signed
build provenance, found next to the image by registry and layout users."""

from __future__ import annotations

import json
from dataclasses import dataclass

from reprolock.build.builder import Image
from reprolock.build.store import BlobStore
from reprolock.image.interface import OCI_MANIFEST

EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_DATA = b"{}"
DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"


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
    raw = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    digest = blobs.put_bytes(raw)
    return Referrer(media_type, digest, len(raw), (empty, content, digest))
