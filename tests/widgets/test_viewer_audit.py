"""One audit trail per viewer, fed by both docks: the Correct dock's Ctrl+digit, Delete
cell and merge, their undo (the reverse change) and redo; a gallery key recorded once;
two windows each write their own project's trail; the log goes with its viewer; a
signature holds an edit of an image new to the project (the trail is written after the
project's files, before the report)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from qtpy.QtCore import Qt
from qtpy.QtTest import QTest

from napari_wbcseg._widgets import case_panel_actions as cpa_module
from napari_wbcseg._widgets import correction_widget as cw_module
from napari_wbcseg._widgets import project_panel as pp_module
from napari_wbcseg._widgets import review_gallery_actions as ga_module
from napari_wbcseg._widgets import viewer_audit
from napari_wbcseg.review import read_audit
from napari_wbcseg.schema import UNIDENTIFIED, labels_layer_kwargs

GALLERY, CORRECT = "Review cells", "Correct white-cell labels"
KINDS = ("nucleus", "cytoplasm", "cell_type")


@pytest.fixture(scope="module")
def smear():
    from napari_wbcseg.core.synthetic import synthetic_smear

    return synthetic_smear(shape=(192, 224), n_wbc=3, seed=1, classes=[1, 2, 3])


@pytest.fixture
def notes(monkeypatch):
    shown = {"info": [], "warning": [], "error": []}
    for kind in shown:
        for module in (cw_module, pp_module, ga_module, cpa_module, viewer_audit):
            if hasattr(module, f"show_{kind}"):
                monkeypatch.setattr(module, f"show_{kind}", shown[kind].append)
    return shown


def _add_field(viewer, smear, name="field"):
    viewer.add_image(smear.image, name=name, rgb=True)
    return {k: viewer.add_labels(getattr(smear, k).copy(), **labels_layer_kwargs(name, k))
            for k in KINDS}


@pytest.fixture
def window(make_napari_viewer, smear, notes):
    viewer = make_napari_viewer()
    layers = _add_field(viewer, smear)
    _, cw = viewer.window.add_plugin_dock_widget("napari-wbcseg", CORRECT)
    return SimpleNamespace(viewer=viewer, layers=layers, cw=cw, notes=notes,
                           log=lambda: viewer_audit.audit_log(viewer))


def _trail(entries):
    return [(e.image, e.cell_id, e.action, e.from_code, e.to_code) for e in entries]


def _code(w, cid):
    a = w.cw.current.arrays()
    return set(np.unique(a["cell_type"][(a["nucleus"] == cid) | (a["cytoplasm"] == cid)]))


def _press(viewer, key):
    QTest.keyClick(viewer.window._qt_viewer.canvas.native, key,
                   Qt.KeyboardModifier.ControlModifier)


def test_ctrl_digit_in_the_correct_dock_is_one_entry_with_its_codes(window):
    w = window
    w.cw.select(1)
    _press(w.viewer, Qt.Key.Key_2)
    assert _code(w, 1) == {2}
    assert _trail(w.log().pending) == [("field", 1, "reclassify", 1, 2)]
    _press(w.viewer, Qt.Key.Key_0)
    _press(w.viewer, Qt.Key.Key_0)  # already unidentified: nothing changes, nothing recorded
    assert _trail(w.log().pending)[1:] == [("field", 1, "unidentified", 2, UNIDENTIFIED)]
    assert w.log().pending[0].who == w.log().who


def test_delete_and_its_undo_and_redo(window):
    w = window
    w.cw.select(2)
    assert w.cw.delete_cell()
    assert _trail(w.log().pending) == [("field", 2, "delete", 2, 0)]
    assert w.cw.undo() and _code(w, 2) == {2}
    # the cell is back with its class: the trail says so
    assert _trail(w.log().pending)[1:] == [("field", 2, "restore", 2, 2)]
    assert w.cw.redo() and not _code(w, 2)
    assert _trail(w.log().pending)[2:] == [("field", 2, "delete", 2, 0)]


def test_undo_of_a_class_change_records_the_reverse_change(window):
    w = window
    w.cw.select(1)
    assert w.cw.set_class(3)
    w.cw._undo_key(w.layers["nucleus"])  # Ctrl+Z on a label layer
    assert _code(w, 1) == {1}
    assert _trail(w.log().pending) == [("field", 1, "reclassify", 1, 3),
                                       ("field", 1, "reclassify", 3, 1)]
    assert not w.cw.undo()  # nothing left: nothing recorded
    assert len(w.log().pending) == 2


def test_undo_of_a_brush_stroke_is_not_taken_for_the_class_change(window, qtbot):
    w = window
    w.cw.select(1)
    assert w.cw.set_class(3)
    nucleus = np.asarray(w.layers["nucleus"].data)
    rows, cols = np.nonzero(nucleus == 2)
    w.layers["cell_type"].data_setitem((rows[:5], cols[:5]), 1)  # napari's brush, cell 2
    qtbot.wait(100)  # the stroke's repair (a timer) and recount
    assert w.cw.undo()  # the stroke
    assert _code(w, 1) == {3} and len(w.log().pending) == 1
    assert w.cw.undo()  # the class change
    assert _trail(w.log().pending)[1:] == [("field", 1, "reclassify", 3, 1)]


def test_merge_records_the_absorbed_cell_as_deleted(window):
    w = window
    a = w.cw.current.arrays()
    area = {c: int(((a["nucleus"] == c) | (a["cytoplasm"] == c)).sum()) for c in (1, 3)}
    w.cw.select(1, second=3)
    assert w.cw.merge()
    kept = 1 if area[1] >= area[3] else 3  # the larger cell's class
    want = [("field", 3, "delete", 3, 0)]
    if kept == 3:
        want.append(("field", 1, "reclassify", 1, 3))
    assert _trail(w.log().pending) == want
    assert w.cw.undo()
    assert _trail(w.log().pending)[len(want):][0] == ("field", 3, "restore", 3, 3)


def test_a_gallery_key_is_one_entry(window, qtbot):
    w = window
    _, g = w.viewer.window.add_plugin_dock_widget("napari-wbcseg", GALLERY)
    assert g.audit is w.log()  # one log for both docks
    g.set_current_row(g.model.rows.row_of(("field", 1)))
    qtbot.keyClick(g.view, Qt.Key.Key_2)
    assert _trail(w.log().pending) == [("field", 1, "reclassify", 1, 2)]
    g.set_current_row(g.model.rows.row_of(("field", 2)))
    qtbot.keyClick(g.view, Qt.Key.Key_Delete)
    g.set_current_row(g.model.rows.row_of(("field", 3)))
    qtbot.keyClick(g.view, Qt.Key.Key_Return)
    assert _trail(w.log().pending)[1:] == [("field", 2, "delete", 2, 0),
                                           ("field", 3, "accept", 3, 3)]


def test_two_windows_each_write_their_own_trail(make_napari_viewer, smear, notes, tmp_path):
    saved = []
    for cid, code in ((1, 2), (2, 3)):
        viewer = make_napari_viewer()
        _add_field(viewer, smear)
        _, cw = viewer.window.add_plugin_dock_widget("napari-wbcseg", CORRECT)
        cw.select(cid)
        assert cw.set_class(code)
        saved.append((viewer, cw, tmp_path / f"proj {cid}"))
    for viewer, cw, folder in reversed(saved):
        assert cw.save_project(folder) == ["field"]
        assert viewer_audit.audit_log(viewer).pending == ()
    assert _trail(read_audit(saved[0][2])) == [("field", 1, "reclassify", 1, 2)]
    assert _trail(read_audit(saved[1][2])) == [("field", 2, "reclassify", 2, 3)]
    assert not notes["warning"] and not notes["error"]


def test_the_log_is_dropped_when_the_viewer_closes(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer_audit.audit_log(viewer).record("field", 1, "accept", 1, 1)
    assert viewer_audit.has_log(viewer)
    viewer.close()
    qtbot.waitUntil(lambda: not viewer_audit.has_log(viewer), timeout=5000)


def test_a_signature_has_an_edit_of_an_image_new_to_the_project(window, smear, qtbot,
                                                                tmp_path, monkeypatch):
    import json

    from napari_wbcseg._widgets.case_panel import CasePanel
    from napari_wbcseg.report import signed_versions

    w = window
    folder = tmp_path / "proj"
    assert w.cw.save_project(folder) == ["field"]
    _add_field(w.viewer, smear, "field 2")  # not in the project yet
    w.cw.layer_set.value = "field 2"
    w.cw.select(1)
    assert w.cw.set_class(2)
    _, g = w.viewer.window.add_plugin_dock_widget("napari-wbcseg", GALLERY)
    p = g.case_panel
    p.case_id.value, p.slide_id.value, p.reviewer.value = "C-9", "S 9", "Dr A"
    monkeypatch.setattr(CasePanel, "_confirm", lambda self, question: True)
    assert p.sign() is not None
    qtbot.waitUntil(lambda: p.worker is None, timeout=60000)
    assert not w.notes["error"] and not w.notes["warning"]
    assert _trail(read_audit(folder)) == [("field 2", 1, "reclassify", 1, 2)]
    (v1,) = signed_versions(folder, "C-9")
    signed = json.loads(v1.json_path.read_text())["audit"]
    assert [(a["image"], a["cell_id"], a["action"]) for a in signed] == [
        ("field 2", 1, "reclassify")]  # the signed report has it
    assert w.log().pending == ()
