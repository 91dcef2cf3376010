"""OCI 1.1 artifacts that refer to an image through ``subject``: its SBOM and its signed
build provenance (or a run's signed statement), found next to the image by registry and
layout users. A signed statement goes twice: as its DSSE envelope (cosign 2's
``verify-attestation``, Kyverno and the policy-controller read it from cosign's tag too) and
as its Sigstore bundle, the referrer cosign v3 writes and reads (artifactType
``application/vnd.dev.sigstore.bundle.v0.3+json``, its content and predicate type
annotated on the manifest and so in the referrers index)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Protocol

from reprolock._internal.jsonio import parse_json
from reprolock.errors import ReprolockError
from reprolock.oci.blobstore import BlobStore
from reprolock.oci.canonical import canonical_json
from reprolock.oci.media import (
    BUNDLE_CONTENT,
    BUNDLE_PREDICATE_TYPE,
    DSSE_ENVELOPE,
    OCI_EMPTY,
    OCI_MANIFEST,
    SIGSTORE_BUNDLE,
)

EMPTY_MEDIA_TYPE = OCI_EMPTY
EMPTY_DATA = b"{}"
DSSE_MEDIA_TYPE = DSSE_ENVELOPE
#: the layer annotation cosign writes (and Kyverno and sigstore's policy-controller read)
#: for an attestation's in-toto predicate type; reprolock writes it on the referrer too
PREDICATE_TYPE_ANNOTATION = "predicateType"
CREATED_ANNOTATION = "org.opencontainers.image.created"


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
    #: the manifest's annotations, which an index of referrers repeats (OCI 1.1)
    annotations: tuple[tuple[str, str], ...] = ()

    @property
    def content(self) -> str:
        return self.blobs[-2]

    def descriptor(self) -> dict[str, object]:
        found: dict[str, object] = {"mediaType": OCI_MANIFEST, "digest": self.manifest_digest,
                                    "size": self.manifest_size,
                                    "artifactType": self.artifact_type}
        if self.annotations:
            found["annotations"] = dict(self.annotations)
        return found


def make_referrer(blobs: BlobStore, subject: Subject, *, data: bytes, media_type: str,
                  created: str) -> Referrer:
    empty = blobs.put_bytes(EMPTY_DATA)
    content = blobs.put_bytes(data)
    layer: dict[str, object] = {"mediaType": media_type, "digest": content, "size": len(data)}
    annotations = {CREATED_ANNOTATION: created}
    predicate = None
    if media_type == DSSE_MEDIA_TYPE:
        predicate = predicate_type(data)
        if predicate:
            layer["annotations"] = {PREDICATE_TYPE_ANNOTATION: predicate}
    elif media_type == SIGSTORE_BUNDLE:
        annotations.update(bundle_annotations(data))
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": media_type,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": empty, "size": len(EMPTY_DATA)},
        "layers": [layer],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject.manifest_digest,
                    "size": subject.manifest_size},
        "annotations": annotations,
    }
    raw = canonical_json(manifest)
    digest = blobs.put_bytes(raw)
    return Referrer(media_type, digest, len(raw), (empty, content, digest), len(data),
                    predicate, tuple(sorted(annotations.items())))


def bundle_annotations(bundle: bytes) -> dict[str, str]:
    """What cosign v3 annotates on a bundle referrer: the bundle's content
    (``dsse-envelope`` or ``message-signature``) and, for an envelope, its statement's
    predicate type."""
    try:
        doc = parse_json(bundle, source="the Sigstore bundle")
    except ReprolockError:
        return {}
    envelope = doc.get("dsseEnvelope")
    if isinstance(envelope, dict):
        found = {BUNDLE_CONTENT: "dsse-envelope"}
        kind = predicate_type(canonical_json(envelope))
        if kind:
            found[BUNDLE_PREDICATE_TYPE] = kind
        return found
    return {BUNDLE_CONTENT: "message-signature"} if "messageSignature" in doc else {}


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
