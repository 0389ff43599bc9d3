"""Render a case report of a synthetic project to PNG pages (docs/images/report_page*.png).

Builds a throw-away project of synthetic smears (six fields, the smears' own cell types,
one cell set to unidentified, two reclassifications in the audit trail), writes its draft
PDF and a signed version, and rasterises the pages with Qt's own PDF renderer (QtPdf,
which ships with PyQt6; no napari window).  Run from the repository root:

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/make_report_screenshot.py [OUT_DIR]
"""
import sys
import tempfile
from pathlib import Path

import numpy as np

from napari_wbcseg.core.synthetic import synthetic_smear
from napari_wbcseg.io.project import save_image_entry
from napari_wbcseg.report import (build_report_data, read_intervals, render_pdf, sign_case)
from napari_wbcseg.review import AuditEntry, Case, append_audit, save_case
from napari_wbcseg.schema import DEFAULT_CLASSES, UNIDENTIFIED

DOCS = Path(__file__).resolve().parent
SHA = "879e4c1f0b7d2a6e5c3b9a8d7f6e5d4c3b2a19080706050403020100fedcba98"


def make_project(folder: Path) -> None:
    names = []
    for f in range(6):
        sm = synthetic_smear((360, 480), n_wbc=5, seed=10 + f, pixel_size_um=0.25,
                             classes=[1, 1, 2, 1, 3] if f % 2 else [1, 2, 1, 4, 5])
        cell_type = sm.cell_type.copy()
        if f == 2:
            cell_type[(sm.nucleus == 3) | (sm.cytoplasm == 3)] = UNIDENTIFIED
        name = f"field {f + 1}"
        save_image_entry(folder, name, sm.image, sm.nucleus, sm.cytoplasm, cell_type,
                         classes=DEFAULT_CLASSES, pixel_size_um=0.25, reviewed=f < 4)
        names.append(name)
    save_case(folder, Case("C-2026-0117", "S 17/2026", names, kind="blood", target=100,
                           wbc_count=7.4, notes="EDTA, Wright-Giemsa; synthetic example",
                           models=[{"name": "wbcseg-lite0", "kind": "segmentation",
                                    "version": "2026-12-01", "sha256": SHA}]))
    append_audit(folder, [
        AuditEntry("field 1", 2, "reclassify", 3, 2, "asmith", "2026-12-02T09:41:07+00:00"),
        AuditEntry("field 4", 4, "reclassify", 1, 3, "asmith", "2026-12-02T09:43:30+00:00"),
        AuditEntry("field 2", 1, "accept", 1, 1, "asmith", "2026-12-02T09:44:02+00:00")])


def rasterise(pdf: Path, stem: Path, zoom: float = 1.6, pages: int = 99) -> list[Path]:
    from PyQt6.QtCore import QSize
    from PyQt6.QtGui import QGuiApplication
    from PyQt6.QtPdf import QPdfDocument

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    doc = QPdfDocument(None)
    doc.load(str(pdf))
    out = []
    for i in range(min(pages, doc.pageCount())):
        size = doc.pagePointSize(i)
        image = doc.render(i, QSize(int(size.width() * zoom), int(size.height() * zoom)))
        path = stem.with_name(f"{stem.name}{'' if i == 0 else i + 1}.png")
        if not image.save(str(path)):
            raise OSError(f"could not write {path}")
        out.append(path)
    del app
    return out


def main() -> int:
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else DOCS / "images"
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "PROJECT"
        make_project(project)
        intervals = read_intervals(DOCS / "examples" / "reference_intervals.csv",
                                   DEFAULT_CLASSES)
        draft = build_report_data(project, "C-2026-0117", intervals=intervals)
        (Path(tmp) / "draft.pdf").write_bytes(render_pdf(draft))
        signed = sign_case(project, "C-2026-0117", "Dr Ada Smith", intervals=intervals)
        pages = rasterise(Path(tmp) / "draft.pdf", out_dir / "report_page")
        pages += rasterise(signed.pdf_path, out_dir / "report_signed_page", pages=1)
    for p in pages:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
