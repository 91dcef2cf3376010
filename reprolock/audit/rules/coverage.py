"""RL005: files of the code set that can change an environment but that the audit does
not read, named once per kind (never skipped silently)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import PurePosixPath

from reprolock.audit.model import Finding, Severity
from reprolock.audit.rules.conda import is_environment_file, yaml_available

# kinds of file that install, download or pin things, and that the audit does not parse
_BY_SUFFIX = {
    ".zsh": "zsh scripts", ".fish": "fish scripts", ".ksh": "ksh scripts",
    ".ps1": "PowerShell scripts", ".bat": "Windows batch files", ".cmd": "Windows batch files",
    ".r": "R scripts", ".jl": "Julia scripts", ".lua": "Lua scripts", ".pl": "Perl scripts",
    ".rb": "Ruby scripts",
}
_BY_NAME = {
    "makefile": "Makefiles", "gnumakefile": "Makefiles", "justfile": "justfiles",
    "pipfile": "Pipfiles", "pipfile.lock": "Pipfile locks", "poetry.lock": "Poetry locks",
    "pyproject.toml": "pyproject.toml dependency lists", "setup.cfg": "setup.cfg files",
    "environment.yml": "conda environment files", "environment.yaml": "conda environment files",
    "conda.yml": "conda environment files", "conda.yaml": "conda environment files",
    "docker-compose.yml": "Compose files", "docker-compose.yaml": "Compose files",
    "compose.yml": "Compose files", "compose.yaml": "Compose files",
}


def kind_of(path: str) -> str | None:
    """The kind of file ``path`` is, if it is one the audit names as not read."""
    name = PurePosixPath(path).name.lower()
    if name.startswith(("dockerfile_", "containerfile_")):
        return "Dockerfiles named Dockerfile_* (reprolock reads Dockerfile, Dockerfile.*, " \
               "Dockerfile-*, *.Dockerfile and Containerfile)"
    if is_environment_file(name) and yaml_available():
        return None  # read by reprolock.audit.rules.conda
    return _BY_NAME.get(name) or _BY_SUFFIX.get(PurePosixPath(name).suffix)


def check(paths: Iterable[str]) -> Iterator[Finding]:
    found: dict[str, list[str]] = {}
    for path in sorted(paths):
        kind = kind_of(path)
        if kind is not None:
            found.setdefault(kind, []).append(path)
    for kind, files in found.items():
        more = len(files) - 1
        tail = f" and {more} more" if more else ""
        yield Finding("RL005", Severity.INFO, files[0], 0,
                      f"not read by the audit: {kind} ({files[0]}{tail}); installs, "
                      "downloads or pins in them were not checked")
