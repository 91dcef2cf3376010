"""What a wheel's zip directory may hold before installer reads it: the index serves the
wheel, so its bytes are the attacker's (the lock pins them, it does not vouch for them).

Each rule answers something found by an adversarial pass: a member named
``./x.data/purelib/x.py`` sent installer into an endless loop; a bzip2 member inflated
4 GiB in one call; a RECORD or a ``#!python`` script of gigabytes was read whole; a
``torch-9.9.9.dist-info`` installed by another wheel showed in the SBOM.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reprolock.errors import ArtifactError

MAX_RECORD = 64 << 20  # torch's RECORD is a few megabytes
MAX_METADATA = 16 << 20  # METADATA, WHEEL, entry_points.txt, licenses
MAX_PYTHON_SCRIPT = 16 << 20  # a #!python script is rewritten in memory
_HINT = "refusing to install it; report the wheel to its publisher"
_PYTHON_SHEBANG = b"#!python"


def check_members(wheel: Path, filename: str) -> dict[str, int]:
    """Refuse a wheel whose directory holds a name that escapes or repeats a path, a
    link, a compression other than deflate, metadata of another distribution or
    oversized metadata; each member's uncompressed size."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            infos = archive.infolist()
            for info in infos:
                _check(archive, info, filename)
    except zipfile.BadZipFile as exc:
        raise ArtifactError(f"{filename} is not a valid wheel (zip): {exc}") from exc
    owners = {i.filename.split("/", 1)[0] for i in infos
              if i.filename.split("/", 1)[0].endswith(".dist-info")}
    if len(owners) > 1:
        raise ArtifactError(f"{filename} holds {len(owners)} .dist-info directories "
                            f"({', '.join(sorted(owners)[:3])}); a wheel has one", hint=_HINT)
    return {i.filename: i.file_size for i in infos}


def _check(archive: zipfile.ZipFile, info: zipfile.ZipInfo, filename: str) -> None:
    name = info.filename
    parts = (name[:-1] if name.endswith("/") else name).split("/")
    if name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts):
        raise ArtifactError(f"{filename} holds a path that escapes its root or names a "
                            f"path twice: {name!r}", hint=_HINT)
    if (info.external_attr >> 16) & 0o170000 == 0o120000:
        raise ArtifactError(f"{filename} holds symbolic links ({name!r}), which wheels may "
                            "not contain", hint=_HINT)
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) \
            or info.flag_bits & 0x1:
        raise ArtifactError(f"{filename}: {name} is stored with zip method "
                            f"{info.compress_type}{' and encrypted' if info.flag_bits & 1 else ''}"
                            "; wheels use deflate", hint=_HINT)
    if len(parts) > 2 and parts[0].endswith(".data") and parts[1] in ("purelib", "platlib") \
            and parts[2].endswith(".dist-info"):
        raise ArtifactError(f"{filename} installs the metadata of another distribution "
                            f"({parts[2]}): tools and the SBOM would list it as installed",
                            hint=_HINT)
    _check_size(archive, info, filename, parts)


def _check_size(archive: zipfile.ZipFile, info: zipfile.ZipInfo, filename: str,
                parts: list[str]) -> None:
    most = None
    if parts[0].endswith(".dist-info"):
        most = MAX_RECORD if parts[-1] == "RECORD" else MAX_METADATA
    elif len(parts) > 2 and parts[0].endswith(".data") and parts[1] == "scripts" \
            and info.file_size > MAX_PYTHON_SCRIPT and _python_script(archive, info):
        most = MAX_PYTHON_SCRIPT
    if most is not None and info.file_size > most:
        raise ArtifactError(f"{filename}: {info.filename} is {info.file_size} bytes, more "
                            f"than the {most} such a file may have", hint=_HINT)


def _python_script(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    with archive.open(info) as handle:
        return handle.read(len(_PYTHON_SHEBANG)) == _PYTHON_SHEBANG


def check_python_scripts(wheel: Path, filename: str, data_dir: str,
                         hashes: Mapping[str, Any]) -> None:
    """Check each ``#!python`` script against RECORD: installer rewrites its first line
    in memory, so it never streams past the check the other members get."""
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            if not info.filename.startswith(f"{data_dir}/scripts/") or info.is_dir() \
                    or not _python_script(archive, info):
                continue
            expected = hashes.get(info.filename)
            if expected is None:
                raise ArtifactError(f"{filename}: {info.filename} has no hash in RECORD",
                                    hint=_HINT)
            actual = hashlib.new(expected.name, archive.read(info)).digest()
            if base64.urlsafe_b64encode(actual).decode().rstrip("=") != expected.value:
                raise ArtifactError(f"{filename}: {info.filename} does not match its RECORD "
                                    "hash", hint="the wheel was altered after it was built; "
                                    "do not use it")
