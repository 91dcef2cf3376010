"""Where reprolock keeps what it can recompute: probes, wheel file lists, validations."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    explicit = os.environ.get("REPROLOCK_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(xdg) / "reprolock"
