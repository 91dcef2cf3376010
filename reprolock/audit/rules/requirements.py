"""RL101/RL102/RL105/RL106: requirement files, read line by line as pip reads them.

A file that a lock pins (``[dependencies] requirements`` and what it includes; ``*.in``
in a project without reprolock.toml, as pip-tools names its inputs) may hold ranges:
only RL105/RL106 apply to it. Every other requirement file is installed as it is, so
each requirement must be pinned (RL101) and hashed (RL102).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from reprolock.audit.context import AuditContext
from reprolock.audit.model import Finding, Severity
from reprolock.resolver.requested import logical_lines as requested_lines

_NAME = re.compile(r"(^|/)(requirements/[^/]+\.(txt|in)|[^/]*requirements[^/]*\.(txt|in)"
                   r"|constraints[^/]*\.txt)$")
_VCS = re.compile(r"(^|@\s*)(git|hg|svn|bzr)\+", re.IGNORECASE)
_COMMIT = re.compile(r"@[0-9a-f]{40}(#|$)")
_URL = re.compile(r"(^|@\s*)(https?|ftp)://", re.IGNORECASE)
_URL_HASH = re.compile(r"#(sha256|sha384|sha512|md5)=[0-9a-fA-F]+")
_INCLUDE = re.compile(r"^(-r|--requirement|-c|--constraint)(\s+|=)(\S+)")
_EDITABLE = re.compile(r"^(-e|--editable)(\s+|=)(\S+)")


@dataclass(frozen=True)
class LogicalLine:
    line: int  # where it starts
    text: str  # comments removed, continuations joined


def is_requirement_file(path: str) -> bool:
    return bool(_NAME.search(path))


def logical_lines(text: str) -> list[LogicalLine]:
    return [LogicalLine(number, line) for number, line in requested_lines(text)]


@dataclass(frozen=True)
class Include:
    path: str  # relative to the project root
    line: int  # of the -r/-c line in the including file
    option: str  # as written: -r, --requirement, -c, --constraint


def includes(path: str, text: str) -> list[Include]:
    """Files ``-r``/``-c`` name, relative to the project root (those outside it and URLs
    are not followed)."""
    folder = PurePosixPath(path).parent
    found = []
    for logical in logical_lines(text):
        match = _INCLUDE.match(logical.text)
        if match and "://" not in match.group(3):
            target = _normalize(folder / match.group(3))
            if target is not None:
                found.append(Include(target, logical.line, match.group(1)))
    return found


def _normalize(path: PurePosixPath) -> str | None:
    """``a/../b`` → ``b``; None for a path that leaves the project (or is absolute)."""
    if path.is_absolute():
        return None
    parts: list[str] = []
    for part in path.parts:
        if part == "..":
            if not parts:
                return None
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def check(ctx: AuditContext) -> Iterator[Finding]:
    locked = locked_pins(ctx)
    for path in ctx.requirement_files:
        source = ctx.file(path)
        text = source.text() if source is not None else None
        if text is None:
            continue
        exempt = _exempt(ctx, path)
        for logical in logical_lines(text):
            yield from _check_line(path, logical, pins_required=not exempt, locked=locked)


def check_entry(path: str, line: int, text: str,
                locked: frozenset[tuple[str, str]]) -> Iterator[Finding]:
    """One line as it would stand in a requirement file installed directly (pinned and
    hashed, or covered by the lock): the ``pip:`` list of a conda environment file."""
    yield from _check_line(path, LogicalLine(line, text.strip()), pins_required=True,
                           locked=locked)


def _exempt(ctx: AuditContext, path: str) -> bool:
    return path in ctx.lock_inputs or (ctx.config is None and path.endswith(".in"))


def locked_pins(ctx: AuditContext) -> frozenset[tuple[str, str]]:
    """(name, version) of every package the project's lock pins with its hashes."""
    if ctx.lock is None:
        return frozenset()
    return frozenset((_canonical(p.name), p.version) for p in ctx.lock.packages if p.hashes)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def file_judge(ctx: AuditContext, folder: str = "") -> Callable[[str], str]:
    """How a requirement file named by ``pip install -r PATH`` (in a Dockerfile or a
    script in ``folder``) stands (see reprolock.audit.shell.FileJudge); PATH is matched
    to the project's requirement files by :func:`match_requirement_file`."""
    locked = locked_pins(ctx)
    cache: dict[str, str] = {}

    def judge(written: str) -> str:
        path = match_requirement_file(ctx.requirement_files, written, folder)
        if path is None:
            return "unknown"
        if path not in cache:
            cache[path] = _file_state(ctx, path, locked)
        return cache[path]

    return judge


def match_requirement_file(paths: tuple[str, ...], written: str, folder: str) -> str | None:
    """The file of ``paths`` that ``written`` (a path in the image, ``/app/req.txt``)
    most likely is: the longest common tail, then one under ``folder`` (the build
    context is often the Dockerfile's folder), then the shallowest; None when that
    leaves more than one (the audit does not guess)."""
    wanted = PurePosixPath(written.lstrip("./")).parts
    scored: dict[str, int] = {}
    for path in paths:
        parts = PurePosixPath(path).parts
        common = 0
        while common < min(len(parts), len(wanted)) and \
                parts[-1 - common] == wanted[-1 - common]:
            common += 1
        if common:
            scored[path] = common
    if not scored:
        return None
    best = max(scored.values())
    found = [p for p, score in scored.items() if score == best]
    inside = [p for p in found if p.startswith(folder + "/")] if folder else []
    found = inside or found
    shallowest = min(p.count("/") for p in found)
    found = [p for p in found if p.count("/") == shallowest]
    return found[0] if len(found) == 1 else None


def _file_state(ctx: AuditContext, path: str, locked: frozenset[tuple[str, str]]) -> str:
    if _exempt(ctx, path):
        return "lock"
    source = ctx.file(path)
    text = source.text() if source is not None else None
    if text is None:
        return "unknown"
    found = [f for logical in logical_lines(text)
             for f in _check_line(path, logical, pins_required=True, locked=locked)]
    if any(f.severity == Severity.ERROR for f in found):
        return "reported"  # its own lines are RL101/RL105 findings already
    if not found:
        hashed = "--hash" in text
        return "hashed" if hashed else "covered"  # pip's hash mode, or the lock pins all
    return "pinned"


def _check_line(path: str, logical: LogicalLine, *, pins_required: bool,
                locked: frozenset[tuple[str, str]] = frozenset()) -> Iterator[Finding]:
    text = logical.text
    editable = _EDITABLE.match(text)
    if editable:
        text = editable.group(3)
    elif text.startswith("-"):
        yield from _prerelease(path, logical)
        return  # an option line (--index-url, -r, --find-links): nothing to pin
    spec, _, options = text.partition(" --")
    spec = spec.strip()
    hashed = "--hash" in f" --{options}" or "--hash" in text
    kind = _kind(spec)
    line = logical.line
    if kind == "vcs":
        if not _COMMIT.search(spec.split("#", 1)[0] + "#"):
            yield Finding("RL105", Severity.ERROR, path, line,
                          f"{_short(spec)} names a branch or tag, not a commit: pin "
                          "@<40-hex commit>")
    elif kind == "url":
        if not (_URL_HASH.search(spec) or hashed):
            yield Finding("RL105", Severity.ERROR, path, line,
                          f"{_short(spec)} has no hash: add #sha256=<digest> or "
                          "--hash=sha256:<digest>")
    elif kind == "path" or editable:
        yield Finding("RL106", Severity.WARNING, path, line,
                      f"{_short(spec)} installs a local path: not pinned by version or hash")
    elif pins_required:
        yield from _named(path, line, spec, hashed, locked)


def _prerelease(path: str, logical: LogicalLine) -> Iterator[Finding]:
    option, _, value = logical.text.replace("=", " ", 1).partition(" ")
    if option == "--pre" or (option in ("-i", "--index-url", "--extra-index-url")
                             and "nightly" in value):
        yield Finding("RL310", Severity.ERROR, path, logical.line,
                      f"{_short(logical.text)}: pre-releases and nightly builds are replaced "
                      "every day; pin a release")


def _kind(spec: str) -> str:
    if _VCS.search(spec):
        return "vcs"
    if spec.startswith("file:") or re.search(r"@\s*file:", spec):
        return "path"
    if _URL.search(spec):
        return "url"
    if spec.startswith((".", "/", "~")) or spec.endswith((".whl", ".tar.gz", ".zip")):
        return "path"
    return "name"


def _named(path: str, line: int, spec: str, hashed: bool,
           locked: frozenset[tuple[str, str]]) -> Iterator[Finding]:
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        requirement = Requirement(spec)
    except InvalidRequirement:
        return  # pip would reject the file; not this rule's business
    pins = [s for s in requirement.specifier if s.operator in ("==", "===")
            and "*" not in s.version]
    if len(pins) != 1 or len(requirement.specifier) != 1:
        shown = str(requirement.specifier) or "any version"
        yield Finding("RL101", Severity.ERROR, path, line,
                      f"{requirement.name} is not pinned ({shown}): pip installs whatever is "
                      "newest at build time")
    elif not hashed and (_canonical(requirement.name), pins[0].version) not in locked:
        yield Finding("RL102", Severity.WARNING, path, line,
                      f"{requirement.name}{requirement.specifier} has no --hash: another file "
                      "could be served for the same version")


def _short(spec: str) -> str:
    return spec if len(spec) <= 80 else spec[:77] + "..."
