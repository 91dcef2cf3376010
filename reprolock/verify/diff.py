"""Say what differs between what a lock records and what was built or found, in the
user's terms: packages and versions, the base digest, layer N."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

_PACKAGE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*) (\S+)$")
BASE_LAYER = "base image layer"


def packages_in(holds: Sequence[str]) -> dict[str, str]:
    """Package → version from layer descriptions ("numpy 1.26.4", "a 1.0, b 2.0")."""
    found = {}
    for text in holds:
        for part in text.split(", "):
            match = _PACKAGE.match(part.strip())
            if match and match.group(1) not in ("code", "base", "virtual"):
                found[match.group(1)] = match.group(2)
    return found


def package_changes(locked: Mapping[str, str], actual: Mapping[str, str]) -> list[str]:
    lines = []
    for name in sorted(set(locked) | set(actual)):
        want, have = locked.get(name), actual.get(name)
        if want is None:
            lines.append(f"package {name} {have} is not in the lock")
        elif have is None:
            lines.append(f"package {name} {want} is missing")
        elif want != have:
            lines.append(f"package {name} {want} → {have}")
    return lines


def layer_changes(locked: Sequence[Mapping[str, Any]], actual: Sequence[Mapping[str, Any]],
                  *, start: int = 0, blobs: bool = False) -> list[str]:
    """Per-layer differences of diff_ids (with ``blobs``, of blob digests too: a blob is
    the locked one, or the locked tar itself uncompressed), then what they mean for
    packages. Layers are numbered from ``start`` + 1: their place in the image."""
    lines = []
    for index in range(max(len(locked), len(actual))):
        want = locked[index] if index < len(locked) else None
        have = actual[index] if index < len(actual) else None
        number = start + index + 1
        if want is None and have is not None:
            lines.append(f"layer {number} ({have.get('holds', '?')}) is not in the lock")
        elif have is None and want is not None:
            lines.append(f"layer {number} ({want.get('holds', '?')}) is missing")
        elif want is not None and have is not None and want["diffId"] != have["diffId"]:
            lines.append(f"layer {number} ({want.get('holds', '?')}) differs: "
                         f"{_short(want['diffId'])} → {_short(have['diffId'])}")
        elif want is not None and have is not None and blobs and have.get("digest") not in (
                want.get("digest"), want["diffId"]):
            lines.append(f"layer {number} ({want.get('holds', '?')}) is another blob of "
                         f"the locked tar (compressed again?): {_short(str(want.get('digest')))}"
                         f" → {_short(str(have.get('digest')))}")
    lines += package_changes(packages_in([str(x.get("holds", "")) for x in locked]),
                             packages_in([str(x.get("holds", "")) for x in actual]))
    return lines


def _short(digest: str) -> str:
    return digest[:19] + "…"
