"""Files the build puts into the code layer, under ``/.reprolock/``, so that
``reprolock verify --runtime`` can check a running container against its lock.

The builder calls :func:`image_files` for every image with code; what it returns goes
into the code layer (so the environment image, and the lock's digests of it, never
depend on it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from reprolock.inspection.codeset import CodeSet

RUNTIME_DIR = ".reprolock"  # at the image's root


@dataclass(frozen=True)
class EmbeddedFile:
    path: str  # inside the image, no leading slash
    data: bytes
    executable: bool = False


def image_files(*, lock_bytes: bytes, code: CodeSet, workdir: str, prefix: str,
                records: Mapping[str, str]) -> list[EmbeddedFile]:
    """``lock_bytes``: the lock file as read; ``records``: distribution name to the
    ``sha256:`` digest of its RECORD as installed under ``prefix``."""
    return []
