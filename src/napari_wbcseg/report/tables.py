"""The report's sections as rows of strings, shared by the HTML and the PDF renderer,
so that both say the same thing in the same words."""
from __future__ import annotations

from datetime import datetime, timezone

from .model import ReportData

__all__ = ["DRAFT_NOTE", "audit_table", "differential_table", "identifier_rows",
           "model_table", "signature_rows", "gallery_heading", "utc_text"]

DRAFT_NOTE = "DRAFT - not signed. A signed report is made with `napari-wbcseg report --sign`."


def _percent(v) -> str:
    return "-" if v is None else f"{v:.1f}"


def _absolute(v) -> str:
    return "-" if v is None else f"{v:.2f}"


def identifier_rows(data: ReportData) -> list[tuple[str, str]]:
    target = "-" if not data.target else (
        f"{data.target} ({'reached' if data.reached else 'not reached'})")
    wbc = "not given" if data.wbc_count is None else f"{data.wbc_count:g} x10^9/L"
    rows = [("Case", data.case_id), ("Slide", data.slide_id or "-"),
            ("Kind", data.kind or "-"), ("Fields (images)", str(data.fields)),
            ("Cells counted", str(data.counted)), ("Target count", target),
            ("WBC count", wbc),
            ("Reviewed cells", f"{data.reviewed} of {data.cells}"),
            ("Border cells left out", str(data.border_left_out))]
    if data.kind == "marrow":
        rows.append(("M:E ratio", "- (no erythroid cell)" if data.me_ratio is None
                     else f"{data.me_ratio:.2f} : 1"))
    if data.notes:
        rows.append(("Notes", data.notes))
    return rows


def differential_table(data: ReportData) -> list[list[str]]:
    """Header, one row per class, the unidentified row, the total."""
    out = [["Class", "Count", "%", "x10^9/L"]]
    for r in data.rows:
        out.append([r.name, str(r.count), _percent(r.percent), _absolute(r.absolute)])
    out.append(["unidentified (not in %)", str(data.unidentified), "-", "-"])
    total_abs = "-" if data.wbc_count is None else f"{data.wbc_count:.2f}"
    out.append(["Total counted", str(data.counted),
                "100.0" if data.counted else "-", total_abs])
    return out


def model_table(data: ReportData) -> list[list[str]]:
    out = [["Model", "Kind", "Version", "SHA-256"]]
    for m in data.models:
        out.append([m.name, m.kind, m.version or "-", m.sha256 or "-"])
    return out


def utc_text(when: str) -> str:
    """An ISO time with a zone as ``YYYY-MM-DD HH:MM:SS`` in UTC (short enough for a
    table cell, one zone for all rows); text that is no such time is shown as it is."""
    try:
        t = datetime.fromisoformat(when)
    except (TypeError, ValueError):
        return str(when)
    if t.tzinfo is None:
        return str(when)
    return t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def audit_table(data: ReportData) -> list[list[str]]:
    out = [["When (UTC)", "Image", "Cell", "Action", "From", "To", "Who"]]
    for a in data.audit:
        out.append([utc_text(a.when), a.image, str(a.cell_id), a.action, a.from_class or "-",
                    a.to_class or "-", a.who or "-"])
    return out


def signature_rows(data: ReportData) -> list[tuple[str, str]]:
    return [("Reviewer", data.reviewer or "-"),
            ("Signed at (UTC)", data.signed_at or "not signed (draft)"),
            ("Report version", "-" if data.version is None else f"v{data.version}"),
            ("Generated at (UTC)", data.generated_at or "-")]


def gallery_heading(data: ReportData, code: int) -> str:
    shown = len(data.galleries.get(code, []))
    total = data.gallery_totals.get(code, shown)
    return f"{data.class_name(code)}: {shown} of {total} cell{'s' if total != 1 else ''} shown"
