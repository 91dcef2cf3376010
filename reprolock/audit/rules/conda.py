"""RL309 (and the requirement-file rules) in conda environment files.

``conda env create -f environment.yml`` installs the file's ``dependencies``: each conda
entry without one exact version is RL309, as in a ``conda install`` command, and each
entry of its ``pip:`` list is judged as the same line of a requirement file installed
directly (RL101, RL102, RL105, RL106, RL310). Channels are not reported: a channel cannot
be pinned (a nightly channel is RL310 only where a command names it).

The file is read with PyYAML's composer, which keeps every node's line and builds no
Python objects from tags; a file that is not YAML is RL003, never a crash.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Iterator
from typing import Any

from reprolock.audit.context import AuditContext
from reprolock.audit.model import Finding, Severity
from reprolock.audit.rules import requirements
from reprolock.audit.shell import conda_pinned

_NAME = re.compile(r"(^|/)(environment|conda)\.ya?ml$", re.IGNORECASE)
# conda environment files are a few kilobytes; the pure-Python parser (used when
# libyaml is missing) takes about 0.4 s for this many bytes, so larger ones are not parsed
MAX_YAML_BYTES = 256 * 1024
_STR = "tag:yaml.org,2002:str"


def is_environment_file(path: str) -> bool:
    return bool(_NAME.search(path))


@functools.cache
def _yaml() -> Any:
    """PyYAML, or None: it is not a dependency of reprolock yet, and without it the files
    stay RL005. Imported by name because it ships no type stubs (types-PyYAML does)."""
    try:
        return importlib.import_module("yaml")
    except ImportError:
        return None


def yaml_available() -> bool:
    return _yaml() is not None


def check(ctx: AuditContext) -> Iterator[Finding]:
    files = [(source.path, source.text()) for source in ctx.files
             if is_environment_file(source.path) and source.path in ctx.in_image]
    # PyYAML is imported only when there is a file to read (it costs start-up time)
    if not files or not yaml_available():
        return
    locked = requirements.locked_pins(ctx)
    for path, text in files:
        if text is None:
            continue  # not read: RL003 or RL002 says so already
        entries, problem = _entries(path, text)
        if problem is not None:
            yield problem
        for line, spec, pip in entries:
            if pip:
                yield from requirements.check_entry(path, line, spec, locked)
            elif not conda_pinned(spec):
                yield _unpinned(path, line, spec)


def _unpinned(path: str, line: int, spec: str) -> Finding:
    shown = spec if len(spec) <= 60 else spec[:57] + "..."
    return Finding("RL309", Severity.ERROR, path, line,
                   f"{shown}: no exact version in the conda environment file, so the solver "
                   "picks whatever is newest at build time; pin name=version (or use a "
                   "conda-lock file)")


def _entries(path: str, text: str) -> tuple[list[tuple[int, str, bool]], Finding | None]:
    """(line, spec, is a pip entry) of every string in ``dependencies``, or why the file
    could not be read."""
    if len(text.encode("utf-8", errors="replace")) > MAX_YAML_BYTES:
        return [], Finding("RL003", Severity.INFO, path, 0, "not audited: a conda "
                           f"environment file over the audit's {MAX_YAML_BYTES} byte YAML limit")
    yaml = _yaml()
    try:
        root = _compose(yaml, text)
    except RecursionError:
        return [], _malformed(path, 0, "nested too deeply")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or exc.__class__.__name__
        return [], _malformed(path, mark.line + 1 if mark is not None else 0, str(reason))
    dependencies = _value(root, "dependencies")
    if dependencies is None or dependencies.id != "sequence":
        return [], None
    found: list[tuple[int, str, bool]] = []
    for node in dependencies.value:
        if node.id == "scalar" and node.tag == _STR:
            found.append((node.start_mark.line + 1, node.value, False))
        pip = _value(node, "pip")
        if pip is not None and pip.id == "sequence":
            found += [(item.start_mark.line + 1, item.value, True) for item in pip.value
                      if item.id == "scalar" and item.tag == _STR]
    return found, None


def _compose(yaml: Any, text: str) -> Any:
    """The document's node tree (no tag is constructed, no alias expanded); libyaml's
    loader when it is built in: faster, and it bounds the nesting depth."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.compose(text, Loader=loader)


def _value(node: Any, key: str) -> Any:
    """The value of ``key`` in a mapping node, or None."""
    if node is None or node.id != "mapping":
        return None
    for name, value in node.value:
        if name.id == "scalar" and name.value == key:
            return value
    return None


def _malformed(path: str, line: int, reason: str) -> Finding:
    return Finding("RL003", Severity.INFO, path, line,
                   f"not audited: the conda environment file is not valid YAML ({reason})")
