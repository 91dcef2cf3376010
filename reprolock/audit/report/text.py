"""Findings grouped by file, one line each, and a summary that counts suppressions."""

from __future__ import annotations

from itertools import groupby

from reprolock.audit.model import AuditReport, Finding, Severity
from reprolock.audit.report.interface import ReportFormat

_COLORS = {Severity.ERROR: "31", Severity.WARNING: "33", Severity.INFO: "36"}


class TextFormat(ReportFormat):
    def render(self, report: AuditReport, *, fail_on: Severity, color: bool) -> str:
        paint = _Painter(color)
        lines: list[str] = []
        for path, group in groupby(report.active, key=lambda f: f.path):
            lines.append(paint(path, "1"))
            lines += [_line(finding, paint) for finding in group]
            lines.append("")
        lines.append(summary(report))
        return "\n".join(lines) + "\n"


def summary(report: AuditReport) -> str:
    counts = report.counts()
    total = sum(counts.values())
    parts = [f"{n} {'info' if s == 'info' else s + 's' * (n != 1)}"
             for s, n in reversed(counts.items()) if n]
    text = f"{total} finding{'s' * (total != 1)}" + (f" ({', '.join(parts)})" if parts else "")
    suppressed = report.suppressed_by_rule()
    if suppressed:
        listed = ", ".join(f"{rule} ×{n}" for rule, n in suppressed.items())
        text += f"; {sum(suppressed.values())} suppressed ({listed})"
    if report.baselined():
        text += f", {report.baselined()} of them by the baseline"
    files = report.files_audited
    return text + f"; {files} file{'s' * (files != 1)} audited"


def _line(finding: Finding, paint: _Painter) -> str:
    where = f"{finding.line}:{finding.column}" if finding.line else "-"
    severity = paint(f"{finding.severity.value:<7}", _COLORS[finding.severity])
    return f"  {where:<8} {severity} {finding.rule}  {finding.message}"


class _Painter:
    """ANSI colour (SGR ``code``) around ``text``, or the text alone."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled else text
