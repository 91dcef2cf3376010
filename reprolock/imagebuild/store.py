"""The build cache: layers keyed by their inputs, over an OCI blob store
(:mod:`reprolock.oci.blobstore`).

Every entry is checked by digest when read; a corrupt or partial entry is discarded and
rebuilt, never used. Temporary files of processes that are gone are swept when a build
opens the cache (see :mod:`reprolock.oci.blobstore`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from reprolock._internal.files import atomic_write_text
from reprolock.oci.blobstore import (
    OWNER_PREFIX,
    STALE_SECONDS,
    TEMP_PREFIX,
    BlobStore,
    disk_space,
    sweep_stale,
    sweep_temps,
    temp_file,
    temporary,
)
from reprolock.oci.model import LayerBlob

# re-exported for the workflows that still import them from here
__all__ = ["OWNER_PREFIX", "STALE_SECONDS", "TEMP_PREFIX", "BlobStore", "LayerCache",
           "cache_fix", "cache_key", "disk_space", "open_cache", "sweep_stale",
           "sweep_temps", "temp_file", "temporary"]


def cache_fix(cache_dir: Path) -> str:
    return (f"free space on the disk that holds {cache_dir}, or point REPROLOCK_CACHE_DIR "
            "at a directory on a disk with room (the cache can be deleted at any time)")


def open_cache(cache_dir: Path) -> BlobStore:
    """The cache's blob store, after sweeping what killed builds left in it."""
    blobs = BlobStore(cache_dir, stamps=cache_dir / "blob-stamps")
    artifacts = cache_dir / "artifacts" / "sha256"
    if artifacts.is_dir():
        sweep_temps(artifacts)
    # layer index entries (and downloads of older versions) are written without an
    # owner: theirs are swept by age
    sweep_stale(artifacts, prefix=".dl-")
    sweep_stale(cache_dir / "layers", prefix=".")
    return blobs


class LayerCache:
    """Layer digests keyed by what went into the layer (artifact hashes, settings)."""

    def __init__(self, cache_dir: Path, blobs: BlobStore) -> None:
        self.root = cache_dir / "layers"
        self.blobs = blobs

    def get(self, key: str) -> tuple[LayerBlob, dict[str, str]] | None:
        """The layer and the RECORD digests of what it installs, or None."""
        path = self.root / f"{key}.json"
        try:
            entry = json.loads(path.read_text())
            blob = LayerBlob(**entry["blob"])
            records = {str(k): str(v) for k, v in entry["records"].items()}
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            path.unlink(missing_ok=True)
            return None
        if not self.blobs.valid(blob.digest):
            path.unlink(missing_ok=True)
            return None
        return blob, records

    def put(self, key: str, blob: LayerBlob, records: dict[str, str] | None = None) -> None:
        atomic_write_text(self.root / f"{key}.json", json.dumps(
            {"blob": asdict(blob), "records": records or {}}, sort_keys=True))


def cache_key(**parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
