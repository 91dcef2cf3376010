"""A directory laid out like a built image's file system, for running the runtime
checker on the host: a real virtual environment at ROOT/opt/venv with real wheels
installed by the build's own installer, code at ROOT/app and /.reprolock/ as the build
embeds it (through reprolock.runtime.embed)."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reprolock.inspection.codeset import CodeFile, CodeSet, tree_digest
from reprolock.runtime.embed import image_files
from reprolock.runtime.records import record_digests

PREFIX = "/opt/venv"
MINOR = f"{sys.version_info.major}.{sys.version_info.minor}"
CODE = {"train.py": b"import tinyml\nprint('ok')\n", "run.sh": b"#!/bin/sh\npython train.py\n"}


@dataclass(frozen=True)
class FakeImage:
    root: Path
    wheels: tuple[Path, ...]

    @property
    def site(self) -> Path:
        return self.root / f"opt/venv/lib/python{MINOR}/site-packages"

    @property
    def python(self) -> Path:
        return self.root / "opt/venv/bin/python"

    @property
    def checker(self) -> Path:
        return self.root / ".reprolock/check.py"

    def env(self, **extra: str) -> dict[str, str]:
        return {"PATH": f"{PREFIX}/bin:/usr/bin:/bin", "VIRTUAL_ENV": PREFIX,
                "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", **extra}

    def check(self, *args: str, env: dict[str, str] | None = None,
              ) -> subprocess.CompletedProcess[str]:
        """Run the embedded checker with the environment's own interpreter."""
        return subprocess.run([str(self.python), str(self.checker), "--root", str(self.root),
                               *args], capture_output=True, text=True, check=False,
                              env=env if env is not None else self.env())

    def report(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict]:
        done = self.check("--json", *args, env=env)
        return done.returncode, json.loads(done.stdout)


# the fake image's "base" is the host interpreter the venv runs
BASE_PYTHON = os.path.realpath(sys.executable)


def lock_doc(packages: Sequence[tuple[str, str]]) -> dict:
    return {"lockVersion": 1, "generator": {"name": "reprolock", "version": "0.1.0"},
            "base": {"python": {"path": BASE_PYTHON, "version": platform.python_version()}},
            "target": {"platform": "linux/amd64", "os": "linux", "architecture": "amd64",
                       "python": {"implementation": platform.python_implementation().lower(),
                                  "version": platform.python_version(), "abi": "cp311"},
                       "libc": {"family": "glibc", "version": platform.libc_ver()[1]}},
            "packages": [{"name": n, "version": v} for n, v in packages]}


def code_set(root: Path) -> CodeSet:
    files = []
    for rel, data in sorted(CODE.items()):
        path = root / "app" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        executable = rel.endswith(".sh")
        if executable:
            path.chmod(0o755)
        import hashlib

        files.append(CodeFile(rel, hashlib.sha256(data).hexdigest(), len(data), executable))
    return CodeSet(tuple(files), tree_digest(files), None)


def install(wheel: Path, root: Path) -> None:
    """Install as the build does (the installer library, INSTALLER says reprolock, no
    .pyc), but independent of the build's code, which these tests must not depend on."""
    from installer import install as run_install
    from installer.destinations import SchemeDictionaryDestination
    from installer.sources import WheelFile

    site = f"{PREFIX}/lib/python{MINOR}/site-packages"
    scheme = {"purelib": site, "platlib": site, "scripts": f"{PREFIX}/bin", "data": PREFIX,
              "headers": f"{PREFIX}/include"}
    with WheelFile.open(wheel) as source:
        destination = SchemeDictionaryDestination(
            scheme, interpreter=f"{PREFIX}/bin/python", script_kind="posix",
            bytecode_optimization_levels=(), destdir=str(root))
        run_install(source, destination, {"INSTALLER": b"reprolock\n"})


def _venv_like_the_build(venv: Path) -> None:
    """What reprolock/imagebuild/install.py venv_entries makes: bin/python links to the base
    interpreter, python3 and python3.X to python, pyvenv.cfg with four keys, nothing else
    (no activate scripts, no include/, no lib64)."""
    for name in os.listdir(venv / "bin"):
        (venv / "bin" / name).unlink()
    (venv / "bin" / "python").symlink_to(BASE_PYTHON)
    for name in ("python3", f"python{MINOR}"):
        (venv / "bin" / name).symlink_to("python")
    for extra in ("include", "lib64"):
        path = venv / extra
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
    (venv / "pyvenv.cfg").write_text(
        f"home = {os.path.dirname(BASE_PYTHON)}\ninclude-system-site-packages = false\n"
        f"version = {platform.python_version()}\nexecutable = {BASE_PYTHON}\n")


def host_base_record() -> dict:
    """The "base image" record of the host interpreter: its startup hooks and bytecode,
    found the way the checker looks (isolated: the stdlib on sys.path, the site
    directories, the user site), so that a check with root "/" finds them vouched for."""
    from reprolock.runtime.basefiles import relevant

    script = ("import json, site, sys; print(json.dumps([p for p in sys.path if p] + "
              "site.getsitepackages([sys.base_prefix]) + [site.getusersitepackages()]))")
    dirs = json.loads(subprocess.run([BASE_PYTHON, "-I", "-S", "-c", script], check=True,
                                     capture_output=True, text=True).stdout)
    files: dict[str, dict] = {}
    for top in dirs:
        for dirpath, dirnames, filenames in os.walk(top):
            for name in [*filenames, *(d for d in dirnames
                                       if os.path.islink(os.path.join(dirpath, d)))]:
                _record(os.path.join(dirpath, name), files, relevant)
    return {"version": 1, "files": files}


def _record(path: str, files: dict[str, dict], relevant: object) -> None:
    import hashlib

    if not relevant(path) or path in files:  # type: ignore[operator]
        return
    if os.path.islink(path):
        files[path] = {"link": os.readlink(path)}
        _record(os.path.normpath(os.path.join(os.path.dirname(path), os.readlink(path))),
                files, lambda _p: True)
    elif os.path.isfile(path):
        data = Path(path).read_bytes()
        files[path] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


_HOST_BASE: list[dict] = []


def make_image_root(root: Path, wheels: Sequence[Path],
                    packages: Sequence[tuple[str, str]]) -> FakeImage:
    venv = root / PREFIX.lstrip("/")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    _venv_like_the_build(venv)
    if not _HOST_BASE:
        _HOST_BASE.append(host_base_record())
    for wheel in wheels:
        install(wheel, root)
    image = FakeImage(root, tuple(wheels))
    lock_bytes = (json.dumps(lock_doc(packages), indent=2, sort_keys=True) + "\n").encode()
    embedded = image_files(lock_bytes=lock_bytes, code=code_set(root), workdir="/app",
                           prefix=PREFIX, records=record_digests(image.site),
                           env={"PYTHONHASHSEED": "0"}, base=_HOST_BASE[0])
    for item in embedded:
        target = root / item.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(item.data)
    return image


def copy_image_root(image: FakeImage, dest: Path) -> FakeImage:
    shutil.copytree(image.root, dest, symlinks=True)
    # the venv's python links to the host interpreter by absolute path: still valid;
    # pyvenv.cfg names no path of the copy
    return FakeImage(dest, image.wheels)
