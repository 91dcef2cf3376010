"""``oci:DIR[:TAG]``: an OCI image layout directory."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reprolock._internal.files import atomic_write_bytes, sha256_file
from reprolock._internal.jsonio import read_json
from reprolock.errors import ConfigError
from reprolock.oci.blobstore import BlobStore, disk_space, sweep_temps, temporary
from reprolock.oci.media import LAYOUT_FILE, OCI_INDEX, OCI_MANIFEST, REF_NAME
from reprolock.oci.model import Image
from reprolock.output.interface import Output, Progress, Written
from reprolock.output.referrers import Referrer


def image_blobs(image: Image) -> list[str]:
    return [image.config_digest, *(x.blob.digest for x in image.layers), image.manifest_digest]


def copy_blob(blobs: BlobStore, digest: str, dest_root: Path) -> bool:
    """Hard link where possible (same file system), else copy; atomically either way.
    True if the blob was not there before."""
    dest = dest_root / "blobs" / "sha256" / digest.removeprefix("sha256:")
    source = blobs.path(digest)
    if _already_there(source, dest, digest):
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.unlink(missing_ok=True)  # a file of other bytes under this name is worth nothing
    with contextlib.suppress(OSError):  # another file system, or no hard links there
        os.link(source, dest)  # a link is the whole blob or nothing
        return True
    with temporary(dest.parent) as tmp:  # a failed copy leaves no partial file
        shutil.copyfile(source, tmp)
        os.replace(tmp, dest)
    return True


def _already_there(source: Path, dest: Path, digest: str) -> bool:
    """The layout already holds this blob: the cache's own file (a hard link), or a file
    that hashes to its digest. A file of the right size is not enough."""
    try:
        if os.path.samefile(source, dest):
            return True
        if not dest.is_file() or dest.stat().st_size != source.stat().st_size:
            return False
    except FileNotFoundError:
        return False
    return "sha256:" + sha256_file(dest) == digest


def index_entry(image: Image, tag: str) -> dict[str, object]:
    return {"mediaType": OCI_MANIFEST, "digest": image.manifest_digest,
            "size": image.manifest_size, "annotations": {REF_NAME: tag}}


def _index_order(entry: dict[str, Any]) -> tuple[str, str]:
    name = _ref_name(entry)
    return str("~" if name is None else name), str(entry.get("digest"))


def _ref_name(entry: dict[str, Any]) -> object:
    annotations = entry.get("annotations")
    return annotations.get(REF_NAME) if isinstance(annotations, dict) else None


def _existing_index(path: Path) -> dict[str, Any]:
    hint = f"remove {path.parent} or write the image elsewhere (--output oci:DIR)"
    index: dict[str, Any] = read_json(path, error=ConfigError, hint=hint)
    manifests = index.get("manifests", [])
    if not isinstance(manifests, list) or not all(isinstance(m, dict) for m in manifests):
        raise ConfigError(f"{path} is not an OCI image index (manifests is not a list of "
                          "descriptors)", hint=hint)
    return index


class LayoutOutput(Output):
    def __init__(self, path: Path, tag: str | None, *, fix: str | None = None) -> None:
        self.path = path
        self.tag = tag
        self.fix = fix or (f"free space on the disk that holds {path}, or write the image "
                           "to another disk (--output oci:DIR)")

    def write(self, image: Image, blobs: BlobStore, *, tag: str | None,
              progress: Progress, referrers: Sequence[Referrer] = ()) -> Written:
        tag = self.tag or tag or self.default_tag
        made = not self.path.exists()
        added: list[Path] = []
        try:
            with disk_space(self.path, fix=self.fix):
                self._write(image, blobs, tag, referrers, added)
        except BaseException:
            # leave what was there before: no blob of ours, no directory we made
            for path in added:
                path.unlink(missing_ok=True)
            if made:
                shutil.rmtree(self.path, ignore_errors=True)
            raise
        progress(f"wrote OCI layout {self.path} (tag {tag})")
        return Written(f"oci:{self.path}:{tag}", image.manifest_digest)

    def _write(self, image: Image, blobs: BlobStore, tag: str, referrers: Sequence[Referrer],
               added: list[Path]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        blob_dir = self.path / "blobs" / "sha256"
        sweep_temps(blob_dir)  # what a killed build left here
        # blobs first: index.json never names a missing one
        for digest in [*image_blobs(image), *(b for r in referrers for b in r.blobs)]:
            if copy_blob(blobs, digest, self.path):
                added.append(blob_dir / digest.removeprefix("sha256:"))
        atomic_write_bytes(self.path / "oci-layout", LAYOUT_FILE)
        index_path = self.path / "index.json"
        index: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        if index_path.is_file():
            index = _existing_index(index_path)
        ours = {r.manifest_digest for r in referrers}
        kept = [m for m in index.get("manifests", [])
                if _ref_name(m) != tag and m.get("digest") not in ours]
        entries = [*kept, index_entry(image, tag), *(r.descriptor() for r in referrers)]
        index["manifests"] = sorted(entries, key=_index_order)
        atomic_write_bytes(index_path, json.dumps(index, indent=2, sort_keys=True).encode() + b"\n")
