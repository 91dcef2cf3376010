"""Installing wheels straight into layer entries, as the image's virtual environment.

The `installer` library decides what goes where (schemes, scripts, RECORD); it never
writes to disk here. Its destination only *plans* each file: a wheel member is named,
not copied, and its bytes flow from the wheel into the layer tar exactly once, checked
against the wheel's RECORD hash on the way (a mismatch stops the layer). What is written
is controlled: INSTALLER says reprolock, no direct_url.json, no .pyc (the image sets
PYTHONDONTWRITEBYTECODE so none appear at run time either), RECORD as installer writes
it, whose digest the lock records so that a patched environment can be told apart.

    >>> dist = plan_wheel(Path(wheel), layout, filename=wheel)   # doctest: +SKIP
    >>> dist.record_sha256, len(dist.entries)                   # doctest: +SKIP
"""

from __future__ import annotations

import base64
import hashlib
import io
import posixpath
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from installer.destinations import SchemeDictionaryDestination
from installer.records import Hash, RecordEntry, parse_record_file
from installer.utils import Scheme

from reprolock.errors import ArtifactError
from reprolock.imagebuild.wheelcheck import check_members, check_python_scripts
from reprolock.oci.tarball import Entry, ZipMember

INSTALLER_NAME = b"reprolock\n"


@dataclass(frozen=True)
class VenvLayout:
    prefix: str  # e.g. /opt/venv
    python_minor: str  # e.g. 3.11
    python_version: str  # e.g. 3.11.2
    base_interpreter: str  # e.g. /usr/bin/python3.11

    @property
    def site_packages(self) -> str:
        return f"{self.prefix}/lib/python{self.python_minor}/site-packages"

    def scheme(self, dist: str) -> dict[str, str]:
        return {
            "purelib": self.site_packages,
            "platlib": self.site_packages,
            "scripts": f"{self.prefix}/bin",
            "data": self.prefix,
            "headers": f"{self.prefix}/include/site/python{self.python_minor}/{dist}",
        }


@dataclass(frozen=True)
class InstalledDist:
    """One wheel as installed: its layer entries and the digest of its RECORD."""

    name: str
    entries: tuple[Entry, ...]
    record_path: str  # inside the image, no leading slash
    record_sha256: str  # "sha256:<hex>" of the RECORD as installed


def venv_entries(layout: VenvLayout) -> list[Entry]:
    """pyvenv.cfg and interpreter links pointing at the base image's Python."""
    prefix = layout.prefix.strip("/")
    cfg = (f"home = {PurePosixPath(layout.base_interpreter).parent}\n"
           "include-system-site-packages = false\n"
           f"version = {layout.python_version}\n"
           f"executable = {layout.base_interpreter}\n").encode()
    return [
        Entry(f"{prefix}/bin", "dir"),
        Entry(layout.site_packages.strip("/"), "dir"),
        Entry(f"{prefix}/pyvenv.cfg", "file", data=cfg),
        Entry(f"{prefix}/bin/python", "symlink", link=layout.base_interpreter),
        Entry(f"{prefix}/bin/python3", "symlink", link="python"),
        Entry(f"{prefix}/bin/python{layout.python_minor}", "symlink", link="python"),
    ]


def plan_wheel(wheel: Path, layout: VenvLayout, *, filename: str,
               record_checked: bool = False) -> InstalledDist:
    """What installing ``wheel`` into ``layout`` puts into the image, without writing it.
    With ``record_checked`` (an earlier layer found every member to match RECORD), the
    members' sha256 RECORD gives are not checked again while they stream."""
    from installer import install
    from installer.sources import WheelFile

    sizes = check_members(wheel, filename)
    try:
        with WheelFile.open(wheel) as source:
            # names and hash presence now; each file's hash while it streams into the layer
            source.validate_record(validate_contents=False)
            dist = source.distribution
            destination = _Planner(layout.scheme(dist), interpreter=f"{layout.prefix}/bin/python",
                                   script_kind="posix", bytecode_optimization_levels=())
            hashes = _record_hashes(source)
            check_python_scripts(wheel, filename, source.data_dir, hashes)
            destination.prepare(wheel, filename, hashes, sizes, check=not record_checked)
            install(source, destination, {"INSTALLER": INSTALLER_NAME})
    except ArtifactError:
        raise
    except Exception as exc:  # installer raises ValueError, KeyError, its own types
        raise ArtifactError(f"cannot install {filename}: {_reason(exc)}",
                            hint="the wheel is broken or malicious; do not use it") from exc
    record_path, record_data = destination.record
    return InstalledDist(dist, tuple(destination.entries), record_path,
                         "sha256:" + hashlib.sha256(record_data).hexdigest())


def _reason(exc: Exception) -> str:
    """installer's message, never empty (an entry point it cannot parse said nothing) and
    without an object's address (which changed the message from run to run)."""
    text = re.sub(r"<([\w.]+) object at 0x[0-9a-f]+>", r"<\1>", str(exc)).strip()
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


def _record_hashes(source: Any) -> dict[str, Hash]:
    rows = parse_record_file(source.read_dist_info("RECORD").splitlines())
    return {path: Hash.parse(digest) for path, digest, _size in rows if digest}


class _Planner(SchemeDictionaryDestination):
    """A destination that collects layer entries instead of writing files."""

    def prepare(self, wheel: Path, filename: str, hashes: Mapping[str, Hash],
                sizes: Mapping[str, int], *, check: bool) -> None:
        self.wheel = wheel
        self.check = check
        self.sizes = sizes
        self.filename = filename
        self.hashes = hashes
        self.entries: list[Entry] = []
        self.seen: set[str] = set()
        self.record: tuple[str, bytes] = ("", b"")

    def _path_with_destdir(self, scheme: Scheme, path: str) -> Path:
        return Path(self._target(scheme, path))

    def _target(self, scheme: Scheme, path: str) -> str:
        """Where ``path`` of ``scheme`` goes in the image; installer's check, without
        pathlib's cost (thousands of files per wheel)."""
        root = posixpath.normpath(self.scheme_dict[scheme])
        full = posixpath.normpath(posixpath.join(root, path))
        if not full.startswith(root.rstrip("/") + "/"):
            raise ValueError(f"Attempting to write {path} outside of the target directory")
        return full

    def write_to_fs(self, scheme: Scheme, path: str, stream: BinaryIO,
                    is_executable: bool) -> RecordEntry:
        name = self._target(scheme, path).lstrip("/")
        if name in self.seen:
            raise ArtifactError(f"cannot install {self.filename}: it installs {name} twice",
                                hint="the wheel is broken; do not use it")
        self.seen.add(name)
        if isinstance(stream, zipfile.ZipExtFile):
            member, digest = self._member(stream)
            self.entries.append(Entry(name, "file", member=member, executable=is_executable))
            return RecordEntry(path, Hash("sha256", _b64(digest)), member.size)
        data = stream.read()  # generated: scripts, INSTALLER, RECORD; small
        self.entries.append(Entry(name, "file", data=data, executable=is_executable))
        if path.endswith(".dist-info/RECORD"):
            self.record = (name, data)
        return RecordEntry(path, Hash("sha256", _b64(hashlib.sha256(data).digest())), len(data))

    def write_script(self, name: str, module: str, attr: str, section: Any) -> RecordEntry:
        from installer.scripts import Script

        script_name, data = Script(name, module, attr, section).generate(
            self.interpreter, self.script_kind)
        return self.write_to_fs(Scheme("scripts"), script_name, io.BytesIO(data),
                                is_executable=True)

    def _member(self, stream: zipfile.ZipExtFile) -> tuple[ZipMember, bytes]:
        """The wheel member behind ``stream`` and its sha256 (RECORD's, checked later)."""
        member_name = stream.name
        expected = self.hashes.get(member_name)
        if expected is None:
            raise ArtifactError(f"{self.filename}: {member_name} has no hash in RECORD")
        if expected.name == "sha256":
            digest = base64.urlsafe_b64decode(expected.value + "=" * (-len(expected.value) % 4))
            return ZipMember(self.wheel, member_name, self.sizes[member_name],
                             digest if self.check else None, self.filename), digest
        # another algorithm: check it now, and stream against the sha256 found here
        sha, other, size = hashlib.sha256(), hashlib.new(expected.name), 0
        while chunk := stream.read(1 << 20):
            sha.update(chunk)
            other.update(chunk)
            size += len(chunk)
        if _b64(other.digest()) != expected.value:
            raise ArtifactError(f"{self.filename}: {member_name} does not match its RECORD hash",
                                hint="the wheel was altered after it was built; do not use it")
        return ZipMember(self.wheel, member_name, size, sha.digest(), self.filename), sha.digest()


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
