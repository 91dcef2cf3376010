"""``oci:DIR[:TAG]``: an OCI image layout directory."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reprolock._internal.files import atomic_write_bytes
from reprolock.build.builder import Image
from reprolock.build.store import BlobStore
from reprolock.image.interface import OCI_INDEX, OCI_MANIFEST, REF_NAME
from reprolock.output.interface import Output, Progress, Written
from reprolock.output.referrers import Referrer

LAYOUT_FILE = b'{"imageLayoutVersion":"1.0.0"}'


def image_blobs(image: Image) -> list[str]:
    return [image.config_digest, *(x.blob.digest for x in image.layers), image.manifest_digest]


def copy_blob(blobs: BlobStore, digest: str, dest_root: Path) -> None:
    """Hard link where possible (same file system), else copy; atomically either way."""
    dest = dest_root / "blobs" / "sha256" / digest.removeprefix("sha256:")
    if dest.is_file() and dest.stat().st_size == blobs.path(digest).stat().st_size:
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    try:
        os.link(blobs.path(digest), tmp)
    except OSError:
        shutil.copyfile(blobs.path(digest), tmp)
    os.replace(tmp, dest)


def index_entry(image: Image, tag: str) -> dict[str, object]:
    return {"mediaType": OCI_MANIFEST, "digest": image.manifest_digest,
            "size": image.manifest_size, "annotations": {REF_NAME: tag}}


def _index_order(entry: dict[str, Any]) -> tuple[str, str]:
    return str(entry.get("annotations", {}).get(REF_NAME, "~")), str(entry.get("digest"))


class LayoutOutput(Output):
    def __init__(self, path: Path, tag: str | None) -> None:
        self.path = path
        self.tag = tag

    def write(self, image: Image, blobs: BlobStore, *, tag: str | None,
              progress: Progress, referrers: Sequence[Referrer] = ()) -> Written:
        tag = self.tag or tag or self.default_tag
        self.path.mkdir(parents=True, exist_ok=True)
        # blobs first: index.json never names a missing one
        for digest in [*image_blobs(image), *(b for r in referrers for b in r.blobs)]:
            copy_blob(blobs, digest, self.path)
        atomic_write_bytes(self.path / "oci-layout", LAYOUT_FILE)
        index_path = self.path / "index.json"
        index: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        if index_path.is_file():
            index = json.loads(index_path.read_text())
        ours = {r.manifest_digest for r in referrers}
        kept = [m for m in index.get("manifests", [])
                if m.get("annotations", {}).get(REF_NAME) != tag and m.get("digest") not in ours]
        entries = [*kept, index_entry(image, tag), *(r.descriptor() for r in referrers)]
        index["manifests"] = sorted(entries, key=_index_order)
        atomic_write_bytes(index_path, json.dumps(index, indent=2, sort_keys=True).encode() + b"\n")
        progress(f"wrote OCI layout {self.path} (tag {tag})")
        return Written(f"oci:{self.path}:{tag}", image.manifest_digest)
