"""What a base image runs: OS, architecture, Python interpreter and version, C library.

Reads the image's layers as streams (no container, no daemon) and looks at a handful of
files: the dpkg or apk database, the interpreter's path, the C library. Every layer is
hashed against its blob digest and diff_id on the way (facts of a replaced layer are not
facts of the image), and every file read is bounded: a small gzip layer can hold a file
of gigabytes.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import IO

from reprolock._internal.files import atomic_write_text
from reprolock._internal.tarsafe import open_tar
from reprolock.errors import ImageSourceError
from reprolock.image.blobs import check_layer
from reprolock.image.interface import Descriptor, ImageSource, ResolvedImage
from reprolock.oci.whiteouts import hidden_by

_PY_BIN = re.compile(r"^(usr/local/bin|usr/bin|opt/[^/]+/bin)/python(\d)\.(\d{1,2})$")
_GLIBC_BANNER = re.compile(rb"GNU C Library [^\n]*?release version (\d+\.\d+)")
_OLD_LIBC = re.compile(r"(?:^|/)libc-(\d+\.\d+)\.so$")
_MUSL = re.compile(r"(?:^|/)ld-musl-[^/]+\.so\.1$")
_DEBIAN_VERSION = re.compile(r"^(?:\d+:)?(\d+\.\d+(?:\.\d+)?)")
_PROBE_VERSION = 4  # 2: whiteouts hide lower layers' files; 3: layers verified; 4: 2-digit minors
#: The largest package database read: a big Debian image's dpkg status is about 5 MB.
MAX_DATABASE = 64 << 20
#: Larger "C libraries" are skipped (glibc's is about 2 MB); the name tells the version.
MAX_LIBC = 32 << 20


@dataclass(frozen=True)
class BaseFacts:
    python_path: str
    python_version: str  # "3.11.2", or "3.11" when the patch level is not recorded
    libc_family: str  # "glibc" or "musl"
    libc_version: str


@dataclass
class _Seen:
    pythons: dict[tuple[int, int], str]
    dpkg_status: bytes | None = None
    apk_installed: bytes | None = None
    libc_banner: str | None = None
    libc_from_name: str | None = None
    musl: bool = False


def probe(source: ImageSource, image: ResolvedImage, *, cache_dir: Path | None) -> BaseFacts:
    cached = _cache_file(cache_dir, image)
    if cached and cached.is_file():
        facts = _from_cache(cached)
        if facts is not None:
            return facts
        cached.unlink(missing_ok=True)  # a corrupt entry is discarded, never used
    seen = _Seen(pythons={})
    for number, (layer, diff_id) in enumerate(zip(image.layers, image.diff_ids, strict=True), 1):
        _probe_layer(source, image, number, layer, diff_id, seen)
    facts = _facts(image, seen)
    if cached:
        atomic_write_text(cached, json.dumps(asdict(facts), sort_keys=True))
    return facts


def _from_cache(path: Path) -> BaseFacts | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    names = {f.name for f in fields(BaseFacts)}
    if not isinstance(data, dict) or set(data) != names or not all(
        isinstance(value, str) and value for value in data.values()
    ):
        return None
    return BaseFacts(**data)


def _cache_file(cache_dir: Path | None, image: ResolvedImage) -> Path | None:
    """One entry per config and manifest: the manifest pins the layers that were read."""
    if cache_dir is None:
        return None
    key = image.config_digest.replace(":", "-")
    pinned = hashlib.sha256(image.identity.encode()).hexdigest()[:16]
    return cache_dir / "probe" / f"v{_PROBE_VERSION}-{key}-{pinned}.json"


def _probe_layer(source: ImageSource, image: ResolvedImage, number: int, layer: Descriptor,
                 diff_id: str, seen: _Seen) -> None:
    where = f"base image {image.reference}: layer {number} ({layer.digest})"
    if layer.media_type.endswith("zstd"):
        raise ImageSourceError(f"{where} is compressed with zstd, which base images may not "
                               "be yet", hint="use a base image with gzip layers")
    problems = check_layer(source, layer, diff_id,
                           read_tar=lambda stream: _scan_layer(stream, seen, where))
    if problems:
        raise ImageSourceError(f"{where}: {'; '.join(problems)}",
                               hint="the base image is corrupt or was tampered with: fetch "
                               "or export it again from its source")


def _scan_layer(stream: IO[bytes], seen: _Seen, where: str) -> None:
    """Add what one layer holds to ``seen``; its whiteouts first remove what lower layers
    held (a layer's whiteouts never hide the layer's own files)."""
    found = _Seen(pythons={})
    hidden: list[str] = []
    with open_tar(fileobj=stream, mode="r|") as tar:
        for member in tar:
            _scan_member(tar, member, found, hidden, where)
    _merge(seen, found, hidden)


def _scan_member(tar: tarfile.TarFile, member: tarfile.TarInfo, found: _Seen,
                 hidden: list[str], where: str) -> None:
    name = member.name.removeprefix("./").lstrip("/")
    parent, _, base = name.rpartition("/")
    if base.startswith(".wh."):
        gone = parent if base == ".wh..wh..opq" else f"{parent}/{base[4:]}".lstrip("/")
        hidden.append(gone)
    elif match := _PY_BIN.match(name):
        key, path = (int(match.group(2)), int(match.group(3))), "/" + name
        if key not in found.pythons or _rank(path) < _rank(found.pythons[key]):
            found.pythons[key] = path
    elif name == "var/lib/dpkg/status" and member.isfile():
        found.dpkg_status = _read(tar, member, where)
    elif name == "lib/apk/db/installed" and member.isfile():
        found.apk_installed = _read(tar, member, where)
    elif base == "libc.so.6" and member.isfile() and member.size <= MAX_LIBC:
        banner = _GLIBC_BANNER.search(_read(tar, member, where))
        found.libc_banner = banner.group(1).decode() if banner else found.libc_banner
    elif match := _OLD_LIBC.search(name):
        found.libc_from_name = match.group(1)
    elif _MUSL.search(name):
        found.musl = True


def _merge(seen: _Seen, upper: _Seen, hidden: list[str]) -> None:
    gone = hidden_by(hidden)
    kept = {key: path for key, path in seen.pythons.items() if not gone(path)}
    for key, path in upper.pythons.items():
        if key not in kept or _rank(path) <= _rank(kept[key]):
            kept[key] = path
    seen.pythons = kept
    for attr, path in (("dpkg_status", "var/lib/dpkg/status"),
                       ("apk_installed", "lib/apk/db/installed")):
        value = getattr(upper, attr)
        if value is not None:
            setattr(seen, attr, value)
        elif gone(path):
            setattr(seen, attr, None)
    seen.libc_banner = upper.libc_banner or seen.libc_banner
    seen.libc_from_name = upper.libc_from_name or seen.libc_from_name
    seen.musl = seen.musl or upper.musl


def _rank(path: str) -> int:
    """Where PATH looks first: /usr/local/bin, then /usr/bin, then /opt/*/bin."""
    for rank, prefix in enumerate(("/usr/local/bin/", "/usr/bin/")):
        if path.startswith(prefix):
            return rank
    return 2


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo, where: str) -> bytes:
    """A file the probe looks into, never more than MAX_DATABASE bytes of it."""
    if member.size > MAX_DATABASE:
        raise ImageSourceError(
            f"{where}: /{member.name.removeprefix('./').lstrip('/')} is {member.size} bytes, "
            f"more than the {MAX_DATABASE} the probe reads of any file",
            hint="this is not a package database or C library of a usable base image; pick "
            "another base")
    handle = tar.extractfile(member)
    return handle.read(MAX_DATABASE) if handle else b""


def _facts(image: ResolvedImage, seen: _Seen) -> BaseFacts:
    if not seen.pythons:
        raise ImageSourceError(
            f"base image {image.reference} has no Python interpreter "
            "(looked for /usr/local/bin/python3.X and /usr/bin/python3.X)",
            hint="pick a base image with Python 3 installed, e.g. python:3.11-slim@sha256:...",
        )
    minor = max(seen.pythons)
    path = seen.pythons[minor]
    packages = _dpkg_versions(seen.dpkg_status) if seen.dpkg_status else {}
    version = _python_version(image, packages, minor)
    family, libc = _libc(image, seen, packages)
    return BaseFacts(python_path=path, python_version=version, libc_family=family,
                     libc_version=libc)


_PLAIN_VERSION = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+(?:(?:a|b|rc)[0-9]+)?")


def _python_version(image: ResolvedImage, packages: dict[str, str], minor: tuple[int, int]) -> str:
    short = f"{minor[0]}.{minor[1]}"
    declared = image.env.get("PYTHON_VERSION", "")
    # the base's own word goes into the lock and pyvenv.cfg: only a plain version counts
    if declared.startswith(short + ".") and _PLAIN_VERSION.fullmatch(declared):
        return declared
    deb = packages.get(f"python{short}-minimal") or packages.get(f"python{short}")
    match = _DEBIAN_VERSION.match(deb or "")
    if match and match.group(1).startswith(short):
        return match.group(1)
    return short


def _libc(image: ResolvedImage, seen: _Seen, packages: dict[str, str]) -> tuple[str, str]:
    if seen.musl or seen.apk_installed:
        version = _apk_version(seen.apk_installed or b"", "musl") or "1.2"
        return "musl", ".".join(version.split(".")[:2])
    deb = _DEBIAN_VERSION.match(packages.get("libc6", ""))
    glibc = (deb.group(1) if deb else None) or seen.libc_banner or seen.libc_from_name
    if glibc is None:
        raise ImageSourceError(
            f"cannot tell which C library base image {image.reference} has",
            hint="use a Debian, Ubuntu or Alpine based image, or one with /lib/*/libc.so.6",
        )
    return "glibc", ".".join(glibc.split(".")[:2])


def _dpkg_versions(status: bytes) -> dict[str, str]:
    found: dict[str, str] = {}
    for stanza in status.decode("utf-8", "replace").split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " "
        )
        if "Package" in fields and "Version" in fields and "installed" in fields.get("Status", ""):
            found[fields["Package"]] = fields["Version"]
    return found


def _apk_version(installed: bytes, package: str) -> str | None:
    for stanza in installed.decode("utf-8", "replace").split("\n\n"):
        lines = dict(line.split(":", 1) for line in stanza.splitlines() if ":" in line)
        if lines.get("P") == package:
            return lines.get("V", "").split("-")[0]
    return None
