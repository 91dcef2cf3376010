"""Report formats of ``reprolock audit``: text, JSON and SARIF behind one interface."""

from reprolock.audit.report.interface import FormatChoice, ReportFormat

__all__ = ["FormatChoice", "ReportFormat"]
