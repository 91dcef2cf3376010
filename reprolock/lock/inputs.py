"""The inputs a lock depends on, and one digest over them, computed offline and fast."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from reprolock.config import Config
from reprolock.errors import ConfigError
from reprolock.lock.model import InputFile, Inputs, checked

_INCLUDE = re.compile(r"^\s*(?:-r|--requirement|-c|--constraint)(?:\s+|=)(\S+)")
PYPROJECT_INPUT = "pyproject.toml#project.dependencies"
# [code] says what goes into the code layer, which the lock does not describe (README,
# "The lock"): editing it must not stale the lock. config.data already leaves out
# [audit], [run] and require-signature (config.NOT_LOCK_INPUTS).
NOT_HASHED = ("code",)


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON, so a digest does not depend on key order or spacing."""
    import rfc8785

    data: bytes = rfc8785.dumps(value)
    return data


def collect_inputs(config: Config) -> Inputs:
    files: dict[str, InputFile] = {}
    for name in config.requirements:
        _add_file(config, config.root / name, files, seen=set())
    if config.pyproject_dependencies:
        deps = pyproject_dependencies(config.root, config.pyproject_extras)
        files[PYPROJECT_INPUT] = InputFile(
            PYPROJECT_INPUT, hashlib.sha256(canonical_json(deps)).hexdigest())
    return Inputs(
        config=InputFile(config.source_name, config_hash(config)),
        files=tuple(files[k] for k in sorted(files)),
        base=config.base,
        platform=config.platform,
        resolver=config.resolver,
    )


def config_hash(config: Config, *, legacy: bool = False) -> str:
    """sha256 of the config's lock inputs; ``legacy``: as earlier versions hashed it, with
    [code] (so that a lock it wrote is said to be stale for that reason, not a mystery)."""
    locked = {key: value for key, value in config.data.items()
              if legacy or key not in NOT_HASHED}
    return hashlib.sha256(canonical_json(locked)).hexdigest()


def inputs_digest(inputs: Inputs) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(inputs.to_json())).hexdigest()


def _add_file(config: Config, path: Path, files: dict[str, InputFile], seen: set[Path]) -> None:
    """Hash a requirement file and, recursively, the files it includes with -r and -c."""
    resolved = path.resolve()
    if resolved in seen:
        return
    seen.add(resolved)
    try:
        data = resolved.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read requirement input {path}: {exc.strerror}",
                          hint="fix dependencies.requirements or the -r/-c line naming it") from exc
    # the name goes into the lock, which refuses control characters: say so here
    name = checked(_relative(config.root, resolved), "text", "name", error=ConfigError,
                   owner="a requirement input's",
                   hint="rename the file, and the -r/-c line or setting naming it")
    files[name] = InputFile(name, hashlib.sha256(data).hexdigest())
    for line in data.decode("utf-8", "replace").splitlines():
        match = _INCLUDE.match(line)
        if match and "://" not in match.group(1):
            _add_file(config, resolved.parent / match.group(1), files, seen)


def _relative(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def pyproject_dependencies(root: Path, extras: tuple[str, ...] = ()) -> list[str]:
    """[project.dependencies], and those of ``extras`` (normalized names), in order. An
    extra that names the project itself (``all = ["proj[a,b]"]``) brings in those extras:
    the project is not on any index, its own dependencies are."""
    import tomllib

    try:
        with open(root / "pyproject.toml", "rb") as handle:
            doc = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {root / 'pyproject.toml'}: {exc}",
                          hint="fix pyproject.toml or set dependencies.pyproject = false") from exc
    project = doc.get("project", {})
    project = project if isinstance(project, dict) else {}
    deps = _strings(project.get("dependencies", []), "project.dependencies")
    if not extras:
        return deps  # as before extras existed: the inputs digest of older locks holds
    from reprolock.lock.extras import with_extras

    return with_extras(deps, project, extras, _strings)


def _strings(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
        raise ConfigError(f"pyproject.toml: {where} must be a list of strings",
                          hint="see https://packaging.python.org/specifications/pyproject-toml/")
    return list(value)


def describe_changes(old: Inputs, new: Inputs) -> list[str]:
    """Name each input that differs, in words a person can act on."""
    before, after = old.items(), new.items()
    changes = []
    for key in sorted(set(before) | set(after)):
        if key not in before:
            changes.append(f"{key} is new")
        elif key not in after:
            changes.append(f"{key} is no longer an input")
        elif before[key] != after[key]:
            if key.startswith(("config", "file")):
                changes.append(f"{key} changed")
            else:
                changes.append(f"{key} changed: {before[key]!r} → {after[key]!r}")
    return changes


__all__ = ["collect_inputs", "describe_changes", "inputs_digest", "json"]
