"""The review gallery dock: keys reclassify / accept / remove through the Correct dock's
undoable edits, the gallery follows its undo, Space centres the camera, audit on save."""
from types import SimpleNamespace

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_wbcseg._widgets import review_gallery_actions as actions_module
from napari_wbcseg.schema import UNIDENTIFIED, labels_layer_kwargs

GALLERY, CORRECT = "Review cells", "Correct white-cell labels"
KINDS = ("nucleus", "cytoplasm", "cell_type")


@pytest.fixture(scope="module")
def smear():
    from napari_wbcseg.core.synthetic import synthetic_smear

    s = synthetic_smear(shape=(256, 320), n_wbc=3, seed=1, classes=[1, 2, 3])
    return SimpleNamespace(image=s.image, nucleus=s.nucleus, cytoplasm=s.cytoplasm,
                           cell_type=s.cell_type)


@pytest.fixture
def setup(make_napari_viewer, smear, monkeypatch, qtbot):
    notes = []
    monkeypatch.setattr(actions_module, "show_info", notes.append)
    monkeypatch.setattr(actions_module, "show_warning", notes.append)
    viewer = make_napari_viewer()
    viewer.add_image(smear.image, name="field", rgb=True)
    layers = {k: viewer.add_labels(getattr(smear, k).copy(), **labels_layer_kwargs("field", k))
              for k in KINDS}
    _, gallery = viewer.window.add_plugin_dock_widget("napari-wbcseg", GALLERY)
    _, correct = viewer.window.add_plugin_dock_widget("napari-wbcseg", CORRECT)
    return SimpleNamespace(viewer=viewer, layers=layers, g=gallery, cw=correct, notes=notes)


def _code_in_layer(s, cid):
    a = s.layers
    mask = (np.asarray(a["nucleus"].data) == cid) | (np.asarray(a["cytoplasm"].data) == cid)
    return set(np.unique(np.asarray(a["cell_type"].data)[mask]).tolist())


def _gallery_cell(s, cid):
    return next((c for c in s.g.model.rows.cells if c.cell_id == cid), None)


def _settle(qtbot, s):
    qtbot.wait(10)
    qtbot.waitUntil(lambda: not s.g._timer.isActive())


def test_groups_one_per_class_of_the_table_after_needs_review(setup):
    g = setup.g
    titles = [grp.title for grp in g.model.rows.groups]
    assert titles == ["needs review", "neutrophil", "lymphocyte", "monocyte", "eosinophil",
                      "basophil"]
    assert [c.cell_id for c in g.model.rows.cells] == [1, 2, 3]
    assert g.current_cell().cell_id == 1
    assert g.reviewed_label.value == "0 of 3 reviewed"


def test_class_key_reclassifies_and_correct_undo_restores(setup, qtbot):
    s = setup
    assert _code_in_layer(s, 1) == {1}
    qtbot.keyClick(s.g.view, Qt.Key.Key_2)
    assert _code_in_layer(s, 1) == {2}
    _settle(qtbot, s)
    assert _gallery_cell(s, 1).code == 2
    assert s.g.model.rows.groups[2].cells[0].cell_id in (1, 2)  # now among the lymphocytes
    assert s.g.current_cell().cell_id != 1  # moved on to the next cell
    assert s.cw.undo()
    assert _code_in_layer(s, 1) == {1}
    _settle(qtbot, s)
    assert _gallery_cell(s, 1).code == 1  # the gallery follows the Correct dock's undo
    entry = s.g.audit.pending[0]
    assert (entry.image, entry.cell_id, entry.action, entry.from_code, entry.to_code) == (
        "field", 1, "reclassify", 1, 2)


def test_ctrl_digit_is_the_correct_docks_order(setup, qtbot):
    s = setup
    qtbot.keyClick(s.g.view, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    assert _code_in_layer(s, 1) == {3}


def test_enter_marks_reviewed_and_moves_on(setup, qtbot):
    s = setup
    qtbot.keyClick(s.g.view, Qt.Key.Key_Return)
    assert 1 in s.cw.current.review.cells
    _settle(qtbot, s)
    assert s.g.reviewed_label.value == "1 of 3 reviewed"
    assert s.g.current_cell().cell_id == 2
    assert _code_in_layer(s, 1) == {1}  # the class is kept
    assert s.g.audit.pending[-1].action == "accept"


def test_u_sets_unidentified_and_delete_removes(setup, qtbot):
    s = setup
    qtbot.keyClick(s.g.view, Qt.Key.Key_U)
    assert _code_in_layer(s, 1) == {UNIDENTIFIED}
    _settle(qtbot, s)
    assert [c.cell_id for c in s.g.model.rows.groups[0].cells] == [1]  # needs review
    s.g.set_current_row(s.g.model.rows.row_of(("field", 3)))
    qtbot.keyClick(s.g.view, Qt.Key.Key_Delete)
    assert not (np.asarray(s.layers["nucleus"].data) == 3).any()
    _settle(qtbot, s)
    assert _gallery_cell(s, 3) is None
    assert [e.action for e in s.g.audit.pending] == ["unidentified", "delete"]
    assert s.cw.undo()  # the delete is the Correct dock's undoable step
    _settle(qtbot, s)
    assert _gallery_cell(s, 3) is not None


def test_space_centres_the_camera_on_the_cell_keeping_zoom(setup, qtbot):
    s = setup
    s.viewer.camera.zoom = 3.0
    s.g.set_current_row(s.g.model.rows.row_of(("field", 2)))
    qtbot.keyClick(s.g.view, Qt.Key.Key_Space)
    rows, cols = np.nonzero((s.layers["nucleus"].data == 2) | (s.layers["cytoplasm"].data == 2))
    assert np.allclose(s.viewer.camera.center[-2:], (rows.mean(), cols.mean()), atol=0.5)
    assert s.viewer.camera.zoom == pytest.approx(3.0)
    assert s.cw.selected == 2  # selected in the Correct dock too


def test_opens_the_correct_dock_when_missing(make_napari_viewer, smear, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(smear.image, name="field", rgb=True)
    layers = {k: viewer.add_labels(getattr(smear, k).copy(), **labels_layer_kwargs("field", k))
              for k in KINDS}
    _, g = viewer.window.add_plugin_dock_widget("napari-wbcseg", GALLERY)
    assert g.correction_dock(create=False) is None
    assert g.on_key("3")
    assert g.correction_dock(create=False) is not None
    assert set(np.unique(layers["cell_type"].data[layers["nucleus"].data == 1])) == {3}


def test_audit_is_written_when_the_project_is_saved(setup, qtbot, tmp_path):
    from napari_wbcseg.review.audit import read_audit

    s = setup
    qtbot.keyClick(s.g.view, Qt.Key.Key_2)
    assert s.cw.save_project(tmp_path / "proj")
    entries = read_audit(tmp_path / "proj")
    assert [(e.cell_id, e.action, e.to_code) for e in entries] == [(1, "reclassify", 2)]
    assert s.g.audit.pending == ()


def test_slide_count_and_target(setup, qtbot):
    s = setup
    s.g.target.value = 3
    qtbot.waitUntil(lambda: "target reached" in s.g.progress_label.value, timeout=5000)
    s.g.target.value = 10
    qtbot.waitUntil(lambda: "7 to go" in s.g.progress_label.value, timeout=5000)
