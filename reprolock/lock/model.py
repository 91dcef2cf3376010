"""The lock, as frozen dataclasses that map one to one onto ``schemas/lock.schema.json``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

LOCK_VERSION = 1


@dataclass(frozen=True)
class InputFile:
    path: str  # relative to the project root, with forward slashes
    sha256: str


@dataclass(frozen=True)
class Inputs:
    config: InputFile  # sha256 of the canonical JSON of the config table
    files: tuple[InputFile, ...]  # requirement inputs and what they include
    base: str
    platform: str
    resolver: str

    def items(self) -> dict[str, str]:
        """Every input as name → value, to say which one changed."""
        found = {f"config {self.config.path}": self.config.sha256,
                 "base": self.base, "platform": self.platform, "resolver": self.resolver}
        found.update({f"file {f.path}": f.sha256 for f in self.files})
        return found

    def to_json(self) -> dict[str, Any]:
        return {"config": _file(self.config), "files": [_file(f) for f in self.files],
                "base": self.base, "platform": self.platform, "resolver": self.resolver}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Inputs:
        return cls(InputFile(**data["config"]), tuple(InputFile(**f) for f in data["files"]),
                   data["base"], data["platform"], data["resolver"])


@dataclass(frozen=True)
class Artifact:
    filename: str
    sha256: str
    size: int | None
    url: str | None = None  # remote, credentials removed
    path: str | None = None  # a find-links file, relative to the project root

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"filename": self.filename, "sha256": self.sha256,
                                "size": self.size}
        if self.url is not None:
            data["url"] = self.url
        if self.path is not None:
            data["path"] = self.path
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Artifact:
        return cls(data["filename"], data["sha256"], data.get("size"), data.get("url"),
                   data.get("path"))


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    hashes: tuple[str, ...]
    artifact: Artifact
    direct: bool
    requested_by: tuple[str, ...]  # input files or dependents
    modules: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "hashes": list(self.hashes),
                "artifact": self.artifact.to_json(), "direct": self.direct,
                "requestedBy": list(self.requested_by), "modules": list(self.modules)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Package:
        return cls(data["name"], data["version"], tuple(data["hashes"]),
                   Artifact.from_json(data["artifact"]), data["direct"],
                   tuple(data["requestedBy"]), tuple(data["modules"]))


@dataclass(frozen=True)
class BaseImage:
    reference: str
    digest: str  # what pins it: the platform manifest, or the config for manifest-less images
    index_digest: str | None
    manifest_digest: str | None
    config_digest: str
    os: str
    architecture: str
    python_path: str
    python_version: str
    libc: str
    libc_version: str

    def to_json(self) -> dict[str, Any]:
        return {"reference": self.reference, "digest": self.digest,
                "indexDigest": self.index_digest, "manifestDigest": self.manifest_digest,
                "configDigest": self.config_digest, "os": self.os,
                "architecture": self.architecture,
                "python": {"path": self.python_path, "version": self.python_version},
                "libc": {"family": self.libc, "version": self.libc_version}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BaseImage:
        return cls(data["reference"], data["digest"], data.get("indexDigest"),
                   data.get("manifestDigest"), data["configDigest"], data["os"],
                   data["architecture"], data["python"]["path"], data["python"]["version"],
                   data["libc"]["family"], data["libc"]["version"])


@dataclass(frozen=True)
class ImageRecord:
    """The environment image (base + dependencies + config, no code) built from this lock."""

    config_digest: str
    manifest_digest: str
    layers: tuple[Mapping[str, Any], ...]  # digest, diffId, size, mediaType, holds
    compression: Mapping[str, Any]  # name, level, library
    source_date_epoch: int
    prefix: str
    # distribution name -> "sha256:" of its RECORD as installed: a patched file shows
    # against RECORD, a patched RECORD against this
    records: Mapping[str, str] = field(default_factory=dict)

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return tuple(str(layer["diffId"]) for layer in self.layers)

    def to_json(self) -> dict[str, Any]:
        data = {"configDigest": self.config_digest, "manifestDigest": self.manifest_digest,
                "layers": [dict(x) for x in self.layers], "compression": dict(self.compression),
                "sourceDateEpoch": self.source_date_epoch, "prefix": self.prefix}
        if self.records:
            data["records"] = dict(sorted(self.records.items()))
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ImageRecord:
        return cls(data["configDigest"], data["manifestDigest"], tuple(data["layers"]),
                   data["compression"], data["sourceDateEpoch"], data["prefix"],
                   dict(data.get("records", {})))


@dataclass(frozen=True)
class SbomRecord:
    """The SBOM of the environment image, written beside the lock."""

    path: str  # relative to the project root
    format: str  # spdx or cyclonedx
    sha256: str
    tool: str
    tool_version: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format, "sha256": self.sha256,
                "tool": {"name": self.tool, "version": self.tool_version}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SbomRecord:
        return cls(data["path"], data["format"], data["sha256"], data["tool"]["name"],
                   data["tool"]["version"])


@dataclass(frozen=True)
class Lock:
    inputs_digest: str
    inputs: Inputs
    target: Mapping[str, Any]
    base: BaseImage
    resolver: Mapping[str, str]
    indexes: tuple[Mapping[str, str], ...]
    packages: tuple[Package, ...]
    generator: Mapping[str, str]
    image: ImageRecord | None = None
    sbom: SbomRecord | None = None

    def to_json(self) -> dict[str, Any]:
        extra = {"image": self.image.to_json()} if self.image else {}
        if self.sbom:
            extra["sbom"] = self.sbom.to_json()
        return {
            **extra,
            "lockVersion": LOCK_VERSION,
            "generator": dict(self.generator),
            "inputsDigest": self.inputs_digest,
            "inputs": self.inputs.to_json(),
            "target": dict(self.target),
            "base": self.base.to_json(),
            "resolver": dict(self.resolver),
            "indexes": [dict(i) for i in self.indexes],
            "packages": [p.to_json() for p in sorted(self.packages, key=lambda p: p.name)],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Lock:
        return cls(
            inputs_digest=data["inputsDigest"],
            inputs=Inputs.from_json(data["inputs"]),
            target=data["target"],
            base=BaseImage.from_json(data["base"]),
            resolver=data["resolver"],
            indexes=tuple(data["indexes"]),
            packages=tuple(Package.from_json(p) for p in data["packages"]),
            generator=data["generator"],
            image=ImageRecord.from_json(data["image"]) if data.get("image") else None,
            sbom=SbomRecord.from_json(data["sbom"]) if data.get("sbom") else None,
        )

    def package(self, name: str) -> Package | None:
        return next((p for p in self.packages if p.name == name), None)


def _file(item: InputFile) -> dict[str, str]:
    return {"path": item.path, "sha256": item.sha256}
