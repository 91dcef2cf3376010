"""What ``reprolock init`` can tell about a project from its files alone."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

_FROM = re.compile(r"^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)", re.IGNORECASE | re.MULTILINE)
_EXEC = re.compile(r"^\s*(ENTRYPOINT|CMD)\s+(.+)$", re.IGNORECASE | re.MULTILINE)
_ENTRY_NAMES = ("train.py", "main.py", "run.py", "src/train.py")
_REQ_NAMES = ("requirements.in", "requirements/base.in", "requirements/main.in",
              "requirements.txt")


@dataclass(frozen=True)
class ProjectGuess:
    requirements: tuple[str, ...]
    pyproject_dependencies: bool
    entrypoint: tuple[str, ...]
    dockerfile_base: str | None
    dockerfile: str | None


def guess_project(root: Path) -> ProjectGuess:
    requirements = tuple(n for n in _REQ_NAMES if (root / n).is_file())
    if "requirements.in" in requirements and "requirements.txt" in requirements:
        requirements = tuple(r for r in requirements if r != "requirements.txt")
    dockerfile = next((n for n in ("Dockerfile", "docker/Dockerfile") if (root / n).is_file()),
                      None)
    base, docker_entry = _dockerfile(root / dockerfile) if dockerfile else (None, ())
    entry = docker_entry or _entry_script(root)
    return ProjectGuess(requirements[:1] if requirements else (), _has_pyproject_deps(root),
                        entry, base, dockerfile)


def _dockerfile(path: Path) -> tuple[str | None, tuple[str, ...]]:
    text = path.read_text(encoding="utf-8", errors="replace")
    bases = [b for b in _FROM.findall(text) if b.lower() != "scratch"]
    entry: tuple[str, ...] = ()
    for _kind, value in _EXEC.findall(text):
        value = value.strip()
        try:
            parsed = json.loads(value) if value.startswith("[") else shlex.split(value)
        except (ValueError, json.JSONDecodeError):
            continue
        if isinstance(parsed, list) and parsed:
            entry = tuple(str(p) for p in parsed)
    return (bases[-1] if bases else None), entry


def _entry_script(root: Path) -> tuple[str, ...]:
    for name in _ENTRY_NAMES:
        if (root / name).is_file():
            return ("python", name)
    return ()


def _has_pyproject_deps(root: Path) -> bool:
    path = root / "pyproject.toml"
    if not path.is_file():
        return False
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return False
    return bool(doc.get("project", {}).get("dependencies"))


def render_config(*, base: str, resolver: str, guess: ProjectGuess,
                  entrypoint: tuple[str, ...]) -> str:
    """A starter reprolock.toml, with comments that say what each setting is for."""
    from tomli_w import dumps

    def value(v: object) -> str:
        return dumps({"v": v}).split("=", 1)[1].strip()

    base_note = ""
    if "@sha256:" not in base and not base.startswith(("oci-layout:", "oci-archive:",
                                                          "docker-archive:")):
        base_note = ("# This base names no digest: 'reprolock lock' resolves it and records\n"
                     "# the digest, but pinning it here (NAME:TAG@sha256:...) is safer.\n")
    reqs = list(guess.requirements)
    lines = [
        "# reprolock configuration (the README has the full reference).",
        "# Lock with 'reprolock lock'; check with 'reprolock lock --check'.",
        "",
        "# Base image: NAME[:TAG]@sha256:..., NAME:TAG, oci-layout:DIR[:TAG|@DIGEST],",
        "# oci-archive:FILE, docker-archive:FILE or docker-daemon:REF.",
        base_note + f"base = {value(base)}",
        "# Target platform of the image.",
        'platform = "linux/amd64"',
        "# Resolver: \"uv\" (fast, resolves for any target) or \"pip-tools\" (this machine's).",
        f"resolver = {value(resolver)}",
        "",
        "[dependencies]",
        "# Requirement inputs (requirements.in style), relative to this file.",
        f"requirements = {value(reqs)}",
        "# Also lock [project.dependencies] of pyproject.toml.",
        f"pyproject = {value(guess.pyproject_dependencies)}",
        "",
        "[index]",
        "# Package index; credentials may come from the environment as ${VARIABLE}.",
        '# url = "https://pypi.org/simple"',
        "# extra-urls = []",
        "# find-links = []",
        "",
        "[code]",
        "# What goes into the image. Default: the files git tracks, else every file",
        "# not named in .gitignore, .dockerignore or .reprolockignore.",
        "# include = [\"**/*.py\", \"configs/**\"]",
        "exclude = []",
        "",
        "[image]",
        'workdir = "/app"',
    ]
    if entrypoint:
        lines.append(f"entrypoint = {value(list(entrypoint))}")
    else:
        lines.append('# entrypoint = ["python", "train.py"]')
    lines += ["# Environment of the image; PYTHONHASHSEED keeps hashing stable between runs.",
              'env = { PYTHONHASHSEED = "0" }', ""]
    return "\n".join(lines)
