"""Build a pure-Python sdist into a wheel, the same bytes every time.

The build runs in an isolated environment of its pinned, hash-checked build
requirements (``uv build --build-constraint … --require-hashes``), with
``SOURCE_DATE_EPOCH`` fixed (wheel timestamps), umask 022 (file modes), and a C
compiler that is ``false``: only sdists that compile nothing are built. Whoever holds
the lock can build the sdist again and compare the wheel's sha256 with the lock's.
"""

from __future__ import annotations

import os
import platform
import tarfile
import tomllib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from reprolock._internal.proc import run
from reprolock._internal.tarsafe import open_tar
from reprolock.errors import ArtifactError, ToolError
from reprolock.lock.model import BuildRequirement
from reprolock.resolver.interface import IndexSettings, IndexVariables

#: what a source file of a compiled language ends with: such an sdist needs a compiler
_COMPILED = (".c", ".cc", ".cpp", ".cxx", ".c++", ".h", ".hpp", ".pyx", ".pxd", ".f",
             ".f90", ".f95", ".rs", ".go", ".cu", ".m", ".mm", ".swig", ".i")
_COMPILED_FILES = ("Cargo.toml", "CMakeLists.txt", "meson.build", "go.mod")
_MAX_PYPROJECT = 1 << 20
_MAX_MEMBERS = 100_000
_MAX_BYTES = 2 << 30
#: PEP 517's fallback when an sdist declares no build system; setuptools before 70.1
#: asks for wheel as well, which a hash-checked build must have pinned up front
LEGACY_REQUIRES = ("setuptools>=40.8.0",)
_UV_INDEX = IndexVariables(
    index_url="UV_INDEX_URL", extra_index_urls="UV_EXTRA_INDEX_URL",
    find_links="UV_FIND_LINKS", find_links_separator=",",
    cleared=("UV_INDEX", "UV_DEFAULT_INDEX", "UV_NO_INDEX"))


@dataclass(frozen=True)
class SdistFacts:
    """What an sdist says about its build, read without running any of it."""

    requires: tuple[str, ...]  # build-system.requires, or the PEP 517 fallback
    backend: str  # build-system.build-backend, "" for the fallback


def read_sdist(path: Path, *, name: str) -> SdistFacts:
    """The build requirements of the sdist at ``path``; refuse one that compiles code."""
    members = _members(path, name)
    compiled = sorted(m for m in members if _compiled(m))
    if compiled:
        raise ArtifactError(
            f"{name}: its sdist {path.name} holds code in a compiled language "
            f"({', '.join(compiled[:3])}{', …' if len(compiled) > 3 else ''}), and reprolock "
            "builds only pure-Python sdists (a compiled wheel depends on the compiler and "
            "libraries of the machine that builds it, so nobody could build it again bit "
            "for bit)",
            hint=f"remove {name} from dependencies.build-from-source and pin a version of it "
            "that ships a wheel for the target, or publish a wheel to a find-links directory")
    tops = {m.split("/", 1)[0] for m in members}
    table = _pyproject(path, name, f"{next(iter(tops))}/pyproject.toml"
                       if len(tops) == 1 else None, members)
    system = table.get("build-system") if isinstance(table, dict) else None
    if not isinstance(system, dict) or "requires" not in system:
        return SdistFacts((*LEGACY_REQUIRES, "wheel"), "")
    requires, backend = system.get("requires"), system.get("build-backend", "")
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires) \
            or not isinstance(backend, str):
        raise ArtifactError(f"{name}: the build-system table of {path.name}'s pyproject.toml "
                            "is malformed (requires must be a list of strings)",
                            hint=f"report it to {name}'s maintainers, and pin another version")
    extra = ("wheel",) if backend in ("", "setuptools.build_meta",
                                      "setuptools.build_meta:__legacy__") else ()
    return SdistFacts(tuple(requires) + extra, backend)


def _compiled(member: str) -> bool:
    base = PurePosixPath(member)
    return base.suffix.lower() in _COMPILED or base.name in _COMPILED_FILES


def _members(path: Path, name: str) -> list[str]:
    try:
        if path.name.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        else:
            with open_tar(str(path), "r:gz") as archive:
                names, total = [], 0
                for member in archive:  # streamed: a bomb stops at the bounds
                    names.append(member.name)
                    total += member.size
                    if len(names) > _MAX_MEMBERS or total > _MAX_BYTES:
                        names.append("")  # over the bound
                        break
    except (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError, NotImplementedError) as exc:
        raise ArtifactError(f"{name}: cannot read its sdist {path.name} ({exc})",
                            hint="the index serves a broken file; pin another version") from exc
    if not names or len(names) > _MAX_MEMBERS or "" in names:
        raise ArtifactError(f"{name}: its sdist {path.name} holds no files, or more than "
                            f"{_MAX_MEMBERS} files or {_MAX_BYTES >> 30} GiB: reprolock does "
                            "not build it", hint="pin another version")
    return [n.lstrip("./") for n in names]


def _pyproject(path: Path, name: str, member: str | None, members: list[str]) -> object:
    if member is None or member not in members:
        return None
    try:
        if path.name.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                data = archive.open(member).read(_MAX_PYPROJECT + 1)
        else:
            with open_tar(str(path), "r:gz") as archive:
                found = next((m for m in archive if m.name.lstrip("./") == member
                              and m.isfile()), None)
                handle = archive.extractfile(found) if found is not None else None
                data = handle.read(_MAX_PYPROJECT + 1) if handle is not None else b""
        if len(data) > _MAX_PYPROJECT:
            raise ValueError("over 1 MiB")
        return tomllib.loads(data.decode("utf-8"))
    # NotImplementedError: a zip member in a method zipfile lacks (zstd), which uv reads
    except (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError, NotImplementedError,
            ValueError) as exc:
        raise ArtifactError(f"{name}: cannot read {member} in its sdist {path.name} ({exc})",
                            hint=f"report it to {name}'s maintainers, and pin another version"
                            ) from exc


class SdistBuilder:
    """Runs the sdist's build backend through uv, in isolation, with hash-checked build
    requirements from the configured indexes."""

    tool = "uv"

    def __init__(self, index: IndexSettings) -> None:
        self.index = index

    def version(self) -> str:
        from reprolock.resolver.uv import UvResolver

        return UvResolver().version()

    @staticmethod
    def python() -> str:
        return platform.python_version()

    def build(self, sdist: Path, requires: Sequence[BuildRequirement], out_dir: Path, *,
              name: str, epoch: int) -> Path:
        """Build ``sdist`` into ``out_dir``; the one pure-Python wheel it made."""
        from reprolock.resolver.uv import uv_binary

        constraints = out_dir / "build-constraints.txt"
        constraints.write_text("".join(
            f"{r.name}=={r.version}" + "".join(f" --hash={h}" for h in r.hashes) + "\n"
            for r in requires), encoding="utf-8")
        wheels = out_dir / "wheel"
        index_argv, index_env = self.index.options(_UV_INDEX)
        argv = [uv_binary(), "build", str(sdist), "--wheel", "--out-dir", str(wheels),
                "--build-constraint", str(constraints), "--require-hashes", "--no-config",
                "--python", _interpreter(), "--quiet", *index_argv]
        try:
            run(argv, env=_build_env(index_env, epoch), what=f"the build of {sdist.name}",
                umask=0o022)
        except ToolError as exc:
            raise _failed(name, sdist, exc) from exc
        return _one_pure_wheel(wheels, name, sdist)


def _interpreter() -> str:
    import sys

    return sys.executable


def _build_env(index: dict[str, str], epoch: int) -> dict[str, str]:
    # no variable of the user's may change the build (UV_NO_BUILD_ISOLATION,
    # SETUPTOOLS_SCM_PRETEND_VERSION, PYTHONPATH, …): only where uv keeps its cache
    env = _UV_INDEX.environment({k: v for k, v in os.environ.items() if k == "UV_CACHE_DIR"
                                 or not k.startswith(("UV_", "PIP_", "PYTHON", "SETUPTOOLS",
                                                      "FLIT_", "HATCH_", "PDM_"))}, index)
    env.update({"SOURCE_DATE_EPOCH": str(epoch), "PYTHONHASHSEED": "0", "TZ": "UTC",
                "LC_ALL": "C.UTF-8", "UV_NO_PROGRESS": "1",
                # no compiler runs: a backend that tries one fails here, not on a machine
                # whose compiler makes other bytes
                "CC": "false", "CXX": "false", "LDSHARED": "false"})
    return env


def _failed(name: str, sdist: Path, exc: ToolError) -> ArtifactError:
    tail = [line for line in (exc.stderr or "").strip().splitlines() if line.strip()][-12:]
    shown = "\n".join(f"  | {line}" for line in tail)
    compiler = any(word in (exc.stderr or "") for word in ("command 'false'", "gcc", "error: "
                                                           "command", "Cython"))
    why = (" It tried to run a C compiler, and reprolock builds only pure-Python sdists."
           if compiler else "")
    return ArtifactError(
        f"{name}: building a wheel from its sdist {sdist.name} failed.{why}\n{shown}",
        hint=f"pin a version of {name} that ships a wheel, or remove it from "
        "dependencies.build-from-source; a build requirement the backend asks for at build "
        "time, beyond build-system.requires, cannot be hash-checked and fails the build")


def _one_pure_wheel(wheels: Path, name: str, sdist: Path) -> Path:
    built = sorted(wheels.glob("*.whl")) if wheels.is_dir() else []
    if len(built) != 1:
        raise ArtifactError(f"{name}: building {sdist.name} made {len(built)} wheels, not one",
                            hint=f"pin another version of {name}")
    try:
        _, _, _, tags = parse_wheel_filename(built[0].name)
    except InvalidWheelFilename as exc:
        raise ArtifactError(f"{name}: building {sdist.name} made {built[0].name}, which is "
                            "not a wheel's name", hint=f"pin another version of {name}") from exc
    impure = sorted(str(t) for t in tags if t.abi != "none" or t.platform != "any")
    if impure:
        raise ArtifactError(
            f"{name}: building {sdist.name} made {built[0].name}, a wheel for one platform "
            f"({impure[0]}): it holds compiled code, and reprolock builds only pure-Python "
            "sdists", hint=f"pin a version of {name} that ships a wheel for the target")
    return built[0]


__all__ = ["LEGACY_REQUIRES", "SdistBuilder", "SdistFacts", "read_sdist"]
