"""Suppressions: ``# reprolock: ignore[RL101, RL102]`` on the line, ``[audit] ignore`` and
``[audit.per-path-ignores]`` in the config, ``--ignore`` on the command line.

A Dockerfile comment must start a line, so there (as with hadolint's ``# hadolint
ignore=DL3008``) the comment may also stand on the comment lines right before the
instruction the finding names.

A suppressed finding is kept (marked with why) so reports can count it: suppressions stay
visible. There is no blanket ``# reprolock: ignore`` without ids, on purpose.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from reprolock.audit.catalog import RULES
from reprolock.audit.model import Finding, Suppression
from reprolock.audit.sources import audited_dockerfile
from reprolock.errors import ConfigError

_INLINE = re.compile(r"#\s*reprolock:\s*ignore\[([A-Za-z0-9,\s]+)\]")


@dataclass(frozen=True)
class Suppressions:
    ignore: frozenset[str] = frozenset()  # from the config
    option: frozenset[str] = frozenset()  # from --ignore
    per_path: tuple[tuple[str, frozenset[str]], ...] = ()  # (glob, rule ids)

    def __post_init__(self) -> None:
        named = set(self.ignore) | set(self.option)
        named.update(rule for _, ids in self.per_path for rule in ids)
        unknown = sorted(named - set(RULES))
        if unknown:
            raise ConfigError(f"unknown audit rule {unknown[0]!r}",
                              hint="'reprolock audit --list-rules' lists the rule ids")


def inline_rules(line: str) -> set[str]:
    """The rule ids a ``# reprolock: ignore[...]`` comment on ``line`` names."""
    found: set[str] = set()
    for match in _INLINE.finditer(line):
        found.update(part.strip().upper() for part in match.group(1).split(",") if part.strip())
    return found


def apply(findings: Iterable[Finding], suppressions: Suppressions,
          line_text: Callable[[str, int], str | None]) -> list[Finding]:
    """Mark each finding that is suppressed; ``line_text(path, line)`` reads a line."""
    matchers = [(glob, ids, _matcher(glob)) for glob, ids in suppressions.per_path]
    marked = []
    for finding in findings:
        why = _why(finding, suppressions, matchers, line_text)
        marked.append(dataclasses.replace(finding, suppression=why) if why else finding)
    return marked


def _why(finding: Finding, suppressions: Suppressions,
         matchers: Sequence[tuple[str, frozenset[str], Callable[[str], bool]]],
         line_text: Callable[[str, int], str | None]) -> Suppression | None:
    if finding.line > 0:
        text = line_text(finding.path, finding.line)
        if text is not None and finding.rule in inline_rules(text):
            return Suppression("inline", f"# reprolock: ignore[{finding.rule}] on the line")
        if audited_dockerfile(finding.path) and _above(finding, line_text):
            return Suppression("inline", f"# reprolock: ignore[{finding.rule}] on the line "
                               "before the instruction")
    if finding.rule in suppressions.option:
        return Suppression("option", f"--ignore {finding.rule}")
    if finding.rule in suppressions.ignore:
        return Suppression("config", "[audit] ignore")
    for glob, ids, matches in matchers:
        if finding.rule in ids and matches(finding.path):
            return Suppression("config", f"[audit.per-path-ignores] {glob!r}")
    return None


def _above(finding: Finding, line_text: Callable[[str, int], str | None]) -> bool:
    """The comment lines right above a Dockerfile instruction name the finding's rule."""
    number = finding.line - 1
    while number > 0:
        text = line_text(finding.path, number)
        if text is None or not text.lstrip().startswith("#"):
            return False
        if finding.rule in inline_rules(text):
            return True
        number -= 1
    return False


def _matcher(glob: str) -> Callable[[str], bool]:
    import pathspec

    spec = pathspec.GitIgnoreSpec.from_lines([glob])
    return spec.match_file
