"""The report as a PDF (reportlab platypus; no Qt): title block, identifiers, the
differential, flags, per-class galleries as image grids, models with checksums, the
signature and the audit trail.  An unsigned report says DRAFT across every page."""
from __future__ import annotations

import io
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import (Image, KeepTogether, Paragraph, SimpleDocTemplate, Spacer,
                                Table, TableStyle)

from .html import png_bytes
from .model import ReportData, safe_color
from .tables import (DRAFT_NOTE, audit_table, differential_table, gallery_heading,
                     identifier_rows, model_table, signature_rows, utc_text)

__all__ = ["render_pdf"]

MARGIN = 15 * mm
THUMB = 21 * mm  # drawn side of a thumbnail: ~100 dpi for the usual 96 px thumbnails
PER_ROW = 7

_base = getSampleStyleSheet()
STYLES = {
    "title": ParagraphStyle("title", parent=_base["Title"], fontSize=16, leading=19,
                            alignment=0, spaceAfter=2 * mm),
    "h2": ParagraphStyle("h2", parent=_base["Heading2"], fontSize=12, leading=14,
                         spaceBefore=4 * mm, spaceAfter=1.5 * mm),
    "h3": ParagraphStyle("h3", parent=_base["Heading3"], fontSize=10, leading=12,
                         spaceBefore=2 * mm, spaceAfter=1 * mm),
    "body": ParagraphStyle("body", parent=_base["BodyText"], fontSize=9.5, leading=12),
    "cell": ParagraphStyle("cell", parent=_base["BodyText"], fontSize=8.5, leading=10.5),
    "small": ParagraphStyle("small", parent=_base["BodyText"], fontSize=7.5, leading=9),
    "code": ParagraphStyle("code", parent=_base["Code"], fontSize=6.3, leading=8,
                           leftIndent=0),
    "flag": ParagraphStyle("flag", parent=_base["BodyText"], fontSize=9.5, leading=12,
                           textColor=colors.HexColor("#8a3b00")),
    "draft": ParagraphStyle("draft", parent=_base["BodyText"], fontSize=10, leading=13,
                            textColor=colors.HexColor("#b00000"), borderColor=colors.HexColor(
                                "#b00000"), borderWidth=1.2, borderPadding=2 * mm,
                            spaceBefore=1 * mm, spaceAfter=3 * mm),
    "caption": ParagraphStyle("caption", parent=_base["BodyText"], fontSize=5.5, leading=6.5,
                              alignment=1),
}
GRID = [("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#999999")),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e6e6e6")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2)]


def _p(text, style="cell") -> Paragraph:
    return Paragraph(escape(str(text)), STYLES[style])


def _key_values(rows) -> Table:
    t = Table([[_p(k), _p(v)] for k, v in rows], colWidths=[45 * mm, 120 * mm], hAlign="LEFT")
    t.setStyle(TableStyle(GRID[:1] + GRID[2:] + [
        ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#e6e6e6"))]))
    return t


def _grid(rows, widths, styles=None, numeric=()) -> Table:
    body = [[_p(v, (styles or {}).get(j, "cell")) for j, v in enumerate(row)] for row in rows]
    t = Table(body, colWidths=widths, hAlign="LEFT", repeatRows=1)
    extra = [("ALIGN", (j, 1), (j, -1), "RIGHT") for j in numeric]
    t.setStyle(TableStyle(GRID + extra))
    return t


def _differential(data: ReportData) -> Table:
    rows = differential_table(data)
    body = [[_p(v) for v in row] for row in rows]
    for i, r in enumerate(data.rows, 1):  # a colour swatch before each class name
        swatch = Table([[""]], colWidths=[3 * mm], rowHeights=[3 * mm])
        swatch.setStyle(TableStyle([
            ("BACKGROUND", (0, 0), (0, 0), colors.HexColor(safe_color(r.color))),
            ("BOX", (0, 0), (0, 0), 0.4, colors.HexColor("#555555"))]))
        inner = Table([[swatch, _p(r.name)]], colWidths=[4.5 * mm, 50 * mm])
        inner.setStyle(TableStyle([("LEFTPADDING", (0, 0), (-1, -1), 0),
                                   ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                                   ("TOPPADDING", (0, 0), (-1, -1), 0),
                                   ("BOTTOMPADDING", (0, 0), (-1, -1), 0)]))
        body[i][0] = inner
    t = Table(body, colWidths=[60 * mm, 22 * mm, 22 * mm, 26 * mm], hAlign="LEFT")
    t.setStyle(TableStyle(GRID + [("ALIGN", (1, 1), (-1, -1), "RIGHT"),
                                  ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                                  ("LINEABOVE", (0, -1), (-1, -1), 1.0, colors.black)]))
    return t


def _flags(flags) -> Table:
    """One row per flag behind an orange bar (a table: its text copies out cleanly,
    where a bullet glyph comes out of PDF text extraction as a control character)."""
    t = Table([[_p(f, "flag")] for f in flags], colWidths=[170 * mm], hAlign="LEFT")
    t.setStyle(TableStyle([("LINEBEFORE", (0, 0), (0, -1), 2.5, colors.HexColor("#e08000")),
                           ("LEFTPADDING", (0, 0), (-1, -1), 3 * mm),
                           ("TOPPADDING", (0, 0), (-1, -1), 1),
                           ("BOTTOMPADDING", (0, 0), (-1, -1), 1)]))
    return t


def _gallery(data: ReportData, code: int) -> list:
    cells = []
    for thumb in data.galleries[code]:
        img = Image(io.BytesIO(png_bytes(thumb.image)), width=THUMB, height=THUMB)
        cells.append([img, _p(thumb.caption, "caption")] if thumb.caption else img)
    rows = [cells[i:i + PER_ROW] for i in range(0, len(cells), PER_ROW)]
    rows[-1] += [""] * (PER_ROW - len(rows[-1]))
    t = Table(rows, colWidths=[THUMB + 4] * PER_ROW, hAlign="LEFT")
    t.setStyle(TableStyle([("LEFTPADDING", (0, 0), (-1, -1), 1),
                           ("RIGHTPADDING", (0, 0), (-1, -1), 1),
                           ("TOPPADDING", (0, 0), (-1, -1), 1),
                           ("BOTTOMPADDING", (0, 0), (-1, -1), 1)]))
    heading = _p(gallery_heading(data, code), "h3")
    return [KeepTogether([heading, t])] if len(rows) <= 3 else [heading, t]


def _page(data: ReportData):
    footer = f"Case {data.case_id}"
    footer += (f" - signed v{data.version} by {data.reviewer} at {utc_text(data.signed_at)} UTC"
               if not data.is_draft else " - DRAFT, not signed")

    def draw(canvas, doc):
        canvas.saveState()
        canvas.setFont("Helvetica", 7.5)
        canvas.setFillColor(colors.HexColor("#555555"))
        canvas.drawString(MARGIN, 9 * mm, footer[:150])
        canvas.drawRightString(A4[0] - MARGIN, 9 * mm, f"page {doc.page}")
        if data.is_draft:  # across the page, light enough to read the text through
            canvas.setFont("Helvetica-Bold", 110)
            canvas.setFillColor(colors.Color(0.85, 0.1, 0.1, alpha=0.12))
            canvas.translate(A4[0] / 2, A4[1] / 2)
            canvas.rotate(45)
            canvas.drawCentredString(0, -35, "DRAFT")
        canvas.restoreState()
    return draw


def render_pdf(data: ReportData) -> bytes:
    """The PDF file's bytes."""
    story = [_p(data.title + (" (DRAFT)" if data.is_draft else ""), "title")]
    if data.is_draft:
        story.append(_p(DRAFT_NOTE, "draft"))
    else:
        story.append(_p(f"Signed by {data.reviewer} at {utc_text(data.signed_at)} UTC (version "
                        f"v{data.version}). This report is read-only.", "body"))
    story += [_p("Identifiers", "h2"), _key_values(identifier_rows(data)),
              _p("Differential", "h2"), _differential(data), _p("Flags", "h2")]
    story.append(_flags(data.flags) if data.flags else _p("No flags.", "body"))
    story.append(_p("Cells by class", "h2"))
    for code in data.gallery_order():
        story += _gallery(data, code)
    if not data.galleries:
        story.append(_p("No thumbnails.", "body"))
    story.append(_p("Models", "h2"))
    story.append(_grid(model_table(data), [38 * mm, 24 * mm, 22 * mm, 96 * mm], {3: "code"})
                 if data.models else _p("No model recorded for this case.", "body"))
    story += [KeepTogether([_p("Signature", "h2"), _key_values(signature_rows(data))]),
              _p("Audit trail", "h2")]
    story.append(_grid(audit_table(data), [36 * mm, 30 * mm, 11 * mm, 22 * mm, 27 * mm,
                                           27 * mm, 27 * mm], numeric=(2,))
                 if data.audit else _p("No reclassifications recorded.", "body"))
    story.append(Spacer(1, 4 * mm))
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN,
                            topMargin=MARGIN, bottomMargin=16 * mm, title=data.title,
                            author=data.reviewer or "napari-wbcseg",
                            subject=f"case {data.case_id}", creator="napari-wbcseg")
    page = _page(data)
    doc.build(story, onFirstPage=page, onLaterPages=page)
    return buf.getvalue()
