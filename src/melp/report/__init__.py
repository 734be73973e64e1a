"""The demo report (issue "make demo"): results tables, training curves, ROC curves, beat-level alignment."""

from melp.report.build import ReportInputs, build_report
from melp.report.results import ResultEntry, format_cell, format_ci, format_value

__all__ = ["ReportInputs", "ResultEntry", "build_report", "format_cell", "format_ci", "format_value"]
