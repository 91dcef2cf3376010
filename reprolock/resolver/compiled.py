"""Read the hash-pinned requirements that pip-compile and uv write."""

from __future__ import annotations

import re

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from reprolock.errors import ResolverError
from reprolock.resolver.interface import Pin

_HASH = re.compile(r"--hash[= ](sha256:[0-9a-fA-F]{64})(?!\S)")
_ANY_HASH = re.compile(r"--hash[= ]([A-Za-z0-9_-]+):\S*")


def parse_compiled(text: str, *, tool: str) -> tuple[Pin, ...]:
    """Parse ``name==version --hash=... # via ...`` blocks, in either tool's layout."""
    blocks: list[tuple[str, list[str]]] = []
    lines = iter(text.splitlines())
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith("-"):
            continue  # blank, or an option such as --index-url that a tool echoes
        if stripped.startswith("#"):
            if blocks and line[:1].isspace():  # indented comments annotate the pin above
                blocks[-1][1].append(stripped.lstrip("#").strip())
            continue
        logical = stripped
        while logical.endswith("\\"):
            logical = logical[:-1].rstrip() + " " + next(lines, "").strip()
        blocks.append((logical, []))
    return tuple(sorted((_pin(text, notes, tool) for text, notes in blocks),
                        key=lambda p: p.name))


def _pin(logical: str, notes: list[str], tool: str) -> Pin:
    spec = _ANY_HASH.sub("", logical).split(" #")[0].strip()
    try:
        req = Requirement(spec)
    except InvalidRequirement as exc:
        raise ResolverError(f"{tool} wrote a line reprolock cannot read: {spec!r} ({exc})") from exc
    pinned = [s for s in req.specifier if s.operator in ("==", "===")]
    if len(pinned) != 1 or req.url:
        raise ResolverError(
            f"{tool} did not pin {req.name} to one version ({spec!r})",
            hint="URL and VCS requirements cannot be locked by hash yet; "
            "publish the package to an index or a find-links directory",
        )
    hashes = tuple(sorted({h.lower() for h in _HASH.findall(logical)}))
    others = sorted({a for a in _ANY_HASH.findall(logical) if a != "sha256"})
    if others and not hashes:
        raise ResolverError(
            f"{tool} pinned {req.name}=={pinned[0].version} by its {'/'.join(others)} hashes "
            "only: the index serves no sha256 for the files of this release, and a lock "
            "records sha256", hint="have the index serve sha256 hashes (PyPI and most "
            "indexes do), or put the files in a find-links directory: reprolock hashes "
            "those itself")
    return Pin(name=canonicalize_name(req.name), version=pinned[0].version, hashes=hashes,
               via=_via(notes))


def _via(notes: list[str]) -> tuple[str, ...]:
    found: list[str] = []
    inside = False
    for note in notes:
        if note.startswith("via"):
            inside = True
            note = note[3:].strip()
        if inside and note and not note.startswith("("):
            found.append(note if note.startswith(("-r ", "-c ")) else
                         str(canonicalize_name(note.split(" ")[0])))
    return tuple(sorted(set(found)))
