"""Reading and writing the lock: validated against its schema both ways, written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reprolock import __version__
from reprolock._internal.files import atomic_write_text
from reprolock._internal.jsonio import parse_json, read_bounded
from reprolock.errors import LockFileError
from reprolock.lock.model import LOCK_VERSION, Lock
from reprolock.schemas import schema_dir, validate


def render(lock: Lock) -> str:
    """Sorted keys, two spaces, final newline: the same lock gives the same bytes."""
    return json.dumps(lock.to_json(), indent=2, sort_keys=True) + "\n"


def write_lock(path: Path, lock: Lock, *, cache_dir: Path | None = None) -> str:
    text = render(lock)
    validate(json.loads(text), "lock", source=path.name, error=LockFileError,
             hint="this is a bug in reprolock; please report it", cache_dir=cache_dir)
    atomic_write_text(path, text)
    return text


def read_lock(path: Path, *, cache_dir: Path | None = None) -> Lock:
    return read_lock_bytes(path, cache_dir=cache_dir)[0]


def read_lock_bytes(path: Path, *, cache_dir: Path | None = None) -> tuple[Lock, bytes]:
    """The lock and the very bytes it was parsed from, read once: what an image embeds
    and labels (their sha256) must be the lock that was checked, not a second read of a
    file that may have changed in between."""
    if not path.exists():
        raise LockFileError(f"no lock file at {path}", hint="run 'reprolock lock' to create it")
    raw = read_bounded(path, error=LockFileError, hint="run 'reprolock lock' to rewrite it")
    return _lock(path, raw, cache_dir), raw


def _lock(path: Path, raw: bytes, cache_dir: Path | None) -> Lock:
    data = _parse(path, raw)
    _check_version(path, data)
    validate(data, "lock", source=path.name, error=LockFileError, cache_dir=cache_dir,
             hint="do not edit the lock by hand; run 'reprolock lock' to rewrite it")
    try:
        return Lock.from_json(data)
    except LockFileError as exc:  # the model names the field; the file is named here
        raise LockFileError(f"{path.name}: {exc.message}", hint=exc.hint) from None


def _parse(path: Path, raw: bytes) -> dict[str, Any]:
    data: dict[str, Any] = parse_json(
        raw, source=path.name, error=LockFileError,
        hint="undo the hand edit (git checkout the lock) or run 'reprolock lock' to rewrite it")
    return data


def _check_version(path: Path, data: dict[str, Any]) -> None:
    version = data.get("lockVersion")
    if isinstance(version, int) and not isinstance(version, bool) and version > LOCK_VERSION:
        generator = data.get("generator")
        writer = generator.get("version") if isinstance(generator, dict) else None
        if not isinstance(writer, str) or not writer.isprintable() or len(writer) > 40:
            writer = "a newer version"
        raise LockFileError(
            f"{path.name} has lockVersion {version}; reprolock {__version__} reads "
            f"lockVersion {LOCK_VERSION}",
            hint=f"upgrade reprolock (the lock was written by reprolock {writer})",
        )


__all__ = ["read_lock", "render", "schema_dir", "write_lock"]
