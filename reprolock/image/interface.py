"""What every image source provides: resolve a reference to digests, stream blobs."""

from __future__ import annotations

import abc
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Self

from reprolock._internal.jsonio import parse_json
from reprolock.errors import ImageSourceError
from reprolock.oci.contract import env_pairs
from reprolock.oci.media import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_LAYER_TAR,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_LAYER_TAR,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
    REF_NAME,
)
from reprolock.target import Platform

# the media types are re-exported: the image sources (and tests) name them from here
__all__ = ["DIGEST", "DOCKER_CONFIG", "DOCKER_LAYER_GZIP", "DOCKER_LAYER_TAR", "DOCKER_LIST",
           "DOCKER_MANIFEST", "INDEX_TYPES", "MANIFEST_TYPES", "MAX_DOCUMENT", "OCI_CONFIG",
           "OCI_INDEX", "OCI_LAYER_GZIP", "OCI_LAYER_TAR", "OCI_LAYER_ZSTD", "OCI_MANIFEST",
           "REF_NAME", "Descriptor", "ImageSource", "ResolvedImage", "check_config",
           "check_digest", "check_platform", "index_entries", "load_json", "parse_manifest",
           "select_platform", "strings", "want"]

#: The only digests accepted anywhere: they become blob paths and registry URLs, so
#: ``sha256:./../../o.tar`` must never get that far.
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
#: Manifests, indexes and configs are small (registries refuse manifests over 4 MiB).
MAX_DOCUMENT = 16 << 20
_MALFORMED = "the image was not written by a conforming tool (or was edited): rebuild or " \
    "re-export it"


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Mapping[str, str] | None = None

    @classmethod
    def from_json(cls, data: object, *, where: str) -> Descriptor:
        """A descriptor of a manifest, an index or ``index.json``; ``where`` names it in
        errors ("manifest sha256:… layers[2]")."""
        doc = want(data, dict, where)
        size = doc.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ImageSourceError(f"{where}: size {size!r} is not a byte count",
                                   hint=_MALFORMED)
        platform = want(doc.get("platform") or {}, dict, f"{where}.platform")
        return cls(
            media_type=want(doc.get("mediaType", ""), str, f"{where}.mediaType"),
            digest=check_digest(doc.get("digest"), where=f"{where}.digest"),
            size=size,
            annotations=strings(doc.get("annotations") or {}, f"{where}.annotations"),
            platform={k: v for k, v in platform.items() if isinstance(v, str)} or None,
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
        return env_pairs(self.config)

    @property
    def identity(self) -> str:
        """The digest that pins this image: manifest if there is one, else the config."""
        return self.manifest_digest or self.config_digest


class ImageSource(abc.ABC):
    """One kind of place that holds images (layout, archive, daemon, registry); a context
    manager that closes it:

        >>> with open_source(reference, root=root) as source:   # doctest: +SKIP
        ...     image = source.resolve(platform)
    """

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
        """A stream of the blob's bytes, as stored: the caller checks the digest (for a
        layer, :func:`reprolock.image.blobs.check_layer` does, and its diff_id)."""

    def close(self) -> None:  # noqa: B027 - most sources hold nothing open
        """Release temporary files."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def select_platform(
    index: Mapping[str, Any], platform: Platform, *, where: str
) -> Descriptor:
    """Pick the manifest for ``platform`` from an image index."""
    offered = []
    for desc in index_entries(index, where=where):
        plat = desc.platform or {}
        offered.append("/".join(filter(None, (plat.get("os"), plat.get("architecture"),
                                              plat.get("variant")))))
        if plat.get("os") == platform.os and plat.get("architecture") == platform.arch and (
            platform.variant is None or plat.get("variant") == platform.variant
        ):
            return desc
    raise ImageSourceError(
        f"{where} has no image for {platform} (it offers: {listed(offered)})",
        hint="set platform in reprolock.toml to one the base image offers, or pick another base",
    )


def listed(names: Sequence[str], *, most: int = 20) -> str:
    """``names`` for a message: the first ``most``, then how many more (an index may list
    70,000 platforms)."""
    if not names:
        return "none"
    shown = ", ".join(names[:most])
    return shown if len(names) <= most else f"{shown} and {len(names) - most} more"


def load_json(data: bytes, *, what: str) -> dict[str, Any]:
    """Parse an image document strictly (duplicate keys, depth): it may be crafted."""
    doc: dict[str, Any] = parse_json(data, source=what, error=ImageSourceError, hint=_MALFORMED)
    return doc


def check_digest(value: object, *, where: str) -> str:
    if isinstance(value, str) and DIGEST.match(value):
        return value
    shown = repr(value) if len(repr(value)) <= 100 else repr(value)[:99] + "…"
    raise ImageSourceError(f"{where}: {shown} is not a sha256 digest (sha256: and 64 "
                           "lowercase hex digits)", hint=_MALFORMED)


def want(value: object, kind: type[Any], where: str) -> Any:
    """``value`` if it has JSON type ``kind``, else an ImageSourceError naming ``where``."""
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    names = {dict: "an object", list: "a list", str: "a string", int: "a number",
             bool: "true or false"}
    raise ImageSourceError(f"{where} is not {names.get(kind, kind.__name__)} "
                           f"(it is {type(value).__name__})", hint=_MALFORMED)


def strings(value: object, where: str) -> dict[str, str]:
    doc = want(value, dict, where)
    for key, item in doc.items():
        want(item, str, f"{where}[{key!r}]")
    return dict(doc)


def parse_manifest(doc: Mapping[str, Any], *, where: str
                   ) -> tuple[Descriptor, tuple[Descriptor, ...]]:
    """The config and layer descriptors of an image manifest."""
    config = Descriptor.from_json(doc.get("config"), where=f"{where}: config")
    layers = want(doc.get("layers"), list, f"{where}: layers")
    return config, tuple(Descriptor.from_json(item, where=f"{where}: layers[{i}]")
                         for i, item in enumerate(layers))


def index_entries(doc: Mapping[str, Any], *, where: str) -> list[Descriptor]:
    """The descriptors an image index (or ``index.json``) lists."""
    items = want(doc.get("manifests", []), list, f"{where}: manifests")
    return [Descriptor.from_json(item, where=f"{where}: manifests[{i}]")
            for i, item in enumerate(items)]


def check_config(config: Mapping[str, Any], *, where: str, layers: int | None = None
                 ) -> dict[str, Any]:
    """``config`` if every field reprolock reads has its type; ``layers``: how many the
    manifest lists, which the diff_ids must match one for one."""
    rootfs = want(config.get("rootfs"), dict, f"{where}: rootfs")
    diff_ids = want(rootfs.get("diff_ids"), list, f"{where}: rootfs.diff_ids")
    for i, diff_id in enumerate(diff_ids):
        check_digest(diff_id, where=f"{where}: rootfs.diff_ids[{i}]")
    if layers is not None and layers != len(diff_ids):
        raise ImageSourceError(f"{where}: rootfs.diff_ids lists {len(diff_ids)} layers but "
                               f"the manifest {layers}", hint=_MALFORMED)
    for name in ("os", "architecture", "variant"):
        if config.get(name) is not None:
            want(config[name], str, f"{where}: {name}")
    for i, entry in enumerate(want(config.get("history", []), list, f"{where}: history")):
        want(entry, dict, f"{where}: history[{i}]")
        want(entry.get("created_by", ""), str, f"{where}: history[{i}].created_by")
    _check_run_config(config.get("config") or {}, f"{where}: config")
    return dict(config)


def _check_run_config(value: object, where: str) -> None:
    run = want(value, dict, where)
    strings(run.get("Labels") or {}, f"{where}.Labels")
    for name in ("Env", "Entrypoint", "Cmd"):
        for i, item in enumerate(want(run.get(name) or [], list, f"{where}.{name}")):
            want(item, str, f"{where}.{name}[{i}]")
    if run.get("WorkingDir") is not None:
        want(run["WorkingDir"], str, f"{where}.WorkingDir")


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
