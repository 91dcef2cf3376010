"""The lock, as frozen dataclasses that map one to one onto ``schemas/lock.schema.json``.

Reading checks again every value that becomes a path, a file name or a line of another
tool's file (the schema says the same, but a cache stamp can skip the schema): a lock
is an input anyone can hand to reprolock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reprolock.errors import LockFileError, ReprolockError

LOCK_VERSION = 1

_CTRL = "\x00-\x1f\x7f-\x9f\u2028\u2029"  # controls and what str.splitlines() splits at
_WHEEL = r"[A-Za-z0-9_][A-Za-z0-9_.+!-]*\.whl"
_SDIST = r"[A-Za-z0-9_][A-Za-z0-9_.+!-]*\.(?:tar\.gz|zip)"
_DIR = f"(?:/|(?:\\.\\./)*)(?:(?!\\.\\.?/)[^/\\\\{_CTRL}]+/)*"  # of a find-links path
_HINT = "do not edit the lock by hand; run 'reprolock lock' to rewrite it"
#: kind -> (pattern the whole value must match, what it is, in words)
_KINDS: dict[str, tuple[re.Pattern[str], str]] = {
    "text": (re.compile(f"[^{_CTRL}]*"), "text without control characters or line breaks"),
    "token": (re.compile(f"[^\\s{_CTRL}]+"), "one word without spaces or control characters"),
    "sha256": (re.compile("[0-9a-f]{64}"), "64 lowercase hex digits"),
    "digest": (re.compile("sha256:[0-9a-f]{64}"), "sha256: and 64 lowercase hex digits"),
    "name": (re.compile("[a-z0-9]+(?:-[a-z0-9]+)*"), "a normalized distribution name"),
    "version": (re.compile("[A-Za-z0-9][A-Za-z0-9.!+_-]*"), "a PEP 440 version"),
    "wheel": (re.compile(_WHEEL), "a wheel file name (one path component ending in .whl)"),
    # absolute, or relative with '..' only at its start: what the find-links entry says
    "wheel path": (re.compile(_DIR + _WHEEL),
                   "a path to a wheel, absolute or relative, with '..' only at the start "
                   "of a relative one"),
    "sdist": (re.compile(_SDIST), "an sdist file name (one path component ending in .tar.gz "
              "or .zip)"),
    "sdist path": (re.compile(_DIR + _SDIST),
                   "a path to an sdist, absolute or relative, with '..' only at the start "
                   "of a relative one"),
    "file name": (re.compile("[A-Za-z0-9_][A-Za-z0-9_.+-]*"), "a file name (one path component)"),
    "absolute path": (re.compile(r"(?:/(?!\.\.?(?:/|$))[A-Za-z0-9_.+-]+)+"),
                      "an absolute path without '.', '..' or spaces"),
    "python version": (re.compile(r"[0-9]+\.[0-9]+(?:\.[0-9]+)?[A-Za-z0-9.+]*"),
                       "a Python version"),
}


def checked(value: Any, kind: str, where: str, *, error: type[ReprolockError] = LockFileError,
            hint: str = _HINT, owner: str = "the lock's") -> str:
    """``value`` if it is a string of ``kind``; else ``error`` naming ``where`` (the key
    path in the lock)."""
    pattern, words = _KINDS[kind]
    if isinstance(value, str) and pattern.fullmatch(value):
        return value
    shown = json.dumps(value, default=str)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    raise error(f"{owner} {where} is {shown}, which is not {words}; reprolock does not "
                "use it as a path or write it into another file", hint=hint)


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
        return cls(_input_file(data["config"], "inputs.config"),
                   tuple(_input_file(f, f"inputs.files[{i}]")
                         for i, f in enumerate(data["files"])),
                   checked(data["base"], "text", "inputs.base"),
                   checked(data["platform"], "token", "inputs.platform"),
                   checked(data["resolver"], "token", "inputs.resolver"))


@dataclass(frozen=True)
class Artifact:
    """A file that gets installed (a wheel) or built (an sdist): from an index (``url``),
    a find-links directory (``path``), or for a wheel built from the package's sdist
    (``built``) from neither."""

    filename: str
    sha256: str
    size: int | None
    url: str | None = None  # remote, credentials removed
    path: str | None = None  # a find-links file: absolute, or relative to the project root
    built: bool = False  # a wheel reprolock built from the package's locked sdist
    # the index served no hash for the file: reprolock downloaded it and computed sha256
    hash_computed: bool = False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"filename": self.filename, "sha256": self.sha256,
                                "size": self.size}
        if self.url is not None:
            data["url"] = self.url
        if self.path is not None:
            data["path"] = self.path
        if self.built:
            data["builtFrom"] = "sdist"
        if self.hash_computed:
            data["hashSource"] = "computed"
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str = "artifact",
                  kind: str = "wheel") -> Artifact:
        filename = checked(data["filename"], kind, f"{where}.filename")
        path = data.get("path")
        if path is not None:
            checked(path, f"{kind} path", f"{where}.path")
            if path.rsplit("/", 1)[-1] != filename:
                raise LockFileError(f"the lock's {where}.path {path!r} is not a path to "
                                    f"its filename {filename!r}", hint=_HINT)
        url = data.get("url")
        built = data.get("builtFrom") == "sdist"
        if [url is not None, path is not None, built].count(True) != 1:
            raise LockFileError(f"the lock's {where} must say where its file comes from: one "
                                "of url, path or builtFrom", hint=_HINT)
        return cls(filename, checked(data["sha256"], "sha256", f"{where}.sha256"),
                   data.get("size"), None if url is None else checked(url, "text", f"{where}.url"),
                   path, built, data.get("hashSource") == "computed")


@dataclass(frozen=True)
class BuildRequirement:
    """A package the sdist's build backend runs with, pinned and hashed as any other."""

    name: str
    version: str
    hashes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "hashes": list(self.hashes)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> BuildRequirement:
        return cls(checked(data["name"], "name", f"{where}.name"),
                   checked(data["version"], "version", f"{where}.version"),
                   tuple(checked(h, "digest", f"{where}.hashes[{i}]")
                         for i, h in enumerate(data["hashes"])))


@dataclass(frozen=True)
class SourceBuild:
    """How a package's wheel was built from its sdist, so that anyone can build it again
    and compare: the sdist, the pinned build requirements, the interpreter and tool that
    ran the backend, and the timestamp it was given."""

    sdist: Artifact
    requires: tuple[BuildRequirement, ...]
    python: str  # the version of the interpreter that ran the build backend
    tool: Mapping[str, str]  # name, version
    source_date_epoch: int

    def to_json(self) -> dict[str, Any]:
        return {"sdist": self.sdist.to_json(), "requires": [r.to_json() for r in self.requires],
                "python": self.python, "tool": dict(self.tool),
                "sourceDateEpoch": self.source_date_epoch}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> SourceBuild:
        sdist = Artifact.from_json(data["sdist"], f"{where}.sdist", kind="sdist")
        if sdist.built:
            raise LockFileError(f"the lock's {where}.sdist is not a file of the index or of "
                                "a find-links directory", hint=_HINT)
        epoch = data["sourceDateEpoch"]
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 315532800:
            raise LockFileError(f"the lock's {where}.sourceDateEpoch is not a time from 1980 "
                                "on (zip files cannot hold earlier times)", hint=_HINT)
        return cls(sdist, tuple(BuildRequirement.from_json(r, f"{where}.requires[{i}]")
                                for i, r in enumerate(data["requires"])),
                   checked(data["python"], "python version", f"{where}.python"),
                   {"name": checked(data["tool"]["name"], "token", f"{where}.tool.name"),
                    "version": checked(data["tool"]["version"], "token",
                                       f"{where}.tool.version")}, epoch)


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    hashes: tuple[str, ...]
    artifact: Artifact
    direct: bool
    requested_by: tuple[str, ...]  # input files or dependents
    modules: tuple[str, ...]
    source: SourceBuild | None = None  # the artifact was built from this sdist

    def to_json(self) -> dict[str, Any]:
        data = {"name": self.name, "version": self.version, "hashes": list(self.hashes),
                "artifact": self.artifact.to_json(), "direct": self.direct,
                "requestedBy": list(self.requested_by), "modules": list(self.modules)}
        if self.source is not None:
            data["build"] = self.source.to_json()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str = "package") -> Package:
        artifact = Artifact.from_json(data["artifact"], f"{where}.artifact")
        source = None if data.get("build") is None else \
            SourceBuild.from_json(data["build"], f"{where}.build")
        if artifact.built != (source is not None):
            raise LockFileError(f"the lock's {where} has a built artifact without its build, "
                                "or a build without a built artifact", hint=_HINT)
        return cls(checked(data["name"], "name", f"{where}.name"),
                   checked(data["version"], "version", f"{where}.version"),
                   tuple(checked(h, "digest", f"{where}.hashes[{i}]")
                         for i, h in enumerate(data["hashes"])),
                   artifact, data["direct"],
                   tuple(checked(v, "text", f"{where}.requestedBy")
                         for v in data["requestedBy"]),
                   tuple(checked(m, "token", f"{where}.modules") for m in data["modules"]),
                   source)


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
        optional = {key: None if data.get(key) is None
                    else checked(data[key], "digest", f"base.{key}")
                    for key in ("indexDigest", "manifestDigest")}
        return cls(checked(data["reference"], "text", "base.reference"),
                   checked(data["digest"], "digest", "base.digest"),
                   optional["indexDigest"], optional["manifestDigest"],
                   checked(data["configDigest"], "digest", "base.configDigest"),
                   checked(data["os"], "token", "base.os"),
                   checked(data["architecture"], "token", "base.architecture"),
                   checked(data["python"]["path"], "absolute path", "base.python.path"),
                   checked(data["python"]["version"], "python version", "base.python.version"),
                   checked(data["libc"]["family"], "token", "base.libc.family"),
                   checked(data["libc"]["version"], "token", "base.libc.version"))


@dataclass(frozen=True)
class Compression:
    """How the environment image's layers were compressed: a build of the lock uses the
    same, so that its manifest digest is the one recorded."""

    name: str  # gzip, zstd or none
    level: int
    library: str  # the library and version whose bytes these are
    block_size: int = 0  # uncompressed bytes per member; 0: one stream (older locks)
    wheel_deflate: bool = False  # gzip members copied from the wheels' deflate streams

    @property
    def spec(self) -> str:
        """NAME:LEVEL, as --compression takes it."""
        return f"{self.name}:{self.level}"

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"name": self.name, "level": self.level,
                                 "library": self.library}
        if self.block_size:
            found["blockSize"] = self.block_size
        if self.wheel_deflate:
            found["wheelDeflate"] = True
        return found

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Compression:
        from reprolock.oci.compress import MAX_BLOCK_SIZE, MIN_BLOCK_SIZE

        level, blocks = data["level"], data.get("blockSize", 0)
        for value, key in ((level, "level"), (blocks, "blockSize")):
            if not isinstance(value, int) or isinstance(value, bool):
                raise LockFileError(f"the lock's image.compression.{key} is not a number",
                                    hint=_HINT)
        if blocks and not MIN_BLOCK_SIZE <= blocks <= MAX_BLOCK_SIZE:
            # each block is held in memory while it is compressed
            raise LockFileError(
                f"the lock's image.compression.blockSize is {blocks}, outside "
                f"{MIN_BLOCK_SIZE}..{MAX_BLOCK_SIZE}", hint=_HINT)
        reuse = data.get("wheelDeflate", False)
        if not isinstance(reuse, bool) or (reuse and (data["name"] != "gzip" or not blocks)):
            raise LockFileError("the lock's image.compression.wheelDeflate is not true or "
                                "false, or is set for a compression that is not gzip in "
                                "blocks", hint=_HINT)
        return cls(checked(data["name"], "token", "image.compression.name"), level,
                   checked(data["library"], "text", "image.compression.library"), blocks,
                   reuse)


@dataclass(frozen=True)
class LockTarget:
    """The platform and Python the lock is for, as the build, export and verify read it;
    ``data`` is the table as written, so a lock reads back to the same bytes."""

    platform: str  # os/arch[/variant], e.g. linux/amd64
    architecture: str
    python_version: str
    data: Mapping[str, Any]

    @property
    def python_minor(self) -> str:
        return ".".join(self.python_version.split(".")[:2])

    def to_json(self) -> dict[str, Any]:
        return dict(self.data)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LockTarget:
        return cls(checked(data["platform"], "token", "target.platform"),
                   checked(data["architecture"], "token", "target.architecture"),
                   checked(data["python"]["version"], "python version",
                           "target.python.version"), data)


@dataclass(frozen=True)
class ImageRecord:
    """The environment image (base + dependencies + config, no code) built from this lock."""

    config_digest: str
    manifest_digest: str
    layers: tuple[Mapping[str, Any], ...]  # digest, diffId, size, mediaType, holds
    compression: Compression
    source_date_epoch: int
    prefix: str
    # distribution name -> "sha256:" of its RECORD as installed: a patched file shows
    # against RECORD, a patched RECORD against this
    records: Mapping[str, str] = field(default_factory=dict)

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return tuple(str(layer["diffId"]) for layer in self.layers)

    def matches(self, config_digest: str, manifest_digest: str,
                compression: Mapping[str, Any]) -> bool:
        """A built environment image is this one: the same configuration (which names
        every layer's diff_id), and the same manifest unless its layers were compressed
        by another library (``compression``, the builder's), whose bytes differ."""
        if config_digest != self.config_digest:
            return False
        return self.compression.to_json() != dict(compression) \
            or manifest_digest == self.manifest_digest

    def to_json(self) -> dict[str, Any]:
        data = {"configDigest": self.config_digest, "manifestDigest": self.manifest_digest,
                "layers": [dict(x) for x in self.layers], "compression": self.compression.to_json(),
                "sourceDateEpoch": self.source_date_epoch, "prefix": self.prefix}
        if self.records:
            data["records"] = dict(sorted(self.records.items()))
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ImageRecord:
        for i, layer in enumerate(data["layers"]):
            for key in ("digest", "diffId"):
                checked(layer[key], "digest", f"image.layers[{i}].{key}")
            checked(layer["mediaType"], "token", f"image.layers[{i}].mediaType")
            checked(layer["holds"], "text", f"image.layers[{i}].holds")
        records = dict(data.get("records", {}))
        for name, digest in records.items():
            checked(name, "name", "image.records key")
            checked(digest, "digest", f"image.records.{name}")
        return cls(checked(data["configDigest"], "digest", "image.configDigest"),
                   checked(data["manifestDigest"], "digest", "image.manifestDigest"),
                   tuple(data["layers"]), Compression.from_json(data["compression"]),
                   data["sourceDateEpoch"],
                   checked(data["prefix"], "absolute path", "image.prefix"), records)


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
        return cls(checked(data["path"], "file name", "sbom.path"),
                   checked(data["format"], "token", "sbom.format"),
                   checked(data["sha256"], "sha256", "sbom.sha256"),
                   checked(data["tool"]["name"], "token", "sbom.tool.name"),
                   checked(data["tool"]["version"], "token", "sbom.tool.version"))


@dataclass(frozen=True)
class Accelerator:
    """``kind`` is "cuda" or "cpu" (no locked package needs CUDA)."""

    kind: str
    cuda: str | None = None  # MAJOR.MINOR the wheels were built for
    min_driver: str | None = None  # the oldest driver that runs that CUDA
    cudnn: str | None = None
    nccl: str | None = None
    evidence: tuple[str, ...] = ()  # "name version" of each package that says so
    base_cuda: str | None = None  # the CUDA toolkit the base image carries (CUDA_VERSION)

    def to_json(self) -> dict[str, Any]:
        if self.kind == "cpu":
            return {"kind": "cpu"}
        data: dict[str, Any] = {"kind": self.kind, "cuda": self.cuda,
                                "minDriver": self.min_driver, "evidence": list(self.evidence)}
        data.update({k: v for k, v in (("cudnn", self.cudnn), ("nccl", self.nccl),
                                       ("baseCuda", self.base_cuda)) if v})
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Accelerator:
        kind = checked(data["kind"], "token", "accelerator.kind")
        if kind not in ("cpu", "cuda"):
            raise LockFileError(f"the lock's accelerator.kind is {kind!r}, not cpu or cuda",
                                hint=_HINT)
        if kind == "cpu":
            return cls("cpu")
        optional = {key: None if data.get(key) is None else
                    checked(data[key], "version", f"accelerator.{key}")
                    for key in ("cudnn", "nccl", "baseCuda")}
        return cls(kind, checked(data["cuda"], "version", "accelerator.cuda"),
                   None if data.get("minDriver") is None
                   else checked(data["minDriver"], "version", "accelerator.minDriver"),
                   optional["cudnn"], optional["nccl"],
                   tuple(checked(e, "text", "accelerator.evidence") for e in data["evidence"]),
                   optional["baseCuda"])


@dataclass(frozen=True)
class Lock:
    inputs_digest: str
    inputs: Inputs
    target: LockTarget
    base: BaseImage
    resolver: Mapping[str, str]
    indexes: tuple[Mapping[str, Any], ...]  # kind and url; a named one: name and packages
    packages: tuple[Package, ...]
    generator: Mapping[str, str]
    image: ImageRecord | None = None
    sbom: SbomRecord | None = None
    accelerator: Accelerator | None = None  # None in locks written before it was recorded

    def to_json(self) -> dict[str, Any]:
        extra = {"image": self.image.to_json()} if self.image else {}
        if self.sbom:
            extra["sbom"] = self.sbom.to_json()
        if self.accelerator:
            extra["accelerator"] = self.accelerator.to_json()
        return {
            **extra,
            "lockVersion": LOCK_VERSION,
            "generator": dict(self.generator),
            "inputsDigest": self.inputs_digest,
            "inputs": self.inputs.to_json(),
            "target": self.target.to_json(),
            "base": self.base.to_json(),
            "resolver": dict(self.resolver),
            "indexes": [dict(i) for i in self.indexes],
            "packages": [p.to_json() for p in sorted(self.packages, key=lambda p: p.name)],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Lock:
        """The lock of a document the schema accepted; anything it should not have
        accepted (a cache stamp skips the schema) is a :class:`LockFileError`."""
        try:
            return cls._from_json(data)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise LockFileError(
                f"the lock is not the shape its schema gives ({type(exc).__name__}: "
                f"{str(exc)[:80]})", hint=_HINT) from None

    @classmethod
    def _from_json(cls, data: Mapping[str, Any]) -> Lock:
        return cls(
            inputs_digest=checked(data["inputsDigest"], "digest", "inputsDigest"),
            inputs=Inputs.from_json(data["inputs"]),
            target=LockTarget.from_json(data["target"]),
            base=BaseImage.from_json(data["base"]),
            resolver={"name": checked(data["resolver"]["name"], "token", "resolver.name"),
                      "version": checked(data["resolver"]["version"], "token",
                                         "resolver.version")},
            indexes=tuple(_index(x, f"indexes[{i}]") for i, x in enumerate(data["indexes"])),
            packages=tuple(Package.from_json(p, f"packages[{i}]")
                           for i, p in enumerate(data["packages"])),
            generator={"name": checked(data["generator"]["name"], "token", "generator.name"),
                       "version": checked(data["generator"]["version"], "token",
                                          "generator.version")},
            image=ImageRecord.from_json(data["image"]) if data.get("image") else None,
            sbom=SbomRecord.from_json(data["sbom"]) if data.get("sbom") else None,
            accelerator=Accelerator.from_json(data["accelerator"])
            if data.get("accelerator") else None,
        )

    def package(self, name: str) -> Package | None:
        return next((p for p in self.packages if p.name == name), None)


def _file(item: InputFile) -> dict[str, str]:
    return {"path": item.path, "sha256": item.sha256}


def _input_file(data: Mapping[str, Any], where: str) -> InputFile:
    return InputFile(checked(data["path"], "text", f"{where}.path"),
                     checked(data["sha256"], "sha256", f"{where}.sha256"))


def _index(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    index: dict[str, Any] = {"kind": checked(data["kind"], "token", f"{where}.kind"),
                             "url": checked(data["url"], "text", f"{where}.url")}
    if "name" in data:  # a named index, and the packages pinned to it
        index["name"] = checked(data["name"], "name", f"{where}.name")
        index["packages"] = [checked(n, "name", f"{where}.packages[{i}]")
                             for i, n in enumerate(data.get("packages", ()))]
    return index
