"""Writing OCI image layouts from directory trees, for base images made in tests and by
fixtures/make_base.py. Not shipped: reprolock's builder writes layers from entry lists
(:mod:`reprolock.oci.tarball`) into its blob store, and outputs copy them from there.

A thin wrapper over :mod:`reprolock.oci.tarball`, which holds the one tar writer and its
rules (sorted entries with parents first, one integer mtime, uid/gid 0 and empty names,
modes 0755/0644, hard links as regular files). The gzip stream here is Python's
``gzip`` module with no name and no time, as these base layers have always been written:
changing it would change every base image's blob digests.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reprolock._internal.files import atomic_write_bytes, atomic_writer
from reprolock.oci.canonical import canonical_json
from reprolock.oci.compress import Sink
from reprolock.oci.media import (
    LAYOUT_FILE,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    REF_NAME,
)
from reprolock.oci.model import LayerBlob
from reprolock.oci.tarball import DEFAULT_MTIME, Entry, HashingWriter, entries_from_dir
from reprolock.oci.tarball import write_tar as write_entries

__all__ = ["DEFAULT_MTIME", "LayerBlob", "add_layer_from_dir", "canonical_bytes", "put_blob",
           "write_image", "write_layer", "write_tar"]

#: The one canonical JSON (reprolock.oci.canonical), under the name tests know it by.
canonical_bytes = canonical_json


def write_tar(root: Path, out: Sink, *, prefix: str = "", mtime: int = DEFAULT_MTIME) -> None:
    """Every file, directory and symlink under ``root``, named ``prefix/relative``; the
    directories of ``prefix`` are entries too."""
    parts = [p for p in prefix.split("/") if p]
    dirs = [Entry("/".join(parts[: i + 1]), "dir") for i in range(len(parts))]
    write_entries([*dirs, *entries_from_dir(root, "/".join(parts))], out, mtime=mtime)


def write_layer(root: Path, dest: Path, *, prefix: str = "", mtime: int = DEFAULT_MTIME,
                level: int = 6) -> LayerBlob:
    """Write ``root`` as a gzip layer to ``dest`` (atomically)."""
    if not root.is_dir():  # os.walk would quietly give an empty layer
        raise NotADirectoryError(f"layer root {root} is not a directory")
    with atomic_writer(dest) as handle:
        blob = HashingWriter(handle)
        with gzip.GzipFile(filename="", mode="wb", fileobj=blob,
                           compresslevel=level, mtime=0) as gz:
            tar = HashingWriter(gz)
            write_tar(root, tar, prefix=prefix, mtime=mtime)
    return LayerBlob("sha256:" + blob.sha.hexdigest(), "sha256:" + tar.sha.hexdigest(),
                     blob.size, OCI_LAYER_GZIP)


def put_blob(layout: Path, data: bytes) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    path = layout / "blobs" / "sha256" / digest
    if not path.exists():
        atomic_write_bytes(path, data)
    return f"sha256:{digest}", len(data)


def add_layer_from_dir(layout: Path, root: Path, **kwargs: Any) -> LayerBlob:
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=blobs, prefix=".layer-")
    os.close(fd)
    try:
        layer = write_layer(root, Path(tmp), **kwargs)
        os.replace(tmp, blobs / layer.digest.split(":")[1])
    finally:  # a full disk or a bad root leaves no partial layer behind
        Path(tmp).unlink(missing_ok=True)
    return layer


def write_image(layout: Path, *, config: Mapping[str, Any], layers: Sequence[LayerBlob],
                tag: str) -> str:
    """Add config and manifest blobs and name the image ``tag`` in index.json."""
    config = {**config, "rootfs": {"type": "layers", "diff_ids": [x.diff_id for x in layers]}}
    config_digest, config_size = put_blob(layout, canonical_bytes(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": x.media_type, "digest": x.digest, "size": x.size} for x in layers],
    }
    digest, size = put_blob(layout, canonical_bytes(manifest))
    atomic_write_bytes(layout / "oci-layout", LAYOUT_FILE)
    index_path = layout / "index.json"
    index: dict[str, Any] = json.loads(index_path.read_text()) if index_path.exists() else {
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    kept = [m for m in index["manifests"] if m.get("annotations", {}).get(REF_NAME) != tag]
    kept.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": size,
                 "annotations": {REF_NAME: tag}})
    index["manifests"] = sorted(
        kept, key=lambda m: (m.get("annotations", {}).get(REF_NAME, ""), m.get("digest", "")))
    atomic_write_bytes(index_path, json.dumps(index, indent=2, sort_keys=True).encode() + b"\n")
    return digest
