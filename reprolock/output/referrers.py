"""OCI 1.1 artifacts that refer to an image through ``subject``: its SBOM and its signed
build provenance (or a run's signed statement), found next to the image by registry and
layout users."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Protocol

from reprolock._internal.jsonio import parse_json
from reprolock.errors import ReprolockError
from reprolock.oci.blobstore import BlobStore
from reprolock.oci.canonical import canonical_json
from reprolock.oci.media import DSSE_ENVELOPE, OCI_EMPTY, OCI_MANIFEST

EMPTY_MEDIA_TYPE = OCI_EMPTY
EMPTY_DATA = b"{}"
DSSE_MEDIA_TYPE = DSSE_ENVELOPE
#: the layer annotation cosign writes (and Kyverno and sigstore's policy-controller read)
#: for an attestation's in-toto predicate type; reprolock writes it on the referrer too
PREDICATE_TYPE_ANNOTATION = "predicateType"


class Subject(Protocol):
    """What an artifact refers to: an image manifest, by digest and size."""

    @property
    def manifest_digest(self) -> str: ...

    @property
    def manifest_size(self) -> int: ...


@dataclass(frozen=True)
class Referrer:
    """An artifact manifest in the blob store, with the blobs it names."""

    artifact_type: str
    manifest_digest: str
    manifest_size: int
    blobs: tuple[str, ...]  # every blob the manifest names, the manifest last
    content_size: int = 0  # of the artifact itself (blobs[-2]: the SBOM, the envelope)
    predicate_type: str | None = None  # of the statement a DSSE envelope holds

    @property
    def content(self) -> str:
        return self.blobs[-2]

    def descriptor(self) -> dict[str, object]:
        return {"mediaType": OCI_MANIFEST, "digest": self.manifest_digest,
                "size": self.manifest_size, "artifactType": self.artifact_type}


def make_referrer(blobs: BlobStore, subject: Subject, *, data: bytes, media_type: str,
                  created: str) -> Referrer:
    empty = blobs.put_bytes(EMPTY_DATA)
    content = blobs.put_bytes(data)
    predicate = predicate_type(data) if media_type == DSSE_MEDIA_TYPE else None
    layer: dict[str, object] = {"mediaType": media_type, "digest": content, "size": len(data)}
    if predicate:
        layer["annotations"] = {PREDICATE_TYPE_ANNOTATION: predicate}
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": media_type,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": empty, "size": len(EMPTY_DATA)},
        "layers": [layer],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject.manifest_digest,
                    "size": subject.manifest_size},
        "annotations": {"org.opencontainers.image.created": created},
    }
    raw = canonical_json(manifest)
    digest = blobs.put_bytes(raw)
    return Referrer(media_type, digest, len(raw), (empty, content, digest), len(data),
                    predicate)


def predicate_type(envelope: bytes) -> str | None:
    """The predicate type of the in-toto statement in a DSSE envelope reprolock signed
    (None if it holds none): cosign's tag names it on each layer, and verifiers pick the
    build provenance among a subject's attestations by it."""
    try:
        doc = parse_json(envelope, source="the DSSE envelope")
        payload = doc.get("payload")
        if not isinstance(payload, str):
            return None
        statement = parse_json(base64.b64decode(payload, validate=True),
                               source="its payload")
    except (ReprolockError, binascii.Error, ValueError):
        return None
    kind = statement.get("predicateType")
    return kind if isinstance(kind, str) else None
