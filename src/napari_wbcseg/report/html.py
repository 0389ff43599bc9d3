"""The report as one self-contained HTML page: inline CSS, thumbnails as base64 PNG data
URIs, no scripts and no external resources, so it can be mailed or archived as it is."""
from __future__ import annotations

import base64
from html import escape

import cv2
import numpy as np

from .model import ReportData, safe_color
from .tables import (DRAFT_NOTE, audit_table, differential_table, gallery_heading,
                     identifier_rows, model_table, signature_rows, utc_text)

__all__ = ["png_bytes", "render_html"]

_CSS = """
body { font-family: Helvetica, Arial, sans-serif; font-size: 10.5pt; color: #111;
       max-width: 190mm; margin: 12mm auto; }
h1 { font-size: 16pt; margin-bottom: 2mm; } h2 { font-size: 12.5pt; margin-top: 6mm; }
h3 { font-size: 11pt; margin: 4mm 0 1mm; }
table { border-collapse: collapse; margin: 2mm 0; }
th, td { border: 1px solid #999; padding: 1.2mm 2.5mm; text-align: left; }
th { background: #e6e6e6; } td.num { text-align: right; }
table.ids th { width: 45mm; } .draft { color: #b00000; font-weight: bold;
       border: 2px solid #b00000; padding: 2mm; }
.flags li { color: #8a3b00; } .swatch { display: inline-block; width: 3mm; height: 3mm;
       margin-right: 1.5mm; border: 1px solid #555; }
.gallery img { margin: 0.6mm; border: 1px solid #bbb; }
code { font-size: 8.5pt; word-break: break-all; }
"""


def png_bytes(rgb: np.ndarray) -> bytes:
    """PNG of an (H, W, 3) uint8 RGB array (OpenCV writes BGR)."""
    rgb = np.ascontiguousarray(np.asarray(rgb, np.uint8)[..., :3])
    ok, buf = cv2.imencode(".png", rgb[..., ::-1])
    if not ok:  # pragma: no cover - OpenCV always encodes a uint8 array
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def _rows_table(rows, css="") -> str:
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="{css}">{body}</table>'


def _grid_table(rows, numeric=(), swatches=None) -> str:
    """A header row and body rows; ``swatches`` colours the first cell of the first rows."""
    head = "".join(f"<th>{escape(h)}</th>" for h in rows[0])
    lines = [f"<tr>{head}</tr>"]
    for i, row in enumerate(rows[1:]):
        cells = []
        for j, v in enumerate(row):
            text = escape(v)
            if j == 0 and swatches and i < len(swatches):
                text = f'<span class="swatch" style="background:{safe_color(swatches[i])}"></span>{text}'
            css = ' class="num"' if j in numeric else ""
            cells.append(f"<td{css}>{text}</td>")
        lines.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table>{''.join(lines)}</table>"


def _gallery(data: ReportData) -> str:
    if not data.galleries:
        return "<p>No thumbnails.</p>"
    parts = []
    for code in data.gallery_order():
        imgs = "".join(
            f'<img src="data:image/png;base64,{base64.b64encode(png_bytes(t.image)).decode()}"'
            f' width="{t.image.shape[1]}" height="{t.image.shape[0]}"'
            f' alt="{escape(t.caption)}" title="{escape(t.caption)}">'
            for t in data.galleries[code])
        parts.append(f"<h3>{escape(gallery_heading(data, code))}</h3>"
                     f'<div class="gallery">{imgs}</div>')
    return "".join(parts)


def render_html(data: ReportData) -> str:
    """The whole page as a string (UTF-8 when written)."""
    status = (f'<p class="draft">{escape(DRAFT_NOTE)}</p>' if data.is_draft else
              f"<p><b>Signed</b> by {escape(data.reviewer)} at {escape(utc_text(data.signed_at))} UTC"
              f" (version v{data.version}). This report is read-only.</p>")
    flags = ("<ul class=\"flags\">" + "".join(f"<li>{escape(f)}</li>" for f in data.flags)
             + "</ul>") if data.flags else "<p>No flags.</p>"
    audit = (_grid_table(audit_table(data)) if data.audit
             else "<p>No reclassifications recorded.</p>")
    models = (_grid_table(model_table(data)) if data.models
              else "<p>No model recorded for this case.</p>")
    swatches = [r.color for r in data.rows]
    title = escape(data.title + (" (DRAFT)" if data.is_draft else ""))
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{title}</title><style>{_CSS}</style></head><body>",
        f"<h1>{title}</h1>", status,
        "<h2>Identifiers</h2>", _rows_table(identifier_rows(data), "ids"),
        "<h2>Differential</h2>",
        _grid_table(differential_table(data), numeric=(1, 2, 3), swatches=swatches),
        "<h2>Flags</h2>", flags,
        "<h2>Cells by class</h2>", _gallery(data),
        "<h2>Models</h2>", models,
        "<h2>Signature</h2>", _rows_table(signature_rows(data), "ids"),
        "<h2>Audit trail</h2>", audit,
        "</body></html>", ""])
