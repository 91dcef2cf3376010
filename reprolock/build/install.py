"""Installing wheels into a staging tree that mirrors the image's virtual environment.

The `installer` library does the work (never pip, never a container). What it writes is
controlled: INSTALLER says reprolock, no direct_url.json, no .pyc (the image sets
PYTHONDONTWRITEBYTECODE so none appear at run time either), RECORD as installer writes it.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from reprolock.errors import ArtifactError

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


def write_venv_skeleton(root: Path, layout: VenvLayout) -> None:
    """pyvenv.cfg and interpreter links pointing at the base image's Python."""
    prefix = root / layout.prefix.lstrip("/")
    (prefix / "bin").mkdir(parents=True)
    Path(root / layout.site_packages.lstrip("/")).mkdir(parents=True)
    (prefix / "pyvenv.cfg").write_text(
        f"home = {PurePosixPath(layout.base_interpreter).parent}\n"
        "include-system-site-packages = false\n"
        f"version = {layout.python_version}\n"
        f"executable = {layout.base_interpreter}\n")
    os.symlink(layout.base_interpreter, prefix / "bin" / "python")
    os.symlink("python", prefix / "bin" / "python3")
    os.symlink("python", prefix / "bin" / f"python{layout.python_minor}")


def install_wheel(wheel: Path, root: Path, layout: VenvLayout, *, filename: str) -> None:
    """Install ``wheel`` under ``root`` as if ``root`` were the image's ``/``."""
    from installer import install
    from installer.destinations import SchemeDictionaryDestination
    from installer.sources import WheelFile

    _refuse_escaping_paths(wheel, filename)
    try:
        with WheelFile.open(wheel) as source:
            source.validate_record()
            dist = source.distribution
            destination = SchemeDictionaryDestination(
                layout.scheme(dist), interpreter=f"{layout.prefix}/bin/python",
                script_kind="posix", bytecode_optimization_levels=(), destdir=str(root))
            install(source, destination, {"INSTALLER": INSTALLER_NAME})
    except ArtifactError:
        raise
    except Exception as exc:  # installer raises ValueError, KeyError, its own types
        raise ArtifactError(f"cannot install {filename}: {exc}",
                            hint="the wheel is broken or malicious; do not use it") from exc


def _refuse_escaping_paths(wheel: Path, filename: str) -> None:
    """A wheel entry with '..' or an absolute path could write outside the image prefix."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
            links = [i.filename for i in archive.infolist() if (i.external_attr >> 16) & 0o170000
                     == 0o120000]
    except zipfile.BadZipFile as exc:
        raise ArtifactError(f"{filename} is not a valid wheel (zip): {exc}") from exc
    for name in names:
        parts = PurePosixPath(name).parts
        if name.startswith("/") or ".." in parts or "\\" in name:
            raise ArtifactError(f"{filename} holds a path that escapes its root: {name!r}",
                                hint="refusing to install it; report the wheel to its publisher")
    if links:
        raise ArtifactError(f"{filename} holds symbolic links ({links[0]!r}), "
                            "which wheels may not contain", hint="refusing to install it")
