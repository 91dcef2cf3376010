"""What ``reprolock init`` can tell about a project from its files alone."""

from __future__ import annotations

import json
import os
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

from reprolock.inspection.dockerfile import base_and_command, parse_dockerfile
from reprolock.inspection.imports import ImportSite

_ENTRY_NAMES = ("train.py", "main.py", "run.py", "src/train.py")
_EXTRA = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_REQ_NAMES = ("requirements.in", "requirements/base.in", "requirements/main.in",
              "requirements.txt")


PROPOSAL_NAME = "requirements.in"
#: Where a ``src/`` layout's code sits in the image: the project itself is not installed
#: there (only its locked dependencies are), so its packages are found through PYTHONPATH.
SRC_PATH_NOTE = "the project itself is not installed in the image, so set PYTHONPATH"
_SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".reprolock", ".tox",
              ".nox", "site-packages", "build", "dist"}


@dataclass(frozen=True)
class EntryCandidate:
    """A command that could start the training, found where no entrypoint was."""

    command: tuple[str, ...]
    found: str  # what suggests it: "src/pkg/__main__.py", "[project.scripts] train"
    src_layout: bool = False  # needs PYTHONPATH=<workdir>/src in the image


@dataclass(frozen=True)
class ProjectGuess:
    requirements: tuple[str, ...]
    pyproject_dependencies: bool
    entrypoint: tuple[str, ...]
    dockerfile_base: str | None
    dockerfile: str | None
    candidates: tuple[EntryCandidate, ...] = ()  # when no entrypoint was found
    src_layout: bool = False
    extras: tuple[str, ...] = ()  # [project.optional-dependencies], offered in a comment


def guess_project(root: Path) -> ProjectGuess:
    requirements = tuple(n for n in _REQ_NAMES if (root / n).is_file())
    if "requirements.in" in requirements and "requirements.txt" in requirements:
        requirements = tuple(r for r in requirements if r != "requirements.txt")
    dockerfile = next((n for n in ("Dockerfile", "docker/Dockerfile") if (root / n).is_file()),
                      None)
    base, docker_entry = _dockerfile(root / dockerfile) if dockerfile else (None, ())
    entry = docker_entry or _entry_script(root)
    src = _src_packages(root)
    return ProjectGuess(requirements[:1] if requirements else (), _has_pyproject_deps(root),
                        entry, base, dockerfile,
                        () if entry else _entry_candidates(root, src), bool(src),
                        _pyproject_extras(root))


def _src_packages(root: Path) -> list[str]:
    """The packages of a ``src/`` layout (``src/NAME/__init__.py``)."""
    src = root / "src"
    if not src.is_dir() or src.is_symlink():
        return []
    return sorted(p.parent.name for p in src.glob("*/__init__.py") if p.is_file())


def _entry_candidates(root: Path, src: list[str]) -> tuple[EntryCandidate, ...]:
    """What could start the training where no train.py/main.py/run.py is: a ``src/``
    package's ``__main__.py``, a ``[project.scripts]`` entry, a ``train*.py`` deeper down."""
    found = [EntryCandidate(("python", "-m", name), f"src/{name}/__main__.py", True)
             for name in src if (root / "src" / name / "__main__.py").is_file()]
    for name, target in _project_scripts(root):
        module, _, func = target.partition(":")
        top = module.split(".")[0]
        call = f"import sys; from {module} import {func}; sys.exit({func}())" if func \
            else f"import runpy; runpy.run_module({module!r}, run_name='__main__')"
        found.append(EntryCandidate(("python", "-c", call), f"[project.scripts] {name}",
                                    top in src))
    found += [EntryCandidate(("python", rel), rel) for rel in _train_scripts(root)]
    return tuple(found[:8])


def _project_scripts(root: Path) -> list[tuple[str, str]]:
    doc = _pyproject(root)
    project = doc.get("project") if doc else None
    scripts = project.get("scripts") if isinstance(project, dict) else None
    if not isinstance(scripts, dict):
        return []
    valid = re.compile(r"^[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?$")  # a guess's input, not trusted
    return [(str(k), v.replace(" ", "")) for k, v in sorted(scripts.items())
            if isinstance(v, str) and valid.match(v.replace(" ", ""))]


def _train_scripts(root: Path, depth: int = 3) -> list[str]:
    """``train*.py`` in folders below the root (the root's own were looked for already)."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS
                             and not d.startswith(".") and len(rel.parts) < depth)
        if rel.parts:
            found += [(rel / f).as_posix() for f in sorted(filenames)
                      if f.startswith("train") and f.endswith(".py")]
    return found


def entry_note(guess: ProjectGuess) -> str | None:
    """What ``init`` tells a user whose project names no entrypoint it could find."""
    if guess.entrypoint:
        return None
    looked = ", ".join(_ENTRY_NAMES)
    text = f"no entrypoint found (looked for {looked} and a Dockerfile CMD)"
    if guess.src_layout:
        text += ("; this is a src/ layout and " + SRC_PATH_NOTE + "=/app/src in [image] "
                 "env to start its modules with python -m")
    if guess.candidates:
        text += "; candidates: " + "; ".join(
            f"{shlex.join(c.command)} ({c.found})" for c in guess.candidates)
    return text + ("; set [image] entrypoint in reprolock.toml (or pass --entrypoint), "
                   "else 'reprolock run' needs '-- CMD ...'")


def _dockerfile(path: Path) -> tuple[str | None, tuple[str, ...]]:
    """The base image and the command of the final stage of a Dockerfile."""
    text = path.read_text(encoding="utf-8", errors="replace")
    return base_and_command(parse_dockerfile(path.name, text))


def _entry_script(root: Path) -> tuple[str, ...]:
    for name in _ENTRY_NAMES:
        if (root / name).is_file():
            return ("python", name)
    return ()


def _pyproject(root: Path) -> dict[str, object] | None:
    path = root / "pyproject.toml"
    if not path.is_file():
        return None
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError, RecursionError):
        return None


def _has_pyproject_deps(root: Path) -> bool:
    doc = _pyproject(root)
    project = doc.get("project") if doc else None
    return isinstance(project, dict) and bool(project.get("dependencies"))


def _pyproject_extras(root: Path) -> tuple[str, ...]:
    doc = _pyproject(root)
    project = doc.get("project") if doc else None
    table = project.get("optional-dependencies") if isinstance(project, dict) else None
    if not isinstance(table, dict):
        return ()
    # only names the config accepts: the comment is meant to be uncommented as it is
    return tuple(sorted(k for k in table if isinstance(k, str) and _EXTRA.fullmatch(k)))


def extras_naming(root: Path) -> dict[str, tuple[str, ...]]:
    """Each distribution (normalized name) that an extra of pyproject.toml names, and the
    extras (normalized) that name it: to say which extra to lock for a missing import."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    doc = _pyproject(root)
    project = doc.get("project") if doc else None
    table = project.get("optional-dependencies") if isinstance(project, dict) else None
    found: dict[str, set[str]] = {}
    for extra, reqs in (table.items() if isinstance(table, dict) else ()):
        for text in reqs if isinstance(reqs, list) else ():
            try:
                name = canonicalize_name(Requirement(text).name)
            except (InvalidRequirement, TypeError):
                continue  # the lock reads these strictly; a hint needs none of that
            found.setdefault(name, set()).add(canonicalize_name(str(extra)))
    return {name: tuple(sorted(extras)) for name, extras in found.items()}


# --- a requirements.in proposal, from the imports ----------------------------------------


@dataclass(frozen=True)
class Proposal:
    """The distributions the code's imports suggest, for a project without requirement
    files: (distribution, import site) pairs, the first site of each module."""

    required: tuple[tuple[str, ImportSite], ...]
    optional: tuple[tuple[str, ImportSite], ...]  # imported only under try/except


def propose_requirements(root: Path) -> Proposal:
    """The third-party imports of the files that would go into the image (the same files
    'reprolock lock' scans, tracked or not yet), mapped to distribution names."""
    from reprolock.config import Config
    from reprolock.inspection.codeset import collect_code
    from reprolock.inspection.imports import distribution_for, scan_files

    root = root.resolve()
    code = collect_code(Config(root=root, source=root / "reprolock.toml", data={}, base=""))
    report = scan_files(root, [*(f.path for f in code.files if f.link_target is None),
                               *code.untracked])
    required: dict[str, ImportSite] = {}
    optional: dict[str, ImportSite] = {}
    for module, sites in report.third_party().items():
        needed = [s for s in sites if not s.optional]
        (required if needed else optional).setdefault(distribution_for(module),
                                                      (needed or sites)[0])
    return Proposal(tuple(sorted(required.items())),
                    tuple(sorted(d for d in optional.items() if d[0] not in required)))


def render_proposal(proposal: Proposal) -> str:
    """The requirements.in ``init`` writes: unpinned, each line saying why it is there."""
    def line(dist: str, site: ImportSite) -> str:
        return f"{dist:<24} # import {site.module} ({site.path}:{site.line})"

    lines = [
        "# Proposed by 'reprolock init' from the imports of the code: REVIEW IT before",
        "# 'reprolock lock'. Import names are mapped to distribution names where they",
        "# differ (sklearn -> scikit-learn), which is a guess; remove what the image must",
        "# not hold, add what the code loads without importing it, and pin or bound",
        "# versions (numpy>=1.26,<2) where you want them fixed. The lock pins the rest.",
        *(line(d, s) for d, s in proposal.required),
    ]
    if proposal.optional:
        lines += ["", "# Imported only under try/except ImportError: uncomment if needed.",
                  *(f"# {line(d, s)}" for d, s in proposal.optional)]
    return "\n".join(lines) + "\n"


# --- .gitignore -----------------------------------------------------------------------

REPROLOCK_DIR_PATTERN = ".reprolock/"


def ignore_reprolock_dir(root: Path) -> bool:
    """Add ``.reprolock/`` (built images, run records, caches of the project) to the
    project's .gitignore, creating it if need be. Atomic, and idempotent: False when an
    entry already ignores it (or .gitignore is not a regular file, which is left alone)."""
    from reprolock._internal.files import atomic_write_text

    path = root / ".gitignore"
    if path.is_symlink() or (path.exists() and not path.is_file()):
        return False
    text = path.read_text(encoding="utf-8", errors="surrogateescape") if path.exists() else ""
    entries = {line.strip().lstrip("/").rstrip("/") for line in text.splitlines()}
    if ".reprolock" in entries or ".reprolock/*" in entries:
        return False
    if text and not text.endswith("\n"):
        text += "\n"
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    atomic_write_text(path, text + "# reprolock: built images, run records, provenance\n"
                      f"{REPROLOCK_DIR_PATTERN}\n", mode=mode)
    return True


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
        *([f"# Extras of [project.optional-dependencies] to lock too: {', '.join(guess.extras)}",
           f"# extras = [{value(guess.extras[0])}]"] if guess.extras else []),
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
        lines += _entry_comment(guess)
    lines += ["# Environment of the image; PYTHONHASHSEED keeps hashing stable between runs.",
              'env = { PYTHONHASHSEED = "0" }', ""]
    return "\n".join(lines)


def _entry_comment(guess: ProjectGuess) -> list[str]:
    """The commented entrypoint of a project where none was found: what was looked for,
    what could do, and what a src/ layout needs."""
    lines = [f"# No entrypoint found (looked for {', '.join(_ENTRY_NAMES)} and a Dockerfile",
             "# CMD): without one, 'reprolock run' needs '-- CMD ...'. Set the command that",
             "# starts the training:"]
    if guess.src_layout:
        lines += ["# This is a src/ layout and " + SRC_PATH_NOTE + ", e.g.",
                  '# env = { PYTHONHASHSEED = "0", PYTHONPATH = "/app/src" }']
    for candidate in guess.candidates:
        words = ", ".join(json.dumps(w, ensure_ascii=False) for w in candidate.command)
        lines.append(f"# entrypoint = [{words}]  # {candidate.found}")
    if not guess.candidates:
        lines.append('# entrypoint = ["python", "train.py"]')
    return lines
