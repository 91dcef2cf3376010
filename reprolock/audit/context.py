"""What every rule reads: the project, its files read once, its Python indexed once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reprolock.audit.model import Finding
from reprolock.audit.pyindex import FileFacts
from reprolock.audit.sources import SourceFile
from reprolock.config import Config
from reprolock.inspection.dockerfile import Dockerfile
from reprolock.lock.model import Lock


@dataclass(frozen=True)
class AuditContext:
    """``config`` is None for a plain directory without reprolock.toml: the rules that
    need it (lock, config base, lock inputs) then do not apply."""

    root: Path
    config: Config | None
    files: tuple[SourceFile, ...]
    python: tuple[FileFacts, ...]
    dockerfiles: tuple[Dockerfile, ...]
    requirement_files: tuple[str, ...]  # requirement files found (code set and lock inputs)
    lock_inputs: frozenset[str]  # requirement files a lock pins (exempt from RL101/RL102)
    in_image: frozenset[str]  # the code set; other files were read only as lock inputs
    use_hadolint: bool = True
    lock: Lock | None = None  # read once, when the project has a config and a valid lock
    lock_problem: Finding | None = None  # RL107: why there is no lock to read
    # notebook code cells' shell lines (!pip, %pip, %%bash): (path, file line, command)
    notebook_shell: tuple[tuple[str, int, str], ...] = ()

    def environment_names(self) -> set[str]:
        """Variables set for the run: in code, in [image] env or by a Dockerfile ENV."""
        names = {name for facts in self.python for name in facts.env_sets}
        if self.config is not None:
            names.update(self.config.image.env)
        for dockerfile in self.dockerfiles:
            names.update(dockerfile.env_names())
        return names

    def file(self, path: str) -> SourceFile | None:
        for source in self.files:
            if source.path == path:
                return source
        return None
