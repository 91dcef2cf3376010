"""The report as JSON (schema: schemas/audit-report.schema.json)."""

from __future__ import annotations

import json
from typing import Any

from reprolock import __version__
from reprolock.audit.model import AuditReport, Finding, Severity
from reprolock.audit.report.interface import ReportFormat

REPORT_VERSION = 1


class JsonFormat(ReportFormat):
    def render(self, report: AuditReport, *, fail_on: Severity, color: bool) -> str:
        return json.dumps(to_json(report, fail_on), indent=2, sort_keys=True) + "\n"


def to_json(report: AuditReport, fail_on: Severity) -> dict[str, Any]:
    counts = report.counts()
    return {
        "reportVersion": REPORT_VERSION,
        "tool": {"name": "reprolock", "version": __version__, "tools": dict(report.tools)},
        "root": str(report.root),
        "config": report.config,
        "failOn": fail_on.value,
        "exitCode": report.exit_code(fail_on),
        "summary": {**counts, "findings": sum(counts.values()),
                    "suppressed": len(report.suppressed),
                    "baselined": report.baselined(),
                    "suppressedByRule": report.suppressed_by_rule(),
                    "filesAudited": report.files_audited},
        "findings": [_finding(f) for f in report.findings],
    }


def _finding(finding: Finding) -> dict[str, Any]:
    data: dict[str, Any] = {
        "rule": finding.rule, "severity": finding.severity.value, "path": finding.path,
        "line": finding.line, "column": finding.column, "message": finding.message,
        "toolCode": finding.tool_code,
        "suppressed": None if finding.suppression is None else {
            "kind": finding.suppression.kind, "detail": finding.suppression.detail},
    }
    return data
