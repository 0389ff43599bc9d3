"""ReportData built by hand (no project): distinct thumbnails, any class table."""
import numpy as np

from napari_wbcseg.report import AuditRow, ClassRow, ModelInfo, ReportData, Thumbnail
from napari_wbcseg.schema import DEFAULT_CLASSES, UNIDENTIFIED

SHA_SEG, SHA_CLS = "0123456789abcdef" * 4, "fedcba9876543210" * 4


def handmade_report(classes=DEFAULT_CLASSES, *, per_class=3, unidentified=3, wbc=6.2,
                    signed=False, flags=None) -> ReportData:
    rng = np.random.default_rng(0)
    named = [c for c in classes if c.code != UNIDENTIFIED]
    counts = {c.code: 10 + 7 * i for i, c in enumerate(named)}
    total = sum(counts.values())
    rows = [ClassRow(c.code, c.name, c.color, counts[c.code], 100 * counts[c.code] / total,
                     None if wbc is None else wbc * counts[c.code] / total) for c in named]
    galleries = {c.code: [Thumbnail(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8),
                                    f"field 1, cell {10 * c.code + k}")
                          for k in range(per_class)] for c in named}
    return ReportData(
        case_id="CASE-42", slide_id="S-17/2024", kind="blood", classes=tuple(classes),
        rows=rows, unidentified=unidentified, counted=total, target=200,
        reached=total >= 200, wbc_count=wbc, fields=3, border_left_out=4, reviewed=12,
        cells=total + unidentified + 4,
        flags=flags if flags is not None else ["neutrophil 78.0% above the reference "
                                               "interval 40-75%", "3 unidentified cells left"],
        galleries=galleries, gallery_totals={k: len(v) + 2 for k, v in galleries.items()},
        models=[ModelInfo("wbcseg-lite0", "segmentation", "2026-12-01", SHA_SEG),
                ModelInfo("blood5-classifier", "classifier", "3", SHA_CLS)],
        audit=[AuditRow("field 1", 11, "reclassify", named[0].name, named[-1].name, "jdoe",
                        "2026-12-02T09:41:07+00:00"),
               AuditRow("field 2", 27, "delete", named[1].name, "(removed)", "asmith",
                        "2026-12-02T09:45:00+00:00")],
        reviewer="Dr Ada Smith" if signed else "", version=3 if signed else None,
        signed_at="2026-12-02T10:00:00+00:00" if signed else None,
        generated_at="2026-12-02T10:00:00+00:00")


def pdf_lines(pdf_bytes):
    """The PDF parsed back: (reader, stripped text lines of all pages)."""
    import io

    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(pdf_bytes))
    text = "\n".join(p.extract_text() for p in reader.pages)
    return reader, [ln.strip() for ln in text.splitlines() if ln.strip()]


def value_after(lines, label):
    """The table cell read right after ``label`` (cells come out one per line)."""
    return lines[lines.index(label) + 1]
