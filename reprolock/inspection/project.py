"""What ``reprolock init`` can tell about a project from its files alone."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

_ARG_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
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


@dataclass
class _Stage:
    """What a Dockerfile stage would run: its own or its parent stage's ENTRYPOINT and CMD."""

    base: str
    entrypoint: tuple[tuple[str, ...], bool] | None = None  # (words, exec form)
    cmd: tuple[str, ...] | None = None
    cmd_inherited: bool = False


def _dockerfile(path: Path) -> tuple[str | None, tuple[str, ...]]:
    """The base image and the command of the final stage of a Dockerfile.

    A stage may start ``FROM`` an earlier stage (its alias is followed back to an image)
    and inherits that stage's ENTRYPOINT and CMD; ``ARG`` defaults before the first FROM
    are substituted. The command is ENTRYPOINT + CMD, as Docker runs it.
    """
    text = path.read_text(encoding="utf-8", errors="replace")
    args: dict[str, str] = {}
    stages: dict[str, _Stage] = {}
    stage: _Stage | None = None
    last_image: str | None = None
    for keyword, rest in _instructions(text):
        if keyword == "ARG" and stage is None and "=" in rest:
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip().strip("\"'")
        elif keyword == "FROM":
            stage = _from_stage(rest, args, stages)
            if stage.base.lower() != "scratch" and "$" not in stage.base:
                last_image = stage.base
        elif stage is not None and keyword in ("ENTRYPOINT", "CMD"):
            words = _exec_words(rest)
            if words is None:
                continue
            if keyword == "ENTRYPOINT":
                stage.entrypoint = (words, rest.lstrip().startswith("["))
                if stage.cmd_inherited:  # Docker resets an inherited CMD here
                    stage.cmd, stage.cmd_inherited = None, False
            else:
                stage.cmd, stage.cmd_inherited = words, False
    if stage is None:
        return None, ()
    base = stage.base if stage.base.lower() != "scratch" and "$" not in stage.base else None
    return base or last_image, _command(stage)


def _instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) of each instruction: comments dropped, continuations joined."""
    found: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        if whole:
            keyword, *rest = whole.split(None, 1)
            found.append((keyword.upper(), rest[0] if rest else ""))
    return found


def _from_stage(rest: str, args: dict[str, str], stages: dict[str, _Stage]) -> _Stage:
    words = [w for w in rest.split() if not w.startswith("--")] or ["scratch"]
    image = _ARG_REF.sub(lambda m: args.get(m.group(1) or m.group(2), m.group(0)), words[0])
    parent = stages.get(image.lower())
    if parent is not None:
        stage = _Stage(parent.base, parent.entrypoint, parent.cmd, parent.cmd is not None)
    else:
        stage = _Stage(image)
    if len(words) >= 3 and words[1].lower() == "as":
        stages[words[2].lower()] = stage
    return stage


def _exec_words(value: str) -> tuple[str, ...] | None:
    try:
        parsed = json.loads(value) if value.startswith("[") else shlex.split(value)
    except (ValueError, RecursionError):  # a Dockerfile is a guess's input, not trusted
        return None
    if not isinstance(parsed, list) or not all(isinstance(p, str) for p in parsed):
        return None
    return tuple(parsed)


def _command(stage: _Stage) -> tuple[str, ...]:
    if stage.entrypoint is None:
        return stage.cmd or ()
    words, exec_form = stage.entrypoint
    if not exec_form:  # a shell-form ENTRYPOINT ignores CMD
        return words
    return words + (stage.cmd or ())


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
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError, RecursionError):
        return False
    project = doc.get("project")
    return isinstance(project, dict) and bool(project.get("dependencies"))


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
