"""What every image source provides: resolve a reference to digests, stream blobs."""

from __future__ import annotations

import abc
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from reprolock.errors import ImageSourceError
from reprolock.target import Platform

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
REF_NAME = "org.opencontainers.image.ref.name"


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Mapping[str, str] | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Descriptor:
        return cls(
            media_type=str(data.get("mediaType", "")),
            digest=str(data["digest"]),
            size=int(data["size"]),
            annotations=dict(data.get("annotations") or {}),
            platform=dict(data["platform"]) if data.get("platform") else None,
        )


@dataclass(frozen=True)
class ResolvedImage:
    """A base image pinned to digests. ``manifest_digest`` is None only for images that
    exist as a config and layer tars alone (old ``docker save`` archives, the daemon)."""

    reference: str
    index_digest: str | None
    manifest_digest: str | None
    config_digest: str
    config: Mapping[str, Any]
    layers: tuple[Descriptor, ...]

    @property
    def os(self) -> str:
        return str(self.config.get("os", ""))

    @property
    def architecture(self) -> str:
        return str(self.config.get("architecture", ""))

    @property
    def variant(self) -> str | None:
        value = self.config.get("variant")
        return str(value) if value else None

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return tuple(self.config.get("rootfs", {}).get("diff_ids", ()))

    @property
    def env(self) -> dict[str, str]:
        pairs = (self.config.get("config") or {}).get("Env") or []
        return dict(item.split("=", 1) for item in pairs if "=" in item)

    @property
    def identity(self) -> str:
        """The digest that pins this image: manifest if there is one, else the config."""
        return self.manifest_digest or self.config_digest


class ImageSource(abc.ABC):
    """One kind of place that holds images (layout, archive, daemon, registry)."""

    def __init__(self, reference: str) -> None:
        self.reference = reference

    @property
    @abc.abstractmethod
    def pinned(self) -> bool:
        """True when the reference itself names a digest, so it cannot move."""

    @abc.abstractmethod
    def resolve(self, platform: Platform) -> ResolvedImage:
        """Pin the reference for ``platform`` to digests and read the config."""

    @abc.abstractmethod
    def open_blob(self, digest: str) -> IO[bytes]:
        """A stream of the blob's bytes (the caller checks the digest)."""

    def close(self) -> None:  # noqa: B027 - most sources hold nothing open
        """Release temporary files."""


def select_platform(
    index: Mapping[str, Any], platform: Platform, *, where: str
) -> Descriptor:
    """Pick the manifest for ``platform`` from an image index."""
    offered = []
    for item in index.get("manifests", []):
        desc = Descriptor.from_json(item)
        plat = desc.platform or {}
        offered.append("/".join(filter(None, (plat.get("os"), plat.get("architecture"),
                                              plat.get("variant")))))
        if plat.get("os") == platform.os and plat.get("architecture") == platform.arch and (
            platform.variant is None or plat.get("variant") == platform.variant
        ):
            return desc
    raise ImageSourceError(
        f"{where} has no image for {platform} (it offers: {', '.join(offered) or 'none'})",
        hint="set platform in reprolock.toml to one the base image offers, or pick another base",
    )


def load_json(data: bytes, *, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImageSourceError(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ImageSourceError(f"{what} is not a JSON object")
    return value


def check_platform(image: ResolvedImage, platform: Platform) -> None:
    if image.os and image.architecture and (
        image.os != platform.os or image.architecture != platform.arch
    ):
        raise ImageSourceError(
            f"base image {image.reference} is {image.os}/{image.architecture}, "
            f"not {platform}",
            hint="set platform in reprolock.toml to match the base image, or pick a base "
            f"built for {platform}",
        )
