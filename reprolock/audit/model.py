"""What an audit produces: findings (frozen) and the report that holds them."""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


class Severity(enum.StrEnum):
    """How bad a finding is; ``--fail-on`` picks the lowest one that fails the audit."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


@dataclass(frozen=True)
class Suppression:
    """Why a finding is not counted: ``inline`` (a comment on its line), ``config``
    (``[audit]`` in the config), ``option`` (``--ignore``) or ``baseline`` (recorded in
    the ``--baseline`` file)."""

    kind: str
    detail: str


@dataclass(frozen=True)
class Finding:
    """One problem at one place. ``line`` 0 means the whole file (no line applies)."""

    rule: str
    severity: Severity
    path: str  # relative to the project root, forward slashes
    line: int
    message: str
    column: int = 0
    tool_code: str | None = None  # the outside tool's own code (hadolint's DL3008)
    suppression: Suppression | None = None

    @property
    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.path, self.line, self.column, self.rule, self.message)


@dataclass(frozen=True)
class AuditReport:
    """Every finding of one audit (suppressed ones included), sorted by place."""

    root: Path
    findings: tuple[Finding, ...]
    files_audited: int
    config: str | None = None  # the config file name, None for a plain directory
    tools: dict[str, str] = field(default_factory=dict)  # outside tool → version
    fail_on: Severity | None = None  # [audit] fail-on of the config

    @property
    def active(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.suppression is None)

    @property
    def suppressed(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.suppression is not None)

    def counts(self) -> dict[str, int]:
        """Active findings per severity, every severity present (0 when none)."""
        found = Counter(f.severity.value for f in self.active)
        return {s.value: found.get(s.value, 0) for s in Severity}

    def baselined(self) -> int:
        """Findings suppressed because the ``--baseline`` file records them."""
        return sum(1 for f in self.suppressed if f.suppression and
                   f.suppression.kind == "baseline")

    def suppressed_by_rule(self) -> dict[str, int]:
        return dict(sorted(Counter(f.rule for f in self.suppressed).items()))

    def exit_code(self, fail_on: Severity) -> int:
        from reprolock.errors import EXIT_FINDING, EXIT_OK

        failing = any(f.severity.rank >= fail_on.rank for f in self.active)
        return EXIT_FINDING if failing else EXIT_OK
