"""Case reports (no Qt): a reviewed case -> the differential with flags, per-class
galleries, models, reviewer and audit trail, as self-contained HTML or as PDF
(reportlab), and signed read-only versions inside the project.  See ``docs/report.md``.

    data = build_report_data(project, "C-001", intervals=read_intervals(csv, classes))
    write_report(data, "C-001.pdf")            # a draft
    sign_case(project, "C-001", "Dr A. Smith")  # PROJECT/reports/C-001/v1/report.*
"""
from .data import build_report_data, check_reviewer
from .html import render_html
from .intervals import IntervalsError, ReferenceInterval, differential_flags, read_intervals
from .model import AuditRow, ClassRow, ModelInfo, ReportData, ReportError, Thumbnail
from .pdf import render_pdf
from .render import report_bytes, report_format, write_report
from .sign import REPORTS_DIR, SignedReport, read_signed_json, sign_case, signed_versions

__all__ = ["AuditRow", "ClassRow", "IntervalsError", "ModelInfo", "REPORTS_DIR",
           "ReferenceInterval", "ReportData", "ReportError", "SignedReport", "Thumbnail",
           "build_report_data", "check_reviewer", "differential_flags", "read_intervals",
           "read_signed_json", "render_html", "render_pdf", "report_bytes", "report_format",
           "sign_case", "signed_versions", "write_report"]
