"""Digests of installed RECORD files: what the lock (``image.records``) and the image
(``/.reprolock/runtime.json``) keep so the runtime check sees a patched RECORD."""

from __future__ import annotations

import re
from pathlib import Path

from reprolock._internal.files import sha256_file


def canonical_name(name: str) -> str:
    """PEP 503 normalization, as the runtime checker does it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def record_digests(site_packages: Path) -> dict[str, str]:
    """Normalized distribution name → ``sha256:<hex>`` of its ``*.dist-info/RECORD``."""
    found = {}
    for record in sorted(site_packages.glob("*.dist-info/RECORD")):
        name = record.parent.name.removesuffix(".dist-info").rsplit("-", 1)[0]
        found[canonical_name(name)] = "sha256:" + sha256_file(record)
    return found
