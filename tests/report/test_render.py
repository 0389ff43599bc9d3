"""The HTML and PDF renderers, on ReportData built by hand: the PDF is parsed back
(pypdf), never just checked to exist."""
import base64
import re

import pytest

from napari_wbcseg.report import render_html, render_pdf, report_format, write_report
from napari_wbcseg.report import ReportError
from napari_wbcseg.schema import UNIDENTIFIED, CellClass

from handmade import SHA_CLS, SHA_SEG, handmade_report, pdf_lines, value_after

CLASSES14 = tuple(CellClass(k, f"marrow type {k}", "#%02x6040" % (k * 17))
                  for k in range(1, 15)) + (CellClass(UNIDENTIFIED, "unidentified", "#a0a0a0"),)


def test_pdf_holds_the_differential_flags_models_and_audit():
    data = handmade_report()
    reader, lines = pdf_lines(render_pdf(data))
    text = " ".join(lines)
    assert "CASE-42" in text and "S-17/2024" in text
    for row in data.rows:
        assert value_after(lines, row.name) == str(row.count), row.name
        assert f"{row.percent:.1f}" in lines
    assert value_after(lines, "unidentified (not in %)") == "3"
    for flag in data.flags:
        assert flag in lines
    for sha in (SHA_SEG, SHA_CLS):  # the checksum may wrap, never lose characters
        assert sha in text.replace(" ", "")
    for who in ("jdoe", "asmith"):
        assert who in lines
    assert "reclassify" in lines and "delete" in lines
    assert "DRAFT" in text


def test_pdf_holds_every_gallery_image():
    data = handmade_report(per_class=9)
    reader, _ = pdf_lines(render_pdf(data))
    drawn = sum(len(page.images) for page in reader.pages)
    assert data.thumbnail_count() == 45
    assert drawn >= data.thumbnail_count()


def test_a_signed_pdf_names_reviewer_and_time_and_is_no_draft():
    _, lines = pdf_lines(render_pdf(handmade_report(signed=True)))
    text = " ".join(lines)
    assert value_after(lines, "Reviewer") == "Dr Ada Smith"
    assert value_after(lines, "Signed at (UTC)") == "2026-12-02T10:00:00+00:00"
    assert value_after(lines, "Report version") == "v3"
    assert "DRAFT" not in text


def test_html_is_self_contained_with_the_table_and_every_thumbnail():
    data = handmade_report(per_class=4)
    page = render_html(data)
    uris = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(uris) == data.thumbnail_count() == 20
    assert base64.b64decode(uris[0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<script" not in page.lower() and "http" not in page.lower()
    assert "<table>" in page and "<td>neutrophil" in page.replace(
        '<span class="swatch" style="background:#9b30ff"></span>', "")
    assert "DRAFT" in page
    for flag in data.flags:
        assert flag in page


def test_html_escapes_user_text_and_colours():
    data = handmade_report()
    data.notes = "<script>alert(1)</script>"
    data.audit[0] = type(data.audit[0])("f<1>", 1, "accept", "a", "a", "<b>who</b>", "t")
    data.rows[0] = type(data.rows[0])(1, "neutrophil", "red;background:url(x)", 5)
    page = render_html(data)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<b>who</b>" not in page and "&lt;b&gt;who&lt;/b&gt;" in page
    assert "url(x)" not in page


def test_a_14_class_table_renders_in_both_formats():
    data = handmade_report(CLASSES14, per_class=2)
    _, lines = pdf_lines(render_pdf(data))
    page = render_html(data)
    assert len(data.rows) == 14
    for row in data.rows:
        assert value_after(lines, row.name) == str(row.count)
        assert f"<td>{row.name}" in re.sub(r'<span class="swatch"[^>]*></span>', "", page)


def test_no_wbc_count_gives_dashes_not_absolute_numbers():
    data = handmade_report(wbc=None)
    _, lines = pdf_lines(render_pdf(data))
    assert value_after(lines, "WBC count") == "not given"
    assert value_after(lines, "Total counted") == str(data.counted)
    i = lines.index("neutrophil")
    assert lines[i + 3] == "-"


@pytest.mark.parametrize("name, fmt", [("a.pdf", "pdf"), ("a.HTML", "html"), ("a.htm", "html")])
def test_the_suffix_chooses_the_format(name, fmt):
    assert report_format(name) == fmt


def test_an_unknown_suffix_is_refused(tmp_path):
    with pytest.raises(ReportError, match="end in .pdf or .html"):
        write_report(handmade_report(), tmp_path / "a.docx")
    assert not (tmp_path / "a.docx").exists()
