"""SARIF 2.1.0, as GitHub code scanning and other SARIF viewers read it.

Every rule of the catalog is in ``tool.driver.rules`` (id, name, short and full
description, help text and helpUri, default level); each result points at its rule by
``ruleIndex``, at its file relative to ``%SRCROOT%`` and, when it has one, at its line.
Suppressed findings are kept, with a SARIF ``suppressions`` entry (``inSource`` for a
comment on the line, ``external`` for the config, ``--ignore`` or ``--baseline``; a
baselined result also has ``baselineState: unchanged`` and the run counts them in
``properties.baselined``).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from reprolock import __version__
from reprolock.audit.catalog import RULES, Rule
from reprolock.audit.model import AuditReport, Finding, Severity
from reprolock.audit.report.interface import ReportFormat

SCHEMA_URI = ("https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/"
              "sarif-schema-2.1.0.json")
_LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
_TAGS = {"0": "audit", "1": "dependencies", "2": "base-image", "3": "dockerfile",
         "4": "training-code", "5": "secrets", "6": "environment"}


class SarifFormat(ReportFormat):
    def render(self, report: AuditReport, *, fail_on: Severity, color: bool) -> str:
        return json.dumps(to_sarif(report, fail_on), indent=2, sort_keys=True) + "\n"


def to_sarif(report: AuditReport, fail_on: Severity) -> dict[str, Any]:
    index = {rule_id: i for i, rule_id in enumerate(RULES)}
    run: dict[str, Any] = {
        "tool": {"driver": {
            "name": "reprolock", "version": __version__, "semanticVersion": __version__,
            "informationUri": "https://reprolock.dev",
            "rules": [_rule(rule) for rule in RULES.values()]}},
        "originalUriBaseIds": {"%SRCROOT%": {"uri": report.root.as_uri() + "/"}},
        "invocations": [{"executionSuccessful": True,
                         "exitCode": report.exit_code(fail_on)}],
        "columnKind": "unicodeCodePoints",
        "results": [_result(f, index[f.rule]) for f in report.findings],
    }
    if report.tools:
        run["tool"]["driver"]["properties"] = {"tools": dict(report.tools)}
    if report.baselined():
        run["properties"] = {"baselined": report.baselined()}
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def _rule(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id, "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.why},
        "help": {"text": f"{rule.fix} Source: {rule.source}", "markdown": rule.markdown()},
        "helpUri": rule.help_uri,
        "defaultConfiguration": {"level": _LEVELS[rule.severity]},
        "properties": {"tags": ["reproducibility", _TAGS[rule.id[2]]]},
    }


def _result(finding: Finding, rule_index: int) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": quote(finding.path),
                                                     "uriBaseId": "%SRCROOT%"}}
    if finding.line > 0:
        physical["region"] = {"startLine": finding.line}
        if finding.column > 0:
            physical["region"]["startColumn"] = finding.column
    result: dict[str, Any] = {
        "ruleId": finding.rule, "ruleIndex": rule_index, "level": _LEVELS[finding.severity],
        "message": {"text": finding.message},
        "locations": [{"physicalLocation": physical}],
    }
    if finding.tool_code:
        result["properties"] = {"toolCode": finding.tool_code}
    if finding.suppression is not None:
        kind = "inSource" if finding.suppression.kind == "inline" else "external"
        # no status/state: the OASIS 2.1.0 schema says "state", its errata "status"
        result["suppressions"] = [{"kind": kind, "justification": finding.suppression.detail}]
        if finding.suppression.kind == "baseline":
            result["baselineState"] = "unchanged"
    return result
