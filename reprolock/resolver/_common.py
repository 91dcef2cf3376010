"""What both resolvers share: a scratch directory holding the previous pins."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from reprolock._internal.urls import redact, redact_text, userinfo
from reprolock.errors import ResolverError, ToolError
from reprolock.resolver.interface import ResolveRequest


def scratch_output(request: ResolveRequest, workdir: Path) -> Path:
    """The output file the tool reads first: its pins are kept unless upgraded."""
    out = workdir / "requirements.txt"
    out.write_text("" if request.upgrade else request.preferred, encoding="utf-8")
    return out


def scratch_dir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="reprolock-resolve-")


def relative_inputs(request: ResolveRequest) -> list[str]:
    """Inputs relative to the project, so '# via -r requirements.in' reads the same anywhere."""
    return [os.path.relpath(p, request.root) for p in request.inputs]


_HASH_MISMATCH = "DO NOT MATCH THE HASHES"


def explain_failure(exc: ToolError, request: ResolveRequest, tool: str) -> ResolverError:
    raw = redact_text(exc.stderr, request.index.secrets())
    if _HASH_MISMATCH in raw:  # pip checks a pinned --hash against the file it reads
        return ResolverError(
            "a --hash pinned in the requirement inputs does not match the file on the "
            "index:\n" + _indent(raw[raw.index(_HASH_MISMATCH):].split("\n", 1)[-1]),
            hint="if the hash is of another version, pin that version beside it; if the "
            "index is right, correct the --hash; if your hash is right, the index serves "
            "another file than the one you pinned: do not use it")
    stderr = _without_traceback(raw)
    lowered = stderr.lower()
    if "no solution" in lowered or "conflict" in lowered or "resolutionimpossible" in lowered \
            or "could not find a version" in lowered or "unsatisfiable" in lowered:
        message = f"{tool} found no set of versions that satisfies the requirements"
        hint = ("relax or correct the conflicting requirements named above; note that only "
                "wheels are considered, so a package that ships no wheel for the target "
                "cannot be locked unless you name it in dependencies.build-from-source "
                "(a pure-Python sdist is then built into a wheel, reproducibly)")
        blocked = _wheel_required(stderr)
        if blocked:
            hint += (f": {', '.join(blocked)} ships none; if it is pure Python, write "
                     f"build-from-source = [{', '.join(map(repr, blocked))}] under "
                     "[dependencies]").replace("'", '"')
        if "pre-release" in lowered:
            hint += ("; a pre-release is used only when a requirement names one: to accept "
                     "it, add NAME>=VERSION with the pre-release's version to your "
                     "requirements")
        private = [redact(u) for u in request.index.secrets() if userinfo(u)]
        if private:  # pip hides a refused login (HTTP 401) as "no versions" when quiet
            hint += (f"; or {', '.join(private)} refused the credentials: check the "
                     "${VARIABLES} of the index URLs in the environment")
    elif "connect" in lowered or "resolve host" in lowered or "failed to fetch" in lowered \
            or "network" in lowered:
        indexes = ", ".join(redact(u) for u in request.index.secrets()) \
            or "https://pypi.org/simple"
        message = f"{tool} could not reach the package index ({indexes})"
        hint = "check index.url in reprolock.toml and your network"
    else:
        message = f"{tool} failed"
        hint = "read the tool's message above"
    return ResolverError(f"{message}:\n" + _indent(stderr), hint=hint)


#: uv names the package it would have to build: "Wheels are required for `x` because
#: building from source is disabled", "x==1.0 has no usable wheels"
_WHEEL_REQUIRED = (re.compile(r"Wheels are required for `([A-Za-z0-9][A-Za-z0-9._-]*)`"),
                   re.compile(r"(?:^|[\s(])([A-Za-z0-9][A-Za-z0-9._-]*?)(?:[=<>!~]=?[^\s,]*)?"
                              r" (?:has|have) no usable wheels"))


def _wheel_required(text: str) -> list[str]:
    found: dict[str, None] = {}
    for pattern in _WHEEL_REQUIRED:
        for name in pattern.findall(text):
            if name not in ("versions", "all"):
                found[re.sub(r"[-_.]+", "-", name).lower()] = None
    return list(found)


def _without_traceback(text: str) -> str:
    """A tool that crashes prints its traceback; the user needs only its last line."""
    head, marker, tail = text.partition("Traceback (most recent call last):")
    if not marker:
        return text
    last = [line for line in tail.strip().splitlines() if line.strip()][-1:]
    return head + "\n".join(last)


def _indent(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()][-25:]
    return "\n".join(f"  | {line}" for line in lines)


def preferred_text(pins: list[tuple[str, str, tuple[str, ...]]]) -> str:
    """Earlier pins in requirements form: a tool's previous output, to stay close to."""
    lines = []
    for name, version, hashes in pins:
        tail = "".join(f" \\\n    --hash={h}" for h in hashes)
        lines.append(f"{name}=={version}{tail}")
    return "\n".join(lines) + ("\n" if lines else "")
