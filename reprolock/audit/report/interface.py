"""The report-format boundary: each format turns an AuditReport into one string."""

from __future__ import annotations

from abc import ABC, abstractmethod

from reprolock.audit.model import AuditReport, Severity


class ReportFormat(ABC):
    """Renders a whole report; ``color`` matters only to formats meant for a terminal."""

    @abstractmethod
    def render(self, report: AuditReport, *, fail_on: Severity, color: bool) -> str: ...
