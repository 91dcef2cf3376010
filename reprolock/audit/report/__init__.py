"""Report formats of ``reprolock audit``: text, JSON and SARIF behind one interface.

The choice of format lives here, above the formats, so that the interface the formats
implement does not import them back.
"""

from __future__ import annotations

import enum

from reprolock.audit.report.interface import ReportFormat

__all__ = ["FormatChoice", "ReportFormat"]


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
