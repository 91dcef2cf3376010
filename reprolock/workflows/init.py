"""The init workflow: inspect a project and write a starter reprolock.toml, with a
requirements.in proposed from the code's imports where there is no requirement file."""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reprolock._internal.files import atomic_write_text
from reprolock.config import CONFIG_NAME
from reprolock.errors import ConfigError
from reprolock.inspection.project import (
    PROPOSAL_NAME,
    ProjectGuess,
    entry_note,
    guess_project,
    ignore_reprolock_dir,
    propose_requirements,
    render_config,
    render_proposal,
)


@dataclass(frozen=True)
class InitOptions:
    base: str | None = None
    entrypoint: str | None = None  # a command line, split as a shell would
    resolver: str = "uv"
    requirements: tuple[str, ...] = ()  # default: found in the project
    force: bool = False


@dataclass(frozen=True)
class InitOutcome:
    path: Path
    base: str
    resolver: str
    requirements: tuple[str, ...]
    entrypoint: tuple[str, ...]
    proposed: Path | None  # the requirements.in written from the imports
    gitignore: bool  # .reprolock/ was added to .gitignore
    note: str | None

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "base": self.base, "resolver": self.resolver,
                "requirements": list(self.requirements), "entrypoint": list(self.entrypoint),
                "proposed": str(self.proposed) if self.proposed else None,
                "gitignore": self.gitignore, "notes": [self.note] if self.note else []}


def init_project(directory: Path, options: InitOptions) -> InitOutcome:
    """Write ``directory``/reprolock.toml; nothing is written if anything fails."""
    from reprolock.resolver import check_resolver_name

    check_resolver_name(options.resolver)
    target = directory / CONFIG_NAME
    if target.exists() and not options.force:
        raise ConfigError(f"{target} exists", hint="pass --force to overwrite it")
    if not directory.is_dir():
        raise ConfigError(f"{directory} is not a directory")
    guess = _with_requirements(directory, guess_project(directory), options.requirements)
    proposal = None
    if not guess.requirements and not guess.pyproject_dependencies:
        proposal = _propose(directory)
        guess = dataclasses.replace(guess, requirements=(PROPOSAL_NAME,))
    base = options.base or guess.dockerfile_base
    if not base:
        raise ConfigError(
            f"no base image given and no Dockerfile FROM found in {directory}",
            hint="pass --base, e.g. --base python:3.11-slim@sha256:... or oci-layout:DIR:TAG")
    entry = tuple(shlex.split(options.entrypoint)) if options.entrypoint else guess.entrypoint
    guess = dataclasses.replace(guess, entrypoint=entry)
    text = render_config(base=base, resolver=options.resolver, guess=guess, entrypoint=entry)
    if proposal is not None:  # only once nothing can fail any more: no stray proposal
        atomic_write_text(directory / PROPOSAL_NAME, proposal)
    atomic_write_text(target, text)
    return InitOutcome(target, base, options.resolver, guess.requirements, entry,
                       directory / PROPOSAL_NAME if proposal is not None else None,
                       ignore_reprolock_dir(directory), entry_note(guess))


def _with_requirements(directory: Path, guess: ProjectGuess,
                       requirements: tuple[str, ...]) -> ProjectGuess:
    if not requirements:
        return guess
    missing = [r for r in requirements if not (directory / r).is_file()]
    if missing:
        raise ConfigError(f"--requirements names {missing[0]!r}, which does not exist in "
                          f"{directory}", hint="pass a path relative to the project")
    return dataclasses.replace(guess, requirements=requirements)


def _propose(directory: Path) -> str:
    """A requirements.in proposal for a project without requirement inputs; an error
    when the code imports nothing to propose."""
    where = directory / PROPOSAL_NAME
    if where.exists() or where.is_symlink():  # a directory or a dangling link: not ours
        raise ConfigError(f"{where} is not a requirement file, and init does not replace it",
                          hint="pass --requirements FILE")
    proposal = propose_requirements(directory)
    if not (proposal.required or proposal.optional):
        raise ConfigError(
            f"found no requirement inputs in {directory} (requirements.in, requirements.txt, "
            "or [project.dependencies] in pyproject.toml), and no third-party imports in "
            "its code to propose some from",
            hint="create requirements.in listing what the training code imports, or pass "
            "--requirements FILE")
    return render_proposal(proposal)


__all__ = ["InitOptions", "InitOutcome", "init_project"]
