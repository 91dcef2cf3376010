"""RL202/RL203/RL602 for reprolock.toml: the base reference and the image environment."""

from __future__ import annotations

import re
from collections.abc import Iterator

from reprolock.audit.context import AuditContext
from reprolock.audit.model import Finding, Severity
from reprolock.config import Config
from reprolock.errors import ReprolockError


def check(ctx: AuditContext) -> Iterator[Finding]:
    if ctx.config is None:
        return
    yield from _base(ctx.config)
    yield from _hash_seed(ctx.config)


def _base(config: Config) -> Iterator[Finding]:
    from reprolock.image.reference import parse_reference

    where, line = config.source_name, _line_of(config, r"base\s*=")
    try:
        ref = parse_reference(config.base)
    except ReprolockError as exc:
        yield Finding("RL202", Severity.ERROR, where, line,
                      f"base {config.base!r} cannot be parsed: {exc.message}")
        return
    if ref.scheme not in ("registry", "docker-daemon") or ref.digest:
        return  # a local layout or archive is content the lock records by digest
    if ref.scheme == "registry" and ref.tag in (None, "latest"):
        yield Finding("RL202", Severity.ERROR, where, line,
                      f"base {config.base!r} is {'latest' if ref.tag else 'untagged'}: name a "
                      "release and pin its digest")
        return
    yield Finding("RL203", Severity.WARNING, where, line,
                  f"base {config.base!r} has no digest: the lock pins today's, but a relock "
                  "may pick another; write NAME:TAG@sha256:<digest>")


def _hash_seed(config: Config) -> Iterator[Finding]:
    # reprolock's build sets PYTHONHASHSEED=0 itself unless [image] env overrides it
    value = config.image.env.get("PYTHONHASHSEED")
    if value is not None and not re.fullmatch(r"[0-9]+", value):
        yield Finding("RL602", Severity.WARNING, config.source_name,
                      _line_of(config, r"PYTHONHASHSEED\b"),
                      f"[image] env sets PYTHONHASHSEED={value!r}: string hashing changes "
                      "between runs; use a number such as \"0\" or drop the override")


def _line_of(config: Config, pattern: str) -> int:
    """The first line of the config file matching ``pattern`` (0 when not found)."""
    try:
        text = config.source.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return 0
    for number, line in enumerate(text.splitlines(), 1):
        if re.search(pattern, line.split("#", 1)[0]):
            return number
    return 0
