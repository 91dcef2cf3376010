"""Hand-built, deterministic wheels and sdists for tests.

Everything here is produced with :mod:`zipfile` / :mod:`tarfile` directly so
that tests never need a build backend or network access, and so that building
the same distribution twice yields byte-identical files.
"""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import itertools
import tarfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import Version

__all__ = ["build_sdist", "build_wheel", "expand_tag", "record_hash"]

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
TAR_EPOCH = 315532800  # 1980-01-01T00:00:00Z
FILE_MODE = 0o644
GENERATOR = "reprolock-tests (1.0)"


def record_hash(data: bytes) -> str:
    """Return a RECORD-style ``sha256=<urlsafe-b64, unpadded>`` digest."""
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def escape_name(name: str) -> str:
    """Distribution name as used in wheel/sdist file names (PEP 427/625)."""
    return canonicalize_name(name).replace("-", "_")


def escape_version(version: str) -> str:
    """Normalized version string as used in file names."""
    return str(Version(version)).replace("-", "_")


def import_name_for(name: str) -> str:
    return name.replace("-", "_")


def expand_tag(tag: str) -> list[str]:
    """Expand a compressed tag set, preserving the order of components."""
    interpreters, abis, platforms = (part.split(".") for part in tag.split("-"))
    return ["-".join(t) for t in itertools.product(interpreters, abis, platforms)]


def _metadata(name: str, version: str, requires: Sequence[str], requires_python: str | None) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Requires-Dist: {req}" for req in requires]
    return "\n".join(lines) + "\n\n"


def _wheel_file(tag: str) -> str:
    purelib = "true" if tag == "py3-none-any" else "false"
    lines = ["Wheel-Version: 1.0", f"Generator: {GENERATOR}", f"Root-Is-Purelib: {purelib}"]
    lines += [f"Tag: {t}" for t in expand_tag(tag)]
    return "\n".join(lines) + "\n"


def _top_level(modules: Mapping[str, str]) -> str:
    names = {path.split("/", 1)[0].removesuffix(".py") for path in modules}
    return "".join(f"{n}\n" for n in sorted(names))


def _record(entries: Mapping[str, bytes], record_path: str) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for path, data in entries.items():
        writer.writerow([path, record_hash(data), len(data)])
    writer.writerow([record_path, "", ""])
    return buf.getvalue().encode("utf-8")


def _zip_info(path: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(path, date_time=ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, so external_attr permissions are honoured
    info.external_attr = (0o100000 | FILE_MODE) << 16
    return info


def _ordered(entries: Mapping[str, bytes], dist_info: str) -> dict[str, bytes]:
    """Sorted payload first, then sorted .dist-info files (RECORD is added last)."""
    prefix = f"{dist_info}/"
    payload = sorted(p for p in entries if not p.startswith(prefix))
    meta = sorted(p for p in entries if p.startswith(prefix))
    return {p: entries[p] for p in payload + meta}


def _write_zip(target: Path, entries: Mapping[str, bytes]) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path, data in entries.items():
            zf.writestr(_zip_info(path), data)
    target.write_bytes(buf.getvalue())


def build_wheel(
    dest_dir: Path,
    name: str,
    version: str,
    *,
    requires: Sequence[str] = (),
    modules: Mapping[str, str] | None = None,
    tag: str = "py3-none-any",
    extra_files: Mapping[str, bytes] | None = None,
    top_level_txt: bool = True,
    requires_python: str | None = None,
) -> Path:
    """Build a valid wheel in *dest_dir* and return its path."""
    if modules is None:
        modules = {f"{import_name_for(name)}/__init__.py": f'__version__ = "{version}"\n'}
    stem = f"{escape_name(name)}-{escape_version(version)}"
    dist_info = f"{stem}.dist-info"
    entries: dict[str, bytes] = {p: src.encode("utf-8") for p, src in modules.items()}
    entries.update(extra_files or {})
    entries[f"{dist_info}/METADATA"] = _metadata(name, version, requires, requires_python).encode()
    entries[f"{dist_info}/WHEEL"] = _wheel_file(tag).encode()
    if top_level_txt:
        entries[f"{dist_info}/top_level.txt"] = _top_level(modules).encode()
    entries = _ordered(entries, dist_info)
    record_path = f"{dist_info}/RECORD"
    entries[record_path] = _record(entries, record_path)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / f"{stem}-{tag}.whl"
    _write_zip(target, entries)
    return target


def _pyproject(name: str, version: str, backend: str = "setuptools",
               requires: Sequence[str] = ()) -> str:
    system = ('requires = ["flit_core>=3.4,<4"]\nbuild-backend = "flit_core.buildapi"\n'
              if backend == "flit" else
              'requires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n')
    return (
        f"[build-system]\n{system}\n"
        "[project]\n"
        f'name = "{name}"\n'
        f'version = "{version}"\n'
        f'description = "{name}"\n'
        f"dependencies = {list(requires)!r}\n".replace("'", '"')
    )


def _tar_info(path: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.size = size
    info.mtime = TAR_EPOCH
    info.mode = FILE_MODE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _write_tar_gz(target: Path, entries: Mapping[str, bytes]) -> None:
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(entries):
            data = entries[path]
            tar.addfile(_tar_info(path, len(data)), io.BytesIO(data))
    target.write_bytes(raw.getvalue())


def build_sdist(dest_dir: Path, name: str, version: str, *, backend: str = "setuptools",
                requires: Sequence[str] = (),
                extra_files: Mapping[str, bytes] | None = None) -> Path:
    """Build a minimal, deterministic ``.tar.gz`` sdist and return its path. ``backend``:
    "setuptools" (pyproject.toml), "flit" (flit_core) or "legacy" (setup.py only)."""
    stem = f"{escape_name(name)}-{escape_version(version)}"
    module = import_name_for(name)
    entries = {
        f"{stem}/PKG-INFO": _metadata(name, version, requires, None).encode(),
        f"{stem}/{module}/__init__.py": f'"""{name}."""\n__version__ = "{version}"\n'.encode(),
    }
    if backend == "legacy":
        entries[f"{stem}/setup.py"] = (
            "from setuptools import setup\n"
            f"setup(name={name!r}, version={version!r}, packages=[{module!r}], "
            f"install_requires={list(requires)!r})\n").encode()
    else:
        entries[f"{stem}/pyproject.toml"] = _pyproject(name, version, backend, requires).encode()
    for rel, data in (extra_files or {}).items():
        entries[f"{stem}/{rel}"] = data
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / f"{stem}.tar.gz"
    _write_tar_gz(target, entries)
    return target
