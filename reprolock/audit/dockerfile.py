"""A Dockerfile as instructions with their line numbers (for the rules hadolint lacks).

Continuation lines are joined, comments dropped, heredoc bodies (``RUN <<EOF``) kept with
their instruction. Stages remember their alias so ``FROM builder`` is not an image.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import PurePosixPath

_HEREDOC = re.compile(r"<<-?[\"']?([A-Za-z_][A-Za-z0-9_]*)[\"']?")
_ARG_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-+][^}]*)?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    args: str
    line: int  # where it starts, 1-based


@dataclass(frozen=True)
class Stage:
    image: str  # as written, ARG defaults substituted
    line: int
    alias: str | None
    parent_stage: str | None  # FROM an earlier stage's alias
    env: tuple[tuple[str, str, int], ...]  # ENV name, value, line (this stage only)


@dataclass(frozen=True)
class Dockerfile:
    path: str
    instructions: tuple[Instruction, ...]

    def stages(self) -> list[Stage]:
        args: dict[str, str] = {}
        stages: list[Stage] = []
        aliases: set[str] = set()
        current: tuple[str, int, str | None, str | None] | None = None
        env: list[tuple[str, str, int]] = []
        for ins in self.instructions:
            if ins.keyword == "ARG" and current is None:
                name, _, default = ins.args.partition("=")
                args[name.strip()] = default.strip().strip("\"'")
            elif ins.keyword == "FROM":
                if current is not None:
                    stages.append(Stage(*current, env=tuple(env)))
                current, env = _from(ins, args, aliases), []
            elif ins.keyword == "ENV" and current is not None:
                env += [(name, value, ins.line) for name, value in env_pairs(ins.args)]
        if current is not None:
            stages.append(Stage(*current, env=tuple(env)))
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
        whole = line
        while whole.endswith("\\") and i < len(lines):
            whole = whole[:-1] + " "
            nxt = lines[i].strip()
            i += 1
            if not nxt.startswith("#"):
                whole += nxt
        for marker in _HEREDOC.findall(whole):
            while i < len(lines) and lines[i].strip() != marker:
                whole += "\n" + lines[i]
                i += 1
            i += 1
        keyword, _, rest = whole.partition(" ")
        found.append(Instruction(keyword.upper(), rest.strip(), start + 1))
    return Dockerfile(path, tuple(found))


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


def _from(ins: Instruction, args: dict[str, str],
          aliases: set[str]) -> tuple[str, int, str | None, str | None]:
    """(image, line, alias, parent stage) of a FROM; an alias is not an image."""
    words = [w for w in ins.args.split() if not w.startswith("--")] or ["scratch"]
    image = _ARG_REF.sub(lambda m: args.get(m.group(1) or m.group(2), m.group(0)), words[0])
    alias = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
    parent = image.lower() if image.lower() in aliases else None
    if alias:
        aliases.add(alias.lower())
    return image, ins.line, alias, parent
