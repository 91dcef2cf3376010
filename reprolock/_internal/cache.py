"""Where reprolock keeps what it can recompute: probes, wheel file lists, validations.

The cache root carries a ``CACHEDIR.TAG`` (https://bford.info/cachedir/): backup tools
skip it, and so does the code set when the cache lies inside a project (an
``XDG_CACHE_HOME`` there put 160 MB of cached wheels into the code listing).
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path

from reprolock._internal.files import atomic_write_bytes

CACHEDIR_TAG = "CACHEDIR.TAG"
CACHEDIR_SIGNATURE = b"Signature: 8a477f597d28d172789f06886806bc55"
_TAG_TEXT = CACHEDIR_SIGNATURE + (
    b"\n# This file is a cache directory tag created by reprolock.\n"
    b"# For information about cache directory tags, see https://bford.info/cachedir/\n")


def default_cache_dir() -> Path:
    explicit = os.environ.get("REPROLOCK_CACHE_DIR")
    if explicit:
        root = Path(explicit)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
        root = Path(xdg) / "reprolock"
    _tag(root)
    return root


@functools.cache
def _tag(root: Path) -> None:
    """Create the cache root with its tag, or tag one an older reprolock made; once.

    The tag is renamed into place whole, so no reader sees half of it; a read-only or
    missing disk only costs the tag (the cache itself reports such a disk when used)."""
    tag = root / CACHEDIR_TAG
    with contextlib.suppress(OSError):
        if not os.path.lexists(tag):
            atomic_write_bytes(tag, _TAG_TEXT)
