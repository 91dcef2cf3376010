"""The OCI (and Docker) media types and annotations reprolock reads and writes.

The lowest module of the OCI vocabulary: it imports nothing, and image sources (reading),
outputs (writing) and the builder all name media types from here.
"""

from __future__ import annotations

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
#: a Sigstore bundle v0.3: the file type of cosign v3's signatures and attestations, and
#: the artifactType of the referrers it pushes for them
SIGSTORE_BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
#: the annotations cosign v3 (and GitHub's attest action) put on a bundle referrer, so
#: that a verifier picks an attestation by its predicate type without reading it
BUNDLE_CONTENT = "dev.sigstore.bundle.content"
BUNDLE_PREDICATE_TYPE = "dev.sigstore.bundle.predicateType"

#: The annotation that names an image in an image layout's ``index.json`` (its tag).
REF_NAME = "org.opencontainers.image.ref.name"
#: The content of an image layout's ``oci-layout`` file.
LAYOUT_FILE = b'{"imageLayoutVersion":"1.0.0"}'


def oci_layer_type(media_type: str) -> str:
    """The OCI media type of a layer a Docker manifest names (the bytes are the same)."""
    if media_type.startswith("application/vnd.docker.image.rootfs.diff.tar"):
        return OCI_LAYER_GZIP if media_type.endswith("gzip") else OCI_LAYER_TAR
    return media_type
