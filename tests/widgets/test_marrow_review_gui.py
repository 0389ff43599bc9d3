"""A bone-marrow case end to end in the GUI (issue 15), with the 16-class marrow-icsh table:
a synthetic marrow project opened through the Correct dock's *Open project...*; a class set
there with Ctrl+digit and in the review gallery with the scheme's own keys ("p" plasma
cell, "0" metamyelocyte), Enter and U; the layers, the 16 class groups, "n of N
reviewed" and the audit trail written on saving (the Correct dock's Ctrl+2 edit in it
too); then the case panel (marrow: target 500), Save case, Report... (a PDF naming marrow
classes with the M:E ratio; its audit trail has the Ctrl+2 edit) and Sign... (v1,
read-only).  The classifier is left out: tests/test_marrow_end_to_end.py trains one.
"""
from __future__ import annotations

import io
import shutil
import stat

import numpy as np
import pytest
from qtpy.QtCore import Qt
from qtpy.QtTest import QTest

from napari_wbcseg._widgets import case_panel as cp_module
from napari_wbcseg._widgets import case_panel_actions as cpa_module
from napari_wbcseg._widgets import project_panel as pp_module
from napari_wbcseg._widgets import review_gallery_actions as ga_module
from napari_wbcseg.core.synthetic import synthetic_smear
from napari_wbcseg.io.project import create_project, read_project, save_image_entry
from napari_wbcseg.schema import UNIDENTIFIED
from napari_wbcseg.schemes import builtin_schemes, myeloid_erythroid_ratio

MARROW = builtin_schemes()["marrow-icsh"]
CODES = [c.code for c in MARROW.classes if c.code != UNIDENTIFIED]
NAMES = {c.code: c.name for c in MARROW.classes}
GALLERY, CORRECT = "Review cells", "Correct white-cell labels"
FIELD = "marrow field"
PIXEL_UM = 0.5  # coarse pixels: the 16 cells fit a small field


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A marrow project with one field of 16 cells, one of each class, none reviewed."""
    smear = synthetic_smear((360, 480), n_wbc=len(CODES), seed=4, classes=CODES,
                            scheme="marrow-icsh", pixel_size_um=PIXEL_UM, rbc_density=0.15)
    folder = tmp_path_factory.mktemp("marrow-gui") / "project"
    create_project(folder, "marrow-icsh", pixel_size_um=PIXEL_UM)
    save_image_entry(folder, FIELD, smear.image, smear.nucleus, smear.cytoplasm,
                     smear.cell_type)
    return folder, smear


@pytest.fixture
def notes(monkeypatch):
    shown = {"info": [], "warning": [], "error": []}
    for kind in shown:
        for module in (cp_module, cpa_module, pp_module, ga_module):
            if hasattr(module, f"show_{kind}"):
                monkeypatch.setattr(module, f"show_{kind}", shown[kind].append)
    return shown


def _cell_of(smear, code):
    return next(cid for cid, c in smear.classes.items() if c == code)


def _codes(viewer, cid):
    nucleus, cytoplasm, cell_type = (np.asarray(viewer.layers[f"{FIELD} {k}"].data)
                                     for k in ("nucleus", "cytoplasm", "cell type"))
    return set(np.unique(cell_type[(nucleus == cid) | (cytoplasm == cid)]).tolist())


def _gallery_key(qtbot, gallery, cid, key):
    gallery.set_current_row(gallery.model.rows.row_of((FIELD, cid)))
    qtbot.keyClick(gallery.view, key)


def _settle(qtbot, gallery):
    qtbot.wait(10)
    qtbot.waitUntil(lambda: not gallery._timer.isActive())


def test_marrow_case_from_project_to_signed_report(make_napari_viewer, pristine, notes,
                                                   qtbot, tmp_path, monkeypatch):
    from pypdf import PdfReader

    from napari_wbcseg.report import build_report_data, signed_versions
    from napari_wbcseg.review import case_count, read_audit, read_cases

    folder = tmp_path / "project"
    shutil.copytree(pristine[0], folder)
    smear = pristine[1]
    viewer = make_napari_viewer()
    _, cw = viewer.window.add_plugin_dock_widget("napari-wbcseg", CORRECT)
    _, g = viewer.window.add_plugin_dock_widget("napari-wbcseg", GALLERY)
    p = g.case_panel

    # ---- open through the Correct dock's button (decoded in a worker) -----------------------
    monkeypatch.setattr(type(cw), "_ask_folder", lambda self, title: str(folder))
    cw.open_button.native.click()
    qtbot.waitUntil(lambda: cw.project_worker is None, timeout=30000)
    assert not notes["error"]
    _settle(qtbot, g)
    titles = [grp.title for grp in g.model.rows.groups]
    assert titles == ["needs review"] + [NAMES[c] for c in CODES]  # 16 class groups
    assert len(g.model.rows.cells) == 16 and g.reviewed_label.value == "0 of 16 reviewed"
    assert (p.kind.value, p.case_target.value, g.target.value) == ("marrow", 500, 500)
    assert "of 500 cells counted" in g.progress_label.value

    # ---- the Correct dock: Ctrl+2 is the table's second class (promyelocyte) ------------------
    blast = _cell_of(smear, 7)
    cw.select(blast)
    QTest.keyClick(viewer.window._qt_viewer.canvas.native, Qt.Key.Key_2,
                   Qt.KeyboardModifier.ControlModifier)
    assert _codes(viewer, blast) == {8}

    # ---- the gallery: the scheme's own keys, Enter, U -----------------------------------------
    lympho, myelo, mono, band = (_cell_of(smear, c) for c in (2, 9, 3, 6))
    _gallery_key(qtbot, g, lympho, Qt.Key.Key_P)  # plasma cell
    _gallery_key(qtbot, g, myelo, Qt.Key.Key_0)  # metamyelocyte (not unidentified)
    _gallery_key(qtbot, g, mono, Qt.Key.Key_Return)  # accepted as it is
    _gallery_key(qtbot, g, band, Qt.Key.Key_U)
    assert [_codes(viewer, c) for c in (lympho, myelo, mono, band)] == [
        {11}, {10}, {3}, {UNIDENTIFIED}]
    _settle(qtbot, g)
    groups = {grp.title: [c.cell_id for c in grp.cells] for grp in g.model.rows.groups}
    assert groups["needs review"] == [band]
    assert lympho in groups["plasma cell"] and blast in groups["promyelocyte"]
    assert sorted(groups["metamyelocyte"]) == sorted([myelo, _cell_of(smear, 10)])
    assert groups["band neutrophil"] == [] and groups["lymphocyte"] == []
    assert g.reviewed_label.value == "4 of 16 reviewed"  # the Ctrl+2 edit marks none

    # ---- save (the Correct dock's button): layers, review marks and the audit trail --------
    cw.save_button.native.click()
    qtbot.waitUntil(lambda: cw.project_worker is None, timeout=30000)
    assert not notes["error"]
    trail = [(e.image, e.cell_id, e.action, e.from_code, e.to_code) for e in read_audit(folder)]
    assert trail == [(FIELD, blast, "reclassify", 7, 8),  # the Correct dock's Ctrl+2
                     (FIELD, lympho, "reclassify", 2, 11), (FIELD, myelo, "reclassify", 9, 10),
                     (FIELD, mono, "accept", 3, 3), (FIELD, band, "unidentified", 6, 255)]
    (entry,) = read_project(folder).entries
    assert sorted(entry.reviewed_cells) == sorted([lympho, myelo, mono, band])

    # ---- the case, its draft report and its signature ---------------------------------------
    p.case_id.value, p.slide_id.value = "BM-7", "BM 7/2026"
    p.save_case_button.native.click()
    qtbot.waitUntil(lambda: p.worker is None, timeout=30000)
    case = read_cases(folder)["BM-7"]
    assert (case.kind, case.target, case.images) == ("marrow", 500, [FIELD])
    count = case_count(folder, case)
    # one cell of each class to start with: two plasma cells and two promyelocytes now
    assert (count.counts[11], count.counts[8], count.counts[255]) == (2, 2, 1)
    assert count.counts.get(2, 0) == count.counts.get(7, 0) == 0
    ratio = myeloid_erythroid_ratio(count.counts, MARROW)

    out = tmp_path / "drafts" / "BM-7.pdf"
    out.parent.mkdir()
    monkeypatch.setattr(cp_module.CasePanel, "_ask_report_path", lambda self: str(out))
    p.report_button.native.click()
    qtbot.waitUntil(lambda: p.worker is None, timeout=30000)
    assert not notes["error"]
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(out.read_bytes())).pages)
    for name in ("plasma cell", "promyelocyte", "metamyelocyte", "orthochromatic erythroblast"):
        assert name in text, name
    assert "M:E ratio" in text and f"{ratio:.2f} : 1" in text and "BM-7" in text
    rows = [(a.cell_id, a.action, a.from_class, a.to_class)
            for a in build_report_data(folder, "BM-7").audit]
    assert rows[0] == (blast, "reclassify", NAMES[7], NAMES[8])  # the report's trail has it

    p.reviewer.value = "Dr M. Row"
    monkeypatch.setattr(cp_module.CasePanel, "_confirm", lambda self, question: True)
    p.sign_button.native.click()
    qtbot.waitUntil(lambda: p.worker is None, timeout=30000)
    assert not notes["error"]
    (v1,) = signed_versions(folder, "BM-7")
    assert v1.version == 1
    for path in (v1.pdf_path, v1.html_path, v1.json_path):
        assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
