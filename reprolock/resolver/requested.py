"""What the requirement inputs ask for, read the way pip reads them: for each named
requirement its specifier, where it is written, and the hashes it pins (``--hash``).

The resolvers do not carry these through: uv ignores a pinned hash, and both write every
hash of the index. reprolock checks them itself after resolving.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from reprolock.errors import ConfigError

_INCLUDE = re.compile(r"^(?:-r|--requirement|-c|--constraint)(?:\s+|=)(\S+)")
# where packages come from: reprolock.toml's [index] says that, for the resolver, for
# reprolock's own reading of the index and for the lock's record of it
_INDEX_OPTION = re.compile(r"^(-i|--index-url|--extra-index-url|-f|--find-links|--no-index)"
                           r"(?:(?:\s+|=)(\S+))?")
_HASH = re.compile(r"--hash(?:\s+|=)(\S+)")
_SHA256 = re.compile(r"sha256:([0-9a-fA-F]{64})")
_COMMENT = re.compile(r"(?:^|\s+)#.*$")


@dataclass(frozen=True)
class Requested:
    name: str  # normalized
    specifier: SpecifierSet
    where: str  # "requirements.in:3"
    hashes: frozenset[str] = frozenset()  # "sha256:<hex>"; empty: none pinned

    @property
    def names_prerelease(self) -> bool:
        """True when the specifier names a pre-release (``>=2.0rc1``), which is how a
        user asks for one."""
        return any(spec.prereleases for spec in self.specifier)


def read_requested(inputs: Iterable[tuple[Path, str]]) -> tuple[Requested, ...]:
    """``inputs``: each file with the name to show for it. Files named with -r or -c
    are followed."""
    found: list[Requested] = []
    seen: set[Path] = set()
    for path, shown in inputs:
        found += _read(path, shown, seen)
    return tuple(found)


def _read(path: Path, shown: str, seen: set[Path]) -> Iterator[Requested]:
    resolved = path.resolve()
    if resolved in seen:
        return
    seen.add(resolved)
    try:
        text = resolved.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return  # collecting the inputs already said which file cannot be read
    for number, line in logical_lines(text):
        option = _INDEX_OPTION.match(line)
        if option:
            raise _index_option(f"{shown}:{number}", option.group(1), option.group(2) or "")
        include = _INCLUDE.match(line)
        if include:
            if "://" not in include.group(1):
                name = f"{shown.rsplit('/', 1)[0]}/{include.group(1)}" if "/" in shown \
                    else include.group(1)
                yield from _read(resolved.parent / include.group(1), name, seen)
            continue
        item = _requested(line, f"{shown}:{number}")
        if item is not None:
            yield item


def _index_option(where: str, option: str, value: str) -> ConfigError:
    from reprolock._internal.urls import redact

    key = {"-i": "url", "--index-url": "url", "--extra-index-url": "extra-urls",
           "-f": "find-links", "--find-links": "find-links", "--no-index": "no-index"}[option]
    # a line often carries a token (https://__token__:SECRET@...): never shown, and the
    # config takes it from the environment
    private = redact(value) != value
    shown = redact(value).replace("://", "://${USER}:${TOKEN}@", 1) if private else value
    quoted = json.dumps(shown)
    toml = "no-index = true" if key == "no-index" else (
        f"{key} = {quoted}" if key == "url" else f"{key} = [{quoted}]")
    named = ("; to take only some packages from it (torch from a PyTorch index, say), "
             f"write [[index.named]] with name, url = {quoted} and packages instead"
             if key in ("url", "extra-urls") else "")
    secret = (" (set USER and TOKEN in the environment; the line's own credentials are not "
              "shown)" if private else "")
    return ConfigError(
        f"{where}: {option} {redact(value)}".rstrip() + " sets where packages come from, "
        "which reprolock.toml's [index] decides (for the resolver, for reprolock's own check "
        "of each file and for the lock's record)",
        hint=f"remove the line and write under [index] in reprolock.toml: {toml}{named}{secret}")


def logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Lines with comments removed and continuations joined, numbered by their first
    physical line: the one reading of a requirement file (the resolver's inputs, the
    audit's rules), with a continuation left open at the end kept as pip keeps it."""
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _COMMENT.sub("", raw)
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical = (pending + line).strip()
        pending = ""
        if logical:
            yield start, logical
    if pending.strip():
        yield start, pending.strip()


def _requested(line: str, where: str) -> Requested | None:
    if line.startswith("-"):
        return None  # an option line: -e, --index-url, --find-links ...
    spec = line.split(" --", 1)[0].strip()
    try:
        req = Requirement(spec)
    except InvalidRequirement:
        return None  # a path or URL: the resolver says what it makes of it
    if req.url:
        return None
    return Requested(canonicalize_name(req.name), req.specifier, where, _hashes(line, where))


def _hashes(line: str, where: str) -> frozenset[str]:
    found = set()
    for value in _HASH.findall(line):
        match = _SHA256.fullmatch(value)
        if match is None:
            raise ConfigError(
                f"{where}: --hash={value} is not a sha256 hash reprolock can check",
                hint="write --hash=sha256:<64 hex digits> (the hashes 'pip hash' or "
                "'pip-compile --generate-hashes' print); reprolock checks sha256 only")
        found.add(f"sha256:{match.group(1).lower()}")
    return frozenset(found)
