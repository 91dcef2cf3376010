"""What refers to an image in a registry: its OCI 1.1 referrers and cosign's attestations.

'reprolock build' pushes its signed provenance next to the image, and ``verify --image
registry:…`` reads it back, from these places:

- the referrers API, ``GET /v2/NAME/referrers/DIGEST``: an image index of the manifests
  whose ``subject`` is DIGEST, kept by the registry (OCI distribution 1.1; a 404 means
  the registry does not have the API);
- the referrers tag schema, tag ``sha256-HEX``: the same index, kept by the clients that
  push to a registry without the API (Debian's docker-registry, distribution 2.x);
- cosign's attestation tag, ``sha256-HEX.att``: an image whose layers are DSSE envelopes
  (what ``cosign verify-attestation``, Kyverno and sigstore's policy-controller read).

    >>> found = find_attestations(RegistryClient(ref), digest)   # doctest: +SKIP
    >>> [a.where for a in found.attestations]                     # doctest: +SKIP

Everything read is bounded (an index at most :data:`REFERRERS_LIMIT` bytes a page and
:data:`MAX_PAGES` pages, at most :data:`MAX_ATTESTATIONS` envelopes) and checked against
its digest; whether a referrer's subject is the image is the caller's check.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from reprolock.errors import ImageSourceError
from reprolock.image.interface import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_INDEX,
    Descriptor,
    check_digest,
    index_entries,
    load_json,
    want,
)
from reprolock.image.registry import RegistryClient
from reprolock.oci.canonical import canonical_json
from reprolock.oci.media import DSSE_ENVELOPE, SIGSTORE_BUNDLE

#: registries refuse manifests over 4 MiB, and the fallback index is a manifest
REFERRERS_LIMIT = 4 << 20
MAX_PAGES = 16
#: how many envelopes one image's attestations may hold before reading stops with an
#: error: each is read whole (up to 16 MiB), so a registry must not make it read more
MAX_ATTESTATIONS = 64
_LINK_NEXT = 'rel="next"'
#: the referrers that hold a signed statement: a DSSE envelope, or a Sigstore bundle
ATTESTATION_TYPES = (DSSE_ENVELOPE, SIGSTORE_BUNDLE)


def fallback_tag(digest: str) -> str:
    """The referrers tag schema's tag of ``digest``: ``sha256-HEX``."""
    return check_digest(digest, where="subject").replace(":", "-")


def attestation_tag(digest: str) -> str:
    """cosign's attestation tag of ``digest``: ``sha256-HEX.att``."""
    return fallback_tag(digest) + ".att"


@dataclass(frozen=True)
class Entry:
    """A manifest an index of referrers lists, and the artifactType it lists it with."""

    descriptor: Descriptor
    artifact_type: str | None


@dataclass(frozen=True)
class Referrers:
    api: bool  # the registry answered the referrers API (else: the fallback tag)
    where: str  # how a report names the place
    entries: tuple[Entry, ...]


def referrers_api(client: RegistryClient, digest: str) -> list[Entry] | None:
    """The referrers of ``digest`` from the registry's referrers API, every page; None if
    the registry has no such API (it answers 404)."""
    path = f"referrers/{check_digest(digest, where='subject')}"
    response = client.get(path, accept=OCI_INDEX, stream=True, missing_ok=True)
    entries: list[Entry] = []
    for page in range(MAX_PAGES):
        if response.status_code == 404:
            return None if page == 0 else entries
        link = response.headers.get("Link", "")
        what = f"referrers of {digest} (page {page + 1})"
        data = client.document(response, what, limit=REFERRERS_LIMIT)
        entries += index_referrers(load_json(data, what=what), where=what)
        following = _next_page(link, response.url)
        if following is None:
            return entries
        response = client.get_url(following, path, accept=OCI_INDEX, stream=True)
    raise ImageSourceError(f"registry {client.ref.host} lists the referrers of {digest} on "
                           f"more than {MAX_PAGES} pages",
                           hint="remove stale artifacts of this image from the registry")


def index_referrers(doc: dict[str, Any], *, where: str) -> list[Entry]:
    """The entries of an index of referrers, each descriptor checked (digest, size)."""
    items = want(doc.get("manifests", []), list, f"{where}: manifests")
    descriptors = index_entries(doc, where=where)
    return [Entry(desc, item.get("artifactType") if isinstance(item.get("artifactType"), str)
                  else None) for desc, item in zip(descriptors, items, strict=True)]


def fallback_index(client: RegistryClient, digest: str) -> dict[str, Any] | None:
    """The image index at the referrers tag of ``digest`` as stored (None if there is no
    such tag); anything else at that tag is an error: it is not ours to read or replace."""
    tag = fallback_tag(digest)
    found = client.optional_manifest(tag, limit=REFERRERS_LIMIT)
    if found is None:
        return None
    data, media, _ = found
    doc = load_json(data, what=f"tag {tag} of {client.ref}")
    if str(doc.get("mediaType") or media) not in INDEX_TYPES:
        raise ImageSourceError(
            f"tag {tag} of {client.ref} is not an image index (it is {media or 'untyped'}), "
            "so it is not the referrers tag of the image",
            hint="delete that tag from the registry, or push the image to another repository")
    index_referrers(doc, where=f"tag {tag} of {client.ref}")  # every entry well formed
    return doc


def list_referrers(client: RegistryClient, digest: str) -> Referrers:
    """The referrers of ``digest``: from the API where the registry has it (then the
    fallback tag is not read: the API is what the registry vouches for), else from the
    fallback tag; none is an empty list."""
    api = referrers_api(client, digest)
    if api is not None:
        return Referrers(True, "the referrers API", tuple(api))
    doc = fallback_index(client, digest)
    where = f"tag {fallback_tag(digest)}"
    entries = index_referrers(doc, where=where) if doc else []
    return Referrers(False, where, tuple(entries))


def _next_page(link: str, url: str) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header, resolved against the page's URL."""
    for part in link.split(","):
        target, _, params = part.partition(";")
        if _LINK_NEXT in params.replace(" ", ""):
            return urljoin(url, target.strip().strip("<>"))
    return None


@dataclass(frozen=True)
class Attestation:
    """One DSSE envelope found for an image, as read (digest checked, not yet trusted)."""

    digest: str  # the blob's that held it: the envelope, or the Sigstore bundle around it
    envelope: bytes
    where: tuple[str, ...]  # every place it was found, for the report
    subjects: tuple[str, ...]  # of the referrer manifests that hold it (cosign's tag: none)


@dataclass(frozen=True)
class Found:
    attestations: tuple[Attestation, ...]
    looked: tuple[str, ...]  # the places read, found or not, for a report


def find_attestations(client: RegistryClient, digest: str) -> Found:
    """Every DSSE envelope attached to the image ``digest``: through its referrers (as an
    envelope, or inside a Sigstore bundle, cosign v3's form) and at cosign's attestation
    tag. The same envelope in several places is one attestation."""
    referrers = list_referrers(client, digest)
    found = _Collected(client)
    read = 0
    for entry in referrers.entries:
        desc = entry.descriptor
        if entry.artifact_type not in (None, *ATTESTATION_TYPES) or (
                desc.media_type not in MANIFEST_TYPES):
            continue
        read += 1
        if read > MAX_ATTESTATIONS or desc.size > REFERRERS_LIMIT:
            raise ImageSourceError(
                f"{referrers.where} of {client.ref} lists more than {MAX_ATTESTATIONS} "
                "attestations of one image, or one larger than a manifest can be",
                hint="remove stale attestations of this image from the registry")
        found.referrer(desc.digest, f"referrer {desc.digest} ({referrers.where})")
    tag = attestation_tag(digest)
    manifest = client.optional_manifest(tag, limit=REFERRERS_LIMIT)
    if manifest is not None:
        found.layers(load_json(manifest[0], what=f"tag {tag}"), f"tag {tag}", subject=None,
                     kind=DSSE_ENVELOPE)
    looked = (("the referrers API" if referrers.api else
               f"the referrers API (this registry has none) and {referrers.where}"),
              f"cosign's tag {tag}")
    return Found(tuple(found.items.values()), looked)


class _Collected:
    """The envelopes read so far, keyed by their content (an envelope and the bundle that
    holds the same one are one attestation); each blob is read once."""

    def __init__(self, client: RegistryClient) -> None:
        self.client = client
        self.items: dict[str, Attestation] = {}
        self.keys: dict[str, str | None] = {}  # blob digest -> content key (None: none)

    def referrer(self, digest: str, where: str) -> None:
        data, _, _ = self.client.manifest(digest, limit=REFERRERS_LIMIT)
        doc = load_json(data, what=f"manifest {digest} of {self.client.ref}")
        kind = doc.get("artifactType") or (doc.get("config") or {}).get("mediaType")
        if kind not in ATTESTATION_TYPES:
            return
        subject = want(doc.get("subject"), dict, f"{where}: subject")
        self.layers(doc, where, subject=check_digest(subject.get("digest"),
                                                     where=f"{where}: subject"), kind=kind)

    def layers(self, doc: dict[str, Any], where: str, *, subject: str | None,
               kind: str) -> None:
        layers = want(doc.get("layers"), list, f"{where}: layers")
        for i, item in enumerate(layers):
            desc = Descriptor.from_json(item, where=f"{where}: layers[{i}]")
            if desc.media_type == kind:
                self._add(desc.digest, kind, where, subject)

    def _add(self, digest: str, kind: str, where: str, subject: str | None) -> None:
        if digest not in self.keys:
            # every blob read counts, a bundle without a statement too: each is read whole
            if len(self.keys) >= MAX_ATTESTATIONS:
                raise ImageSourceError(
                    f"{self.client.ref} holds more than {MAX_ATTESTATIONS} attestations of "
                    "one image", hint="remove stale attestations of this image from the "
                    "registry")
            envelope = _envelope(self.client.blob(digest), kind, where)
            key = self.keys[digest] = None if envelope is None else _content_key(envelope,
                                                                                  digest)
            if key is not None and key not in self.items:
                self.items[key] = Attestation(digest, envelope or b"", (), ())
        key = self.keys[digest]
        if key is None:
            return  # a bundle of a message signature: no statement in it
        seen = self.items[key]
        self.items[key] = Attestation(seen.digest, seen.envelope, (*seen.where, where),
                                      (*seen.subjects, *([subject] if subject else [])))


def _envelope(data: bytes, kind: str, where: str) -> bytes | None:
    """The DSSE envelope a blob holds: the blob itself, or a bundle's ``dsseEnvelope``
    (None for a bundle that holds a message signature instead)."""
    if kind == DSSE_ENVELOPE:
        return data
    bundle = load_json(data, what=f"the Sigstore bundle of {where}")
    envelope = bundle.get("dsseEnvelope")
    if envelope is None:
        return None
    return canonical_json(want(envelope, dict, f"{where}: dsseEnvelope"))


def _content_key(envelope: bytes, digest: str) -> str:
    """The same statement and signatures, however the JSON is spaced, give one key; an
    envelope that is not JSON is keyed by its blob (verify reports it)."""
    try:
        doc = load_json(envelope, what="an envelope")
    except ImageSourceError:
        return digest
    fields = {name: doc.get(name) for name in ("payload", "payloadType", "signatures")}
    return "sha256:" + hashlib.sha256(canonical_json(fields)).hexdigest()
