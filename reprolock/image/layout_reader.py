"""OCI image layouts, as a directory (``oci-layout:``) or a tar (``oci-archive:``), and
``docker save`` archives (``docker-archive:``)."""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat
import tarfile
from pathlib import Path
from typing import IO, Any, Protocol

from reprolock._internal.jsonio import parse_json
from reprolock._internal.tarsafe import open_tar
from reprolock.errors import ImageSourceError
from reprolock.image.interface import (
    MAX_DOCUMENT,
    Descriptor,
    ImageSource,
    ResolvedImage,
    check_config,
    check_digest,
    index_entries,
    listed,
    load_json,
    parse_manifest,
    select_platform,
    want,
)
from reprolock.oci.media import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_LAYER_TAR,
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_CONFIG,
    OCI_LAYER_ZSTD,
    REF_NAME,
)
from reprolock.target import Platform

_PATH_HINT = ("check the path: a base in reprolock.toml is relative to the project root, "
              "an --image path to the current directory")


class _Files(Protocol):
    where: str

    def read(self, name: str) -> bytes: ...

    def open(self, name: str) -> IO[bytes]: ...

    def exists(self, name: str) -> bool: ...


class DirFiles:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.where = str(root)
        if not root.is_dir():
            raise ImageSourceError(f"OCI layout directory {root} does not exist",
                                   hint=_PATH_HINT)

    def read(self, name: str) -> bytes:
        with self.open(name) as handle:
            return _bounded(handle, f"{self.root}/{name}")

    def open(self, name: str) -> IO[bytes]:
        """A regular file of the layout: a FIFO would block the open for ever, and a
        device such as /dev/zero would be read without end."""
        try:
            # O_NONBLOCK: opening a FIFO returns at once, to be refused below
            fd = os.open(self.root / name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise ImageSourceError(f"{self.root}: cannot read {name}: {exc.strerror}") from exc
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ImageSourceError(f"{self.root}: {name} is not a regular file (a FIFO, "
                                   "device or directory, perhaps behind a symbolic link)",
                                   hint="an OCI layout holds its blobs as files: export or "
                                   "copy the image again")
        return os.fdopen(fd, "rb")

    def exists(self, name: str) -> bool:
        return (self.root / name).is_file()


def _members_by_name(path: Path, members: list[tarfile.TarInfo]) -> dict[str, tarfile.TarInfo]:
    """Members by the name 'docker load' gives them (``/manifest.json`` and
    ``./manifest.json`` are one file to it, the last one winning): a name that another
    member already has, or that leaves the archive, is refused, not shadowed."""
    found: dict[str, tarfile.TarInfo] = {}
    for member in members:
        name = posixpath.normpath(member.name.lstrip("/")) if member.name.strip("/") else "."
        if name == ".." or name.startswith("../"):
            raise ImageSourceError(f"{path}: member {member.name!r} leaves the archive",
                                   hint="this is not an archive reprolock or docker writes")
        if name in found and not (member.isdir() and found[name].isdir()):
            raise ImageSourceError(
                f"{path}: {member.name!r} and {found[name].name!r} are one file to "
                "'docker load' (the last one wins), so what is checked here could differ "
                "from what is loaded", hint="this is not an archive reprolock or docker writes")
        found[name] = member
    return found


def _ends_clean(path: Path, end: int) -> None:
    """Python's tarfile stops quietly at a header it cannot read, where Go's reader (in
    docker load) reads on: from the end tarfile saw, only NULs may follow."""
    with open(path, "rb") as handle:
        handle.seek(end)
        while chunk := handle.read(1 << 20):
            if chunk.strip(b"\0"):
                raise ImageSourceError(
                    f"{path}: the archive goes on past what Python's tarfile reads as its end "
                    "(an unreadable header, or entries after the end marker), which docker "
                    "load would read", hint="this is not an archive reprolock or docker writes")


class TarFiles:
    """Random access to members of an uncompressed tar (what image archives are)."""

    def __init__(self, path: Path) -> None:
        self.where = str(path)
        try:
            # held open for open_blob until close(); closed here if the index cannot be read
            self._tar = open_tar(str(path), "r:")
        except (OSError, tarfile.TarError) as exc:
            raise _unreadable(path, exc) from exc
        try:
            self._members = _members_by_name(path, self._tar.getmembers())
            _ends_clean(path, self._tar.offset)
        except (OSError, tarfile.TarError) as exc:
            self._tar.close()
            raise _unreadable(path, exc) from exc
        except ImageSourceError:
            self._tar.close()
            raise

    def read(self, name: str) -> bytes:
        with self.open(name) as handle:
            return _bounded(handle, f"{self.where}: {name}")

    def open(self, name: str) -> IO[bytes]:
        member = self._members.get(posixpath.normpath(name.lstrip("/")))
        handle = None
        if member is not None and (member.isfile() or member.issym() or member.islnk()):
            try:  # docker save links a layer shared by two images to its first copy
                handle = self._tar.extractfile(member)
            except (KeyError, tarfile.TarError):
                handle = None
        if handle is None:
            raise ImageSourceError(f"{self.where}: archive has no file {name}")
        return handle

    def size(self, name: str) -> int:
        with self.open(name) as handle:
            return handle.seek(0, 2)

    def exists(self, name: str) -> bool:
        return posixpath.normpath(name.lstrip("/")) in self._members

    def close(self) -> None:
        self._tar.close()


def _unreadable(path: Path, exc: Exception) -> ImageSourceError:
    return ImageSourceError(f"cannot read image archive {path}: {exc}",
                            hint="pass an uncompressed tar written by docker save or an OCI tool")


def _bounded(handle: IO[bytes], where: str) -> bytes:
    """A manifest, index or config: never more than MAX_DOCUMENT bytes in memory (a
    descriptor may name a layer of gigabytes as a manifest)."""
    data = handle.read(MAX_DOCUMENT + 1)
    if len(data) > MAX_DOCUMENT:
        raise ImageSourceError(f"{where} is larger than {MAX_DOCUMENT} bytes: not an image "
                               "manifest, index or config",
                               hint="rebuild or re-export the image")
    return data


_BLOB_NAME = re.compile(r"^blobs/sha256/([0-9a-f]{64})$")
#: An untagged layout of more entries than this is not looked into for its one image.
_MAX_UNTAGGED = 64


def blob_path(digest: str) -> str:
    """The path of a blob in a layout; the digest is checked first: it may be crafted."""
    return "blobs/sha256/" + check_digest(digest, where="blob").removeprefix("sha256:")


def read_verified(files: _Files, digest: str, *, what: str) -> bytes:
    data = files.read(blob_path(digest))
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise ImageSourceError(
            f"{files.where}: {what} {digest} is corrupt (its content hashes to {actual})",
            hint="rebuild or re-export the image; do not edit blobs by hand",
        )
    return data


class OciLayoutSource(ImageSource):
    def __init__(self, reference: str, files: _Files, *, tag: str | None = None,
                 digest: str | None = None) -> None:
        super().__init__(reference)
        self.files = files
        self.tag = tag
        self.digest = digest

    @property
    def pinned(self) -> bool:
        return self.digest is not None

    def resolve(self, platform: Platform) -> ResolvedImage:
        if not self.files.exists("index.json"):
            raise ImageSourceError(f"{self.files.where} is not an OCI image layout (no index.json)",
                                   hint="point base at a directory written by an OCI tool")
        where = f"{self.files.where}/index.json"
        desc = self._pick(index_entries(load_json(self.files.read("index.json"), what=where),
                                        where=where))
        index_digest = None
        if desc.media_type in INDEX_TYPES:
            index_digest = desc.digest
            nested = load_json(read_verified(self.files, desc.digest, what="image index"),
                               what=f"image index {desc.digest}")
            desc = select_platform(nested, platform, where=self.reference)
        return self._image(desc, index_digest)

    def _pick(self, entries: list[Descriptor]) -> Descriptor:
        if self.digest:
            # several tags may name one image: by digest it is that one image
            chosen = [d for d in entries if d.digest == self.digest][:1]
        elif self.tag:
            chosen = [d for d in entries if d.annotations.get(REF_NAME) == self.tag]
        else:
            chosen = self._images(entries)
        if len(chosen) == 1:
            return chosen[0]
        names = sorted({d.annotations.get(REF_NAME, d.digest) for d in entries})
        what = self.digest or self.tag
        problem = (f"has no image {what!r}" if what else
                   f"holds {len(chosen)} images" if chosen else "holds no image")
        form = self._form()
        raise ImageSourceError(
            f"{self.files.where} {problem} (it has: {listed(names)})",
            hint=f"name one as {form}:TAG or {form}@sha256:...",
        )

    def _form(self) -> str:
        """How the user wrote this source (``oci:DIR``, ``oci-layout:DIR``,
        ``oci-archive:FILE``), less any tag or digest: what the hint tells them to add to."""
        scheme, sep, rest = self.reference.partition(":")
        if not sep or scheme not in ("oci", "oci-layout", "oci-archive"):
            scheme = "oci-archive" if isinstance(self.files, TarFiles) else "oci-layout"
            rest = self.files.where
        if self.digest:
            rest = rest.removesuffix(f"@{self.digest}")
        elif self.tag:
            rest = rest.removesuffix(f":{self.tag}")
        return f"{scheme}:{rest}"

    def _images(self, entries: list[Descriptor]) -> list[Descriptor]:
        """The entries that are images. An OCI 1.1 artifact that refers to one (the SBOM
        and provenance 'reprolock build' attaches) is not: a layout of one image and its
        referrers names one image. Each is read and checked against its digest."""
        if len(entries) <= 1 or len(entries) > _MAX_UNTAGGED:
            return entries
        return [d for d in entries if not self._is_artifact(d)]

    def _is_artifact(self, desc: Descriptor) -> bool:
        if desc.media_type not in (*MANIFEST_TYPES, *INDEX_TYPES):
            return True
        doc = load_json(read_verified(self.files, desc.digest, what="manifest"),
                        what=f"{self.files.where}: manifest {desc.digest}")
        if doc.get("artifactType") or "subject" in doc:
            return True
        if desc.media_type in INDEX_TYPES:
            return False
        config = doc.get("config")
        return not isinstance(config, dict) or config.get("mediaType") not in (OCI_CONFIG,
                                                                                DOCKER_CONFIG)

    def _image(self, desc: Descriptor, index_digest: str | None) -> ResolvedImage:
        where = f"{self.files.where}: manifest {desc.digest}"
        manifest = load_json(read_verified(self.files, desc.digest, what="manifest"),
                             what=where)
        config_desc, layers = parse_manifest(manifest, where=where)
        where = f"{self.files.where}: image config {config_desc.digest}"
        config = load_json(read_verified(self.files, config_desc.digest, what="image config"),
                           what=where)
        return ResolvedImage(
            reference=self.reference,
            index_digest=index_digest,
            manifest_digest=desc.digest,
            config_digest=config_desc.digest,
            config=check_config(config, where=where, layers=len(layers)),
            layers=layers,
        )

    def open_blob(self, digest: str) -> IO[bytes]:
        return self.files.open(blob_path(digest))

    def close(self) -> None:
        if isinstance(self.files, TarFiles):
            self.files.close()


class DockerArchiveSource(ImageSource):
    """A ``docker save`` tar. Old ones hold no manifest: the config digest is the identity."""

    def __init__(self, reference: str, files: TarFiles, *, tag: str | None = None) -> None:
        super().__init__(reference)
        self.files = files
        self.tag = tag
        self._layer_paths: dict[str, str] = {}

    @property
    def pinned(self) -> bool:
        return False

    def resolve(self, platform: Platform) -> ResolvedImage:
        entries = _json_list(self.files.read("manifest.json"), self.files.where)
        entry = self._pick(entries)
        where = f"{self.files.where}: manifest.json"
        config_path = want(entry.get("Config"), str, f"{where}: Config")
        layer_paths = want(entry.get("Layers"), list, f"{where}: Layers")
        for i, path in enumerate(layer_paths):
            want(path, str, f"{where}: Layers[{i}]")
        config_bytes = self.files.read(config_path)
        what = f"{self.files.where}: {config_path}"
        config = check_config(load_json(config_bytes, what=what), where=what,
                              layers=len(layer_paths))
        diff_ids = config["rootfs"]["diff_ids"]
        layers = []
        for diff_id, path in zip(diff_ids, layer_paths, strict=True):
            # an old archive holds NAME/layer.tar, the tar itself: its digest is the
            # diff_id; a new one (Docker 25) holds blobs/sha256/HEX, named by its digest
            # (and compressed, from containerd's image store)
            named = _BLOB_NAME.match(path.removeprefix("./"))
            digest = f"sha256:{named.group(1)}" if named else diff_id
            self._layer_paths[digest] = path
            layers.append(Descriptor(self._media_type(path), digest, self.files.size(path)))
        return ResolvedImage(
            reference=self.reference,
            index_digest=None,
            manifest_digest=None,
            config_digest="sha256:" + hashlib.sha256(config_bytes).hexdigest(),
            config=config,
            layers=tuple(layers),
        )

    def _media_type(self, path: str) -> str:
        with self.files.open(path) as handle:
            head = handle.read(4)
        if head.startswith(b"\x1f\x8b"):
            return DOCKER_LAYER_GZIP
        if head == b"\x28\xb5\x2f\xfd":
            return OCI_LAYER_ZSTD
        return DOCKER_LAYER_TAR

    def _pick(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        if self.tag:
            wanted = _normal_tag(self.tag)
            for entry in entries:
                if wanted in {_normal_tag(t) for t in entry.get("RepoTags") or []}:
                    return entry
        elif len(entries) == 1:
            return entries[0]
        tags = sorted(t for e in entries for t in (e.get("RepoTags") or []))
        raise ImageSourceError(
            f"{self.files.where}: cannot choose an image (tags: {', '.join(tags) or 'none'})",
            hint="name one as docker-archive:FILE:NAME:TAG",
        )

    def open_blob(self, digest: str) -> IO[bytes]:
        path = self._layer_paths.get(digest)
        if path is None:
            return self.files.open(blob_path(digest))
        return self.files.open(path)

    def close(self) -> None:
        self.files.close()


def _normal_tag(text: str) -> str:
    """``python:3``, ``docker.io/library/python:3`` and the like name one image."""
    from reprolock.image.registry import parse_registry_ref

    ref = parse_registry_ref(text)
    return str(ref) if ref else text


def _json_list(data: bytes, where: str) -> list[dict[str, Any]]:
    value = parse_json(data, source=f"{where}: manifest.json", error=ImageSourceError,
                       want_object=False)
    if not isinstance(value, list) or not value:
        raise ImageSourceError(f"{where}: manifest.json is not a list of images")
    for i, entry in enumerate(value):
        want(entry, dict, f"{where}: manifest.json[{i}]")
        for j, tag in enumerate(want(entry.get("RepoTags") or [], list,
                                     f"{where}: manifest.json[{i}].RepoTags")):
            want(tag, str, f"{where}: manifest.json[{i}].RepoTags[{j}]")
    return value


def open_archive(reference: str, path: Path, *, tag: str | None, docker: bool,
                 digest: str | None = None) -> ImageSource:
    """An archive that holds an OCI layout is read as one, whatever its scheme says."""
    if not path.is_file():
        raise ImageSourceError(f"image archive {path} does not exist",
                               hint=_PATH_HINT)
    files = TarFiles(path)
    if files.exists("index.json") and (not docker or not tag):
        return OciLayoutSource(reference, files, tag=tag, digest=digest)
    if files.exists("manifest.json"):
        return DockerArchiveSource(reference, files, tag=tag)
    files.close()
    raise ImageSourceError(f"{path} is neither an OCI archive nor a docker save archive",
                           hint="it needs index.json or manifest.json at its root")
