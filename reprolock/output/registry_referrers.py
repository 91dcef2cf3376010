"""Attaching artifacts to an image in a registry, where each kind of registry lets a
client find them again (the places are described in :mod:`reprolock.image.registry_referrers`):

- every artifact goes up as an OCI 1.1 manifest with ``subject``, by digest;
- the referrers API is probed (``GET /v2/NAME/referrers/DIGEST``): a registry that has
  it lists the artifact by itself; one that answers 404 (Debian's docker-registry,
  distribution 2.x) gets the referrers tag schema's index at tag ``sha256-HEX``, read
  first and merged, so that what other tools attached stays listed;
- each signed attestation (a DSSE envelope) also becomes a layer of cosign's image at
  tag ``sha256-HEX.att``, kept with the layers already there, which is where ``cosign
  verify-attestation`` and the admission controllers built on cosign's library
  (Kyverno, sigstore's policy-controller) look.

Two clients updating one tag at the same moment can lose an entry: the distribution API
has no conditional PUT; the registries with the referrers API do not need the tag.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from reprolock.errors import PushError
from reprolock.image.interface import MANIFEST_TYPES, Descriptor, load_json, want
from reprolock.image.registry_referrers import (
    REFERRERS_LIMIT,
    attestation_tag,
    fallback_index,
    fallback_tag,
    referrers_api,
)
from reprolock.oci.blobstore import BlobStore
from reprolock.oci.canonical import canonical_json
from reprolock.oci.media import OCI_CONFIG, OCI_INDEX, OCI_MANIFEST
from reprolock.output.interface import Progress
from reprolock.output.referrers import (
    DSSE_MEDIA_TYPE,
    PREDICATE_TYPE_ANNOTATION,
    Referrer,
    Subject,
)

if TYPE_CHECKING:
    from reprolock.output.registry import RegistryOutput

#: the layer annotation cosign's image of signatures and attestations carries: the
#: signature of a simple-signing payload, empty for a DSSE envelope (which holds its own)
COSIGN_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
#: go-containerregistry's zero time, which cosign's images carry unless asked otherwise
_ZERO_TIME = "0001-01-01T00:00:00Z"


def push_referrers(out: RegistryOutput, subject: Subject, blobs: BlobStore,
                   referrers: Sequence[Referrer], progress: Progress) -> str:
    """Push ``referrers`` of ``subject`` (already in the registry); returns how they can
    be found, for the progress line."""
    for ref in referrers:
        for digest in ref.blobs[:-1]:
            out.push_blob(blobs, digest, progress)
        out.request("PUT", f"{out.base}/manifests/{ref.manifest_digest}",
                    data=blobs.read(ref.manifest_digest),
                    headers={"Content-Type": OCI_MANIFEST}, expect=(201,))
    places = []
    if referrers_api(out.reader, subject.manifest_digest) is not None:
        places.append("the referrers API")
    else:
        merge_fallback_tag(out, subject.manifest_digest, referrers)
        places.append(f"tag {fallback_tag(subject.manifest_digest)}")
    attestations = [r for r in referrers if r.artifact_type == DSSE_MEDIA_TYPE]
    if attestations:
        merge_cosign_tag(out, blobs, subject.manifest_digest, attestations, progress)
        places.append(f"cosign's tag {attestation_tag(subject.manifest_digest)}")
    return " and ".join(places)


def merge_fallback_tag(out: RegistryOutput, digest: str,
                       referrers: Sequence[Referrer]) -> None:
    """The index at ``sha256-HEX``: every entry that was there, less ours, then ours."""
    index = fallback_index(out.reader, digest) or {"schemaVersion": 2, "manifests": []}
    ours = {r.manifest_digest for r in referrers}
    kept = [m for m in index.get("manifests", []) if m.get("digest") not in ours]
    merged = {**index, "mediaType": OCI_INDEX,
              "manifests": [*kept, *(r.descriptor() for r in referrers)]}
    _put(out, fallback_tag(digest), canonical_json(merged), OCI_INDEX)


def merge_cosign_tag(out: RegistryOutput, blobs: BlobStore, digest: str,
                     referrers: Sequence[Referrer], progress: Progress) -> None:
    """cosign's image at ``sha256-HEX.att``: its layers (others' attestations) kept, ours
    added once each; a new config lists them all, as cosign's does."""
    tag = attestation_tag(digest)
    ours = [_cosign_layer(r) for r in referrers]
    ours_digests = {str(layer["digest"]) for layer in ours}
    layers = [x for x in _cosign_layers(out, tag) if x["digest"] not in ours_digests] + ours
    config = canonical_json({
        "architecture": "", "os": "", "created": _ZERO_TIME, "config": {},
        "history": [{"created": _ZERO_TIME} for _ in layers],
        # the layers are stored uncompressed: each one's diff_id is its digest
        "rootfs": {"type": "layers", "diff_ids": [x["digest"] for x in layers]}})
    config_digest = blobs.put_bytes(config)
    out.push_blob(blobs, config_digest, progress)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config_digest,
                           "size": len(config)},
                "layers": layers}
    _put(out, tag, canonical_json(manifest), OCI_MANIFEST)


def _cosign_layer(ref: Referrer) -> dict[str, Any]:
    annotations = {COSIGN_SIGNATURE_ANNOTATION: ""}
    if ref.predicate_type:
        annotations[PREDICATE_TYPE_ANNOTATION] = ref.predicate_type
    return {"mediaType": DSSE_MEDIA_TYPE, "digest": ref.content, "size": ref.content_size,
            "annotations": annotations}


def _cosign_layers(out: RegistryOutput, tag: str) -> list[dict[str, Any]]:
    """The layers of the image at cosign's tag as stored (none if there is no such tag);
    anything but an image there is not ours to replace."""
    found = out.reader.optional_manifest(tag, limit=REFERRERS_LIMIT)
    if found is None:
        return []
    data, media, _ = found
    where = f"tag {tag} of {out.ref}"
    doc = load_json(data, what=where)
    if str(doc.get("mediaType") or media) not in MANIFEST_TYPES:
        raise PushError(f"{where} is not an image manifest (it is {media or 'untyped'}), so "
                        "it is not cosign's attestations of the image",
                        hint="delete that tag from the registry, or push elsewhere")
    layers: list[dict[str, Any]] = want(doc.get("layers"), list, f"{where}: layers")
    for i, item in enumerate(layers):
        Descriptor.from_json(item, where=f"{where}: layers[{i}]")
    return layers


def _put(out: RegistryOutput, tag: str, data: bytes, media_type: str) -> None:
    if len(data) > REFERRERS_LIMIT:
        raise PushError(f"the index at tag {tag} of {out.ref} would be {len(data)} bytes, "
                        f"more than registries take ({REFERRERS_LIMIT})",
                        hint="remove stale artifacts of this image from the registry")
    out.request("PUT", f"{out.base}/manifests/{tag}", data=data,
                headers={"Content-Type": media_type}, expect=(201,))
