"""Write an OCI image layout directory (oci-layout, index.json, blobs/sha256/...)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reprolock._internal.files import atomic_write_bytes
from reprolock.image.interface import OCI_CONFIG, OCI_MANIFEST, REF_NAME
from reprolock.oci.layer import LayerBlob, write_layer


def canonical_bytes(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


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
    atomic_write_bytes(layout / "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    index_path = layout / "index.json"
    index: dict[str, Any] = json.loads(index_path.read_text()) if index_path.exists() else {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": []}
    kept = [m for m in index["manifests"] if m.get("annotations", {}).get(REF_NAME) != tag]
    kept.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": size,
                 "annotations": {REF_NAME: tag}})
    index["manifests"] = sorted(
        kept, key=lambda m: (m.get("annotations", {}).get(REF_NAME, ""), m.get("digest", "")))
    atomic_write_bytes(index_path, json.dumps(index, indent=2, sort_keys=True).encode() + b"\n")
    return digest
