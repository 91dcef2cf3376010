"""The one JSON serialization of every document reprolock writes by digest.

Configs, manifests, indexes and signed statements are named by the sha256 of their bytes,
so the bytes must not depend on dict order or on the writer: sorted keys, no spaces,
UTF-8 as is. The builder writes the environment image's config with
:func:`canonical_json`, and ``verify --image`` and ``run`` recompute its digest with
:func:`json_digest`: one function on both sides, so the two cannot drift apart.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any


def canonical_json(doc: Mapping[str, Any] | Sequence[Any]) -> bytes:
    """``doc`` as canonical JSON bytes (sorted keys, no whitespace, UTF-8)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``: how OCI names a blob."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def json_digest(doc: Mapping[str, Any] | Sequence[Any]) -> str:
    """The digest of ``doc`` written as :func:`canonical_json`."""
    return sha256_digest(canonical_json(doc))
