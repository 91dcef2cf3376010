"""The report-format boundary: each format turns an AuditReport into one string."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod

from reprolock.audit.model import AuditReport, Severity


class ReportFormat(ABC):
    """Renders a whole report; ``color`` matters only to formats meant for a terminal."""

    @abstractmethod
    def render(self, report: AuditReport, *, fail_on: Severity, color: bool) -> str: ...


class FormatChoice(enum.StrEnum):
    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"

    def to_format(self) -> ReportFormat:
        if self is FormatChoice.JSON:
            from reprolock.audit.report.json import JsonFormat

            return JsonFormat()
        if self is FormatChoice.SARIF:
            from reprolock.audit.report.sarif import SarifFormat

            return SarifFormat()
        from reprolock.audit.report.text import TextFormat

        return TextFormat()
