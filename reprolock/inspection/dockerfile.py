"""A Dockerfile as instructions with their line numbers, and its stages.

The one reader of Dockerfiles: ``reprolock init`` takes the base image and the command
from it, the audit's rules read its instructions and stages. Continuation lines are
joined (comment and empty lines inside a continuation are dropped, as Docker drops them),
heredoc bodies (``RUN <<EOF``) are kept with their instruction, ``ARG`` defaults before
the first ``FROM`` are substituted (also in ``${NAME:-default}`` form), and a stage
remembers its alias so that ``FROM builder`` is not taken for an image.

    >>> df = parse_dockerfile("Dockerfile", "ARG V=3.11\\nFROM python:${V}\\nCMD t.py\\n")
    >>> base_and_command(df)
    ('python:3.11', ('t.py',))
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import PurePosixPath

_HEREDOC = re.compile(r"<<-?[\"']?([A-Za-z_][A-Za-z0-9_]*)[\"']?")
_ARG_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-+][^}]*)?\}|\$([A-Za-z_][A-Za-z0-9_]*)")

#: An ENTRYPOINT as parsed: its words and whether it is in exec (JSON) form.
Entrypoint = tuple[tuple[str, ...], bool]


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    args: str
    line: int  # where it starts, 1-based


@dataclass(frozen=True)
class Stage:
    """One ``FROM`` and what its own instructions set (not what it inherits)."""

    image: str  # as written, ARG defaults substituted
    line: int
    alias: str | None
    parent_stage: str | None  # FROM an earlier stage's alias (lower case)
    env: tuple[tuple[str, str, int], ...] = ()  # ENV name, value, line
    entrypoint: Entrypoint | None = None  # the last valid ENTRYPOINT
    cmd: tuple[str, ...] | None = None  # the last valid CMD


@dataclass(frozen=True)
class Dockerfile:
    path: str
    instructions: tuple[Instruction, ...]

    def stages(self) -> list[Stage]:
        args: dict[str, str] = {}
        stages: list[Stage] = []
        aliases: set[str] = set()
        for ins in self.instructions:
            if ins.keyword == "ARG" and not stages and "=" in ins.args:
                # an ARG without a default stays a reference: its value comes at build time
                name, _, default = ins.args.partition("=")
                args[name.strip()] = default.strip().strip("\"'")
            elif ins.keyword == "FROM":
                stages.append(_from(ins, args, aliases))
            elif stages:
                stages[-1] = _in_stage(stages[-1], ins)
        return stages

    def env_names(self) -> set[str]:
        return {name for ins in self.instructions if ins.keyword == "ENV"
                for name, _ in env_pairs(ins.args)}


def is_dockerfile(path: str) -> bool:
    name = PurePosixPath(path).name.lower()
    return (name in ("dockerfile", "containerfile") or name.startswith("dockerfile.")
            or name.endswith(".dockerfile") or name.endswith(".containerfile"))


def parse_dockerfile(path: str, text: str) -> Dockerfile:
    found: list[Instruction] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        start = i
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        whole, i = _continued(lines, i, line)
        for marker in _HEREDOC.findall(whole):
            while i < len(lines) and lines[i].strip() != marker:
                whole += "\n" + lines[i]
                i += 1
            i += 1
        keyword, *rest = whole.split(None, 1)
        found.append(Instruction(keyword.upper(), rest[0].strip() if rest else "", start + 1))
    return Dockerfile(path, tuple(found))


def _continued(lines: list[str], i: int, whole: str) -> tuple[str, int]:
    """``whole`` with the lines it continues onto, and the index of the line after them."""
    while whole.endswith("\\") and i < len(lines):
        nxt = lines[i].strip()
        i += 1
        if nxt and not nxt.startswith("#"):
            whole = whole[:-1] + " " + nxt
    return whole, i


def env_pairs(args: str) -> list[tuple[str, str]]:
    """``ENV A=1 B="x y"`` and the legacy ``ENV A 1`` form."""
    try:
        words = shlex.split(args, comments=False, posix=True)
    except ValueError:
        return []
    if not words:
        return []
    if "=" not in words[0]:
        return [(words[0], " ".join(words[1:]))]
    return [(w.partition("=")[0], w.partition("=")[2]) for w in words if "=" in w]


def _from(ins: Instruction, args: dict[str, str], aliases: set[str]) -> Stage:
    """The stage a FROM starts; an alias of an earlier stage is not an image."""
    words = [w for w in ins.args.split() if not w.startswith("--")] or ["scratch"]
    image = _ARG_REF.sub(lambda m: args.get(m.group(1) or m.group(2), m.group(0)), words[0])
    alias = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
    parent = image.lower() if image.lower() in aliases else None
    if alias:
        aliases.add(alias.lower())
    return Stage(image, ins.line, alias, parent)


def _in_stage(stage: Stage, ins: Instruction) -> Stage:
    """``stage`` with what ``ins`` sets (ENV, ENTRYPOINT, CMD); a CMD or ENTRYPOINT that
    does not parse is passed over, as a guess's input is not trusted."""
    if ins.keyword == "ENV":
        return dataclasses.replace(stage, env=stage.env + tuple(
            (name, value, ins.line) for name, value in env_pairs(ins.args)))
    if ins.keyword not in ("ENTRYPOINT", "CMD"):
        return stage
    words = _exec_words(ins.args)
    if words is None:
        return stage
    if ins.keyword == "CMD":
        return dataclasses.replace(stage, cmd=words)
    return dataclasses.replace(stage, entrypoint=(words, ins.args.startswith("[")))


def _exec_words(value: str) -> tuple[str, ...] | None:
    try:
        parsed = json.loads(value) if value.startswith("[") else shlex.split(value)
    except (ValueError, RecursionError):  # a Dockerfile is untrusted input
        return None
    if not isinstance(parsed, list) or not all(isinstance(p, str) for p in parsed):
        return None
    return tuple(parsed)


# --- what the final stage runs ---------------------------------------------------------


def base_and_command(dockerfile: Dockerfile) -> tuple[str | None, tuple[str, ...]]:
    """The base image and the command of the final stage, as Docker would run it.

    A stage ``FROM`` an earlier stage is followed back to that stage's image and inherits
    its ENTRYPOINT and CMD. The base is None where no FROM names an image (``scratch``
    or an ARG without a default); a final ``scratch`` stage takes the last image named.
    """
    resolved: dict[str, tuple[str, Entrypoint | None, tuple[str, ...] | None]] = {}
    last_image: str | None = None
    final: tuple[str, Entrypoint | None, tuple[str, ...] | None] | None = None
    for stage in dockerfile.stages():
        final = _resolve(stage, resolved.get(stage.parent_stage or ""))
        if stage.alias:
            resolved[stage.alias.lower()] = final
        if _is_image(final[0]):
            last_image = final[0]
    if final is None:
        return None, ()
    base, entrypoint, cmd = final
    return base if _is_image(base) else last_image, _command(entrypoint, cmd)


def _resolve(stage: Stage, parent: tuple[str, Entrypoint | None, tuple[str, ...] | None]
             | None) -> tuple[str, Entrypoint | None, tuple[str, ...] | None]:
    """(image, ENTRYPOINT, CMD) of ``stage`` with what it inherits from ``parent``.

    Docker resets an inherited CMD when the stage sets its own ENTRYPOINT."""
    if parent is None:
        return stage.image, stage.entrypoint, stage.cmd
    image, entrypoint, cmd = parent
    if stage.cmd is not None:
        cmd = stage.cmd
    elif stage.entrypoint is not None:
        cmd = None
    return image, stage.entrypoint or entrypoint, cmd


def _is_image(name: str) -> bool:
    return name.lower() != "scratch" and "$" not in name


def _command(entrypoint: Entrypoint | None, cmd: tuple[str, ...] | None) -> tuple[str, ...]:
    if entrypoint is None:
        return cmd or ()
    words, exec_form = entrypoint
    if not exec_form:  # a shell-form ENTRYPOINT ignores CMD
        return words
    return words + (cmd or ())
