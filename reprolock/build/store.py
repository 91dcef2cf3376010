"""The build cache: content-addressed blobs and layers keyed by their inputs.

Every entry is checked by digest when read; a corrupt or partial entry is discarded and
rebuilt, never used. Writes go to a temporary file renamed into place, so an
interrupted build leaves no partial entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import IO

from reprolock._internal.files import atomic_write_text
from reprolock.oci.tarball import LayerBlob


class BlobStore:
    def __init__(self, cache_dir: Path) -> None:
        self.root = cache_dir / "blobs" / "sha256"
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        return self.root / digest.removeprefix("sha256:")

    def temp_path(self) -> Path:
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        os.close(fd)
        return Path(tmp)

    def valid(self, digest: str) -> bool:
        path = self.path(digest)
        if not path.is_file():
            return False
        with open(path, "rb") as handle:
            if "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest() == digest:
                return True
        path.unlink(missing_ok=True)
        return False

    def put_bytes(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if not self.path(digest).is_file():
            tmp = self.temp_path()
            tmp.write_bytes(data)
            os.replace(tmp, self.path(digest))
        return digest

    def adopt(self, tmp: Path, digest: str) -> None:
        os.replace(tmp, self.path(digest))

    def copy_in(self, stream: IO[bytes], digest: str) -> bool:
        """Store a stream under ``digest``; False (and nothing stored) if it hashes otherwise."""
        tmp = self.temp_path()
        sha = hashlib.sha256()
        try:
            with open(tmp, "wb") as out:
                while chunk := stream.read(1 << 20):
                    sha.update(chunk)
                    out.write(chunk)
            if "sha256:" + sha.hexdigest() != digest:
                return False
            os.replace(tmp, self.path(digest))
            return True
        finally:
            tmp.unlink(missing_ok=True)

    def read(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()


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
