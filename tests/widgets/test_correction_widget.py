"""The correction dock widget on a synthetic smear: edits, napari undo, table, review, project."""
from types import SimpleNamespace

import numpy as np
import pytest

from napari_wbcseg._widgets import correction_widget as cw_module
from napari_wbcseg._widgets import project_panel as pp_module
from napari_wbcseg.schema import UNIDENTIFIED, check_labels, labels_layer_kwargs

WIDGET = "Correct white-cell labels"
KINDS = ("nucleus", "cytoplasm", "cell_type")


@pytest.fixture(scope="module")
def smear():
    from napari_wbcseg.core.synthetic import synthetic_smear

    s = synthetic_smear(shape=(256, 320), n_wbc=3, seed=1, classes=[1, 2, 3])
    nucleus, cytoplasm, cell_type = s.nucleus.copy(), s.cytoplasm.copy(), s.cell_type.copy()
    # a hole in cell 1's nucleus, for "fill holes"
    from scipy import ndimage as ndi

    core = ndi.binary_erosion(nucleus == 1, np.ones((7, 7), bool))
    r, c = np.argwhere(core)[len(np.argwhere(core)) // 2]
    nucleus[r - 1:r + 2, c - 1:c + 2] = 0
    cell_type[r - 1:r + 2, c - 1:c + 2] = 0
    check_labels(nucleus, cytoplasm, cell_type)
    return SimpleNamespace(image=s.image, nucleus=nucleus, cytoplasm=cytoplasm,
                           cell_type=cell_type, hole=(r, c))


def _add_set(viewer, smear, name="field"):
    viewer.add_image(smear.image, name=name, rgb=True)
    return {k: viewer.add_labels(getattr(smear, k).copy(), **labels_layer_kwargs(name, k))
            for k in KINDS}


@pytest.fixture
def notes(monkeypatch):
    shown = {"info": [], "warning": [], "error": []}
    for kind in shown:
        for module in (cw_module, pp_module):
            if hasattr(module, f"show_{kind}"):
                monkeypatch.setattr(module, f"show_{kind}", shown[kind].append)
    return shown


@pytest.fixture
def setup(make_napari_viewer, smear, notes):
    viewer = make_napari_viewer()
    layers = _add_set(viewer, smear)
    _, w = viewer.window.add_plugin_dock_widget("napari-wbcseg", WIDGET)
    return viewer, w, layers


def _data(layers):
    return {k: np.array(layers[k].data) for k in KINDS}


def _same(layers, before):
    return all(np.array_equal(layers[k].data, before[k]) for k in KINDS)


def _inside(smear, cid):
    """A nucleus pixel of cell ``cid`` (row, column)."""
    return tuple(np.argwhere(smear.nucleus == cid)[0])


def test_finds_the_layer_set_and_writes_the_table(setup):
    viewer, w, layers = setup
    assert w.layer_set.value == "field" and w.current is not None
    feats = layers["nucleus"].features
    assert list(feats["index"]) == [1, 2, 3]
    assert list(feats["class"]) == ["neutrophil", "lymphocyte", "monocyte"]
    assert w.counts.value["data"][:3] == [["neutrophil", 1, "33.3 %"], ["lymphocyte", 1, "33.3 %"],
                                          ["monocyte", 1, "33.3 %"]]
    assert [b.text for b in w.class_buttons][:2] == ["neutrophil (Ctrl+1)", "lymphocyte (Ctrl+2)"]
    assert w.class_buttons[-1].text == "unidentified (Ctrl+0)"
    # a set whose label layer goes away is dropped at once
    viewer.layers.remove(layers["cytoplasm"])
    assert w.current is None and w.layer_set.value is None


def test_click_selects_and_shows_the_cell(setup, smear):
    viewer, w, layers = setup
    yx = _inside(smear, 2)
    event = SimpleNamespace(type="mouse_press", button=1, position=yx, modifiers=())
    assert w._on_mouse in viewer.mouse_drag_callbacks
    gen = w._on_mouse(viewer, event)
    next(gen)
    event.type = "mouse_release"
    with pytest.raises(StopIteration):
        next(gen)
    assert w.selected == 2
    area = int(((smear.nucleus == 2) | (smear.cytoplasm == 2)).sum())
    assert "Cell 2: lymphocyte" in w.info.value and f"area {area} px" in w.info.value
    assert layers["nucleus"].selected_label == 2
    outline = viewer.layers["field selected cell"]
    assert len(outline.data) == 1
    w.select_at(_inside(smear, 3), add=True)
    assert (w.selected, w.second) == (2, 3) and len(outline.data) == 2
    current = w.current
    viewer.add_points([[1, 1]], name="unrelated")  # other layers come and go: same selection
    viewer.layers.remove("unrelated")
    assert w.current is current and (w.selected, w.second) == (2, 3)


def test_set_class_by_button_and_by_key(setup, smear, qtbot):
    from qtpy.QtCore import Qt

    viewer, w, layers = setup
    w.select_at(_inside(smear, 1))
    w.class_buttons[2].native.click()  # monocyte
    cell = (smear.nucleus == 1) | (smear.cytoplasm == 1)
    assert (layers["cell_type"].data[cell] == 3).all()
    assert layers["nucleus"].features.set_index("index").loc[1, "class"] == "monocyte"
    assert w.counts.value["data"][2] == ["monocyte", 2, "66.7 %"]
    # a real key press on the canvas, with a label layer active and with the image active
    ctrl = Qt.KeyboardModifier.ControlModifier
    viewer.layers.selection.active = layers["cytoplasm"]
    qtbot.keyClick(viewer.window._qt_viewer.canvas.native, Qt.Key.Key_5, ctrl)
    assert (layers["cell_type"].data[cell] == 5).all()
    assert layers["cytoplasm"].mode == "pan_zoom"  # the key did not switch napari's pick mode
    viewer.layers.selection.active = viewer.layers["field"]
    qtbot.keyClick(viewer.window._qt_viewer.canvas.native, Qt.Key.Key_2, ctrl)
    assert (layers["cell_type"].data[cell] == 2).all()
    assert viewer.layers["field"].mode == "pan_zoom"  # not napari's image transform mode
    qtbot.keyClick(viewer.window._qt_viewer.canvas.native, Qt.Key.Key_0, ctrl)
    assert (layers["cell_type"].data[cell] == UNIDENTIFIED).all()
    assert w.counts.value["data"][-1] == ["unidentified", 1, "33.3 %"]
    # Ctrl+Z on the layer undoes the class changes one by one
    viewer.layers.selection.active = layers["nucleus"]
    for code in (2, 5, 3, 1):
        qtbot.keyClick(viewer.window._qt_viewer.canvas.native, Qt.Key.Key_Z,
                       Qt.KeyboardModifier.ControlModifier)
        assert (layers["cell_type"].data[cell] == code).all()
    assert np.array_equal(layers["cell_type"].data, smear.cell_type)


@pytest.mark.parametrize("op", ["delete", "merge", "fill", "split_line", "split_seeds"])
def test_edit_then_undo_restores_exactly(setup, smear, op):
    viewer, w, layers = setup
    before = _data(layers)
    w.select_at(_inside(smear, 1))
    if op == "delete":
        assert w.delete_cell()
        assert not ((layers["nucleus"].data == 1) | (layers["cytoplasm"].data == 1)).any()
        assert list(layers["nucleus"].features["index"]) == [2, 3] and w.selected == 0
    elif op == "merge":
        w.select_at(_inside(smear, 2), add=True)
        assert w.merge()
        cell2 = (smear.nucleus == 2) | (smear.cytoplasm == 2)
        assert (np.maximum(layers["nucleus"].data, layers["cytoplasm"].data)[cell2] == 1).all()
        assert list(layers["nucleus"].features["index"]) == [1, 3]
        assert sum(row[1] for row in w.counts.value["data"]) == 2
    elif op == "fill":
        r, c = smear.hole
        assert w.fill_holes()
        assert layers["nucleus"].data[r, c] == 1 and layers["cell_type"].data[r, c] == 1
        row = layers["nucleus"].features.set_index("index").loc[1]
        assert row["nucleus_area_px"] == (smear.nucleus == 1).sum() + 9
    elif op == "split_line":
        rows, cols = np.nonzero((smear.nucleus == 1) | (smear.cytoplasm == 1))
        mid = rows.mean()
        w.select(0)  # the one cell the line crosses is split
        w.draw_split_line()
        viewer.layers["field split line"].add_paths(
            [np.array([[mid, cols.min() - 5], [mid, cols.max() + 5]])])
        assert w.split_along_line()
        assert list(layers["nucleus"].features["index"]) == [1, 2, 3, 4]
        assert len(viewer.layers["field split line"].data) == 0
    else:
        rows, cols = np.nonzero(smear.nucleus == 1)
        w.place_seeds()
        seeds = viewer.layers["field split seeds"]
        top, bottom = np.argmin(rows), np.argmax(rows)
        seeds.add([[rows[top], cols[top]], [rows[bottom], cols[bottom]]])
        assert w.split_by_seeds()
        assert list(layers["nucleus"].features["index"]) == [1, 2, 3, 4]
    check_labels(*(layers[k].data for k in KINDS))
    assert not _same(layers, before)
    after = _data(layers)
    assert w.undo()
    assert _same(layers, before)
    assert list(layers["nucleus"].features["index"]) == [1, 2, 3]
    assert w.redo() and _same(layers, after)
    # napari's own per-layer undo (what data_setitem recorded) reverts it too
    for k in KINDS:
        layers[k].undo()
    assert _same(layers, before)


def test_paint_part_then_reconcile_then_undo(setup, smear, qtbot):
    viewer, w, layers = setup
    before = _data(layers)
    w.select_at(_inside(smear, 2))
    w.part.value = "nucleus"
    w.start_paint()
    nuc = layers["nucleus"]
    assert viewer.layers.selection.active is nuc and nuc.mode == "paint"
    assert nuc.selected_label == 2 and nuc.preserve_labels
    y, x = np.argwhere(smear.cytoplasm == 2)[0]
    nuc.brush_size = 5
    nuc.paint((y + 2, x + 2), nuc.selected_label)  # napari's brush, one dab
    qtbot.waitUntil(lambda: not (layers["cytoplasm"].data[nuc.data == 2] > 0).any(),
                    timeout=5000)  # reconcile: nucleus wins over the cytoplasm it covers
    check_labels(*(layers[k].data for k in KINDS))
    row = nuc.features.set_index("index").loc[2]
    assert row["nucleus_area_px"] > (smear.nucleus == 2).sum()
    w.stop_paint()
    assert nuc.mode == "pan_zoom"
    assert w.undo() and _same(layers, before)  # stroke and repair are one step
    # painting with nothing selected makes a new cell, class "unidentified"
    w.select(0)
    w.part.value = "cytoplasm"
    w.start_paint()
    cyto = layers["cytoplasm"]
    assert cyto.selected_label == 4
    cyto.paint((5, 5), 4)
    qtbot.waitUntil(lambda: layers["cell_type"].data[5, 5] == UNIDENTIFIED, timeout=5000)
    assert 4 in list(cyto.features["index"])


def test_bad_input_notifies_and_changes_nothing(setup, smear, notes):
    viewer, w, layers = setup
    before = _data(layers)
    assert w.select_at((0, 0)) == 0 and "background" in notes["info"][-1]
    assert not w.delete_cell() and "click a cell" in notes["info"][-1]
    assert not w.set_class(2) and "click a cell" in notes["info"][-1]
    w.select_at(_inside(smear, 1))
    assert not w.merge() and "two cells" in notes["info"][-1]
    assert not w.split_along_line() and "draw a split line" in notes["info"][-1]
    w.draw_split_line()
    viewer.layers["field split line"].add_paths([np.array([[0.0, 0.0], [5.0, 5.0]])])
    assert not w.split_along_line() and "does not cut" in notes["warning"][-1]
    w.select(0)
    assert not w.split_along_line() and "crosses 0 cells" in notes["info"][-1]
    w.select(1)
    w.place_seeds()
    viewer.layers["field split seeds"].add([[0, 0], [3, 3]])
    assert not w.split_by_seeds() and "not on cell" in notes["warning"][-1]
    assert not w.undo() and "nothing to undo" in notes["info"][-1]
    assert _same(layers, before) and not notes["error"]
    viewer.layers.clear()
    assert not w.delete_cell() and "no image with nucleus" in notes["info"][-1]
    assert w.save_project("/nonexistent/never") == []
    assert "no image has" in notes["error"][-1]


def test_review_and_project_round_trip(setup, smear, make_napari_viewer, tmp_path):
    viewer, w, layers = setup
    w.select_at(_inside(smear, 1))
    w.class_buttons[1].native.click()  # a correction that must survive the round trip
    assert w.toggle_cell_reviewed()
    assert layers["cell_type"].metadata["wbcseg_review"] == {"reviewed": False,
                                                            "reviewed_cells": [1]}
    assert list(layers["nucleus"].features["reviewed"]) == [True, False, False]
    w.image_reviewed.value = True
    assert layers["nucleus"].metadata["wbcseg_review"]["reviewed"] is True
    saved = _data(layers)
    assert w.save_project(tmp_path / "proj") == ["field"]

    viewer2 = make_napari_viewer()
    _, w2 = viewer2.window.add_plugin_dock_widget("napari-wbcseg", WIDGET)
    assert w2.open_project(tmp_path / "proj") == ["field"]
    assert w2.layer_set.value == "field"
    assert np.array_equal(viewer2.layers["field"].data, smear.image)
    for k, name in zip(KINDS, ("nucleus", "cytoplasm", "cell type")):
        assert np.array_equal(viewer2.layers[f"field {name}"].data, saved[k])
    assert w2.image_reviewed.value is True
    assert w2.current.review.cells == {1}
    ct = viewer2.layers["field cell type"]
    assert np.allclose(ct.colormap.map(5)[..., :3], [1.0, 32 / 255, 32 / 255], atol=0.01)
    assert list(viewer2.layers["field nucleus"].features["class"])[:2] == ["lymphocyte"] * 2
    # the training CLI's loader takes the reviewed image
    from napari_wbcseg.training.data.folders import load_project

    samples = load_project(tmp_path / "proj")
    assert len(samples) == 1 and samples[0].complete


def test_closing_the_dock_unbinds_keys_and_mouse(setup):
    from napari.utils.key_bindings import coerce_keybinding
    from qtpy.QtWidgets import QDockWidget

    viewer, w, layers = setup
    one = coerce_keybinding("Control-1")
    assert one in viewer.keymap and coerce_keybinding("Control-Z") in layers["cell_type"].keymap
    # the dock, as napari's close button does (its widget is the scroll area around w.native)
    dock = w.native.parent()
    while not isinstance(dock, QDockWidget):
        dock = dock.parent()
    viewer.window.remove_dock_widget(dock)
    assert one not in viewer.keymap
    assert coerce_keybinding("Control-Z") not in layers["cell_type"].keymap
    assert w._on_mouse not in viewer.mouse_drag_callbacks
    assert "field selected cell" not in viewer.layers


def test_widget_opened_first_picks_up_segmented_layers(make_napari_viewer, smear, notes):
    import pandas as pd

    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget("napari-wbcseg", WIDGET)
    assert w.current is None and w.layer_set.choices == ()
    layers = _add_set(viewer, smear)
    assert w.layer_set.value == "field" and w.current.layers["cell_type"] == layers["cell_type"]
    # a network's confidences (segment widget's features) stay, except on edited cells
    conf = pd.DataFrame({"index": [1, 2, 3], "confidence": [0.9, 0.8, 0.7]})
    layers["nucleus"].features = conf
    w.refresh_sets()
    w._attach("field")
    assert list(layers["nucleus"].features["confidence"]) == [0.9, 0.8, 0.7]
    w.select_at(_inside(smear, 2))
    w.set_class(4)
    got = layers["nucleus"].features["confidence"].tolist()
    assert got[0] == 0.9 and np.isnan(got[1]) and got[2] == 0.7
    # a second set (a re-run: napari numbers the names) is offered too
    viewer.add_labels(smear.nucleus, name="field nucleus")
    viewer.add_labels(smear.cytoplasm, name="field cytoplasm")
    viewer.add_labels(smear.cell_type, name="field cell type")
    assert set(w.layer_set.choices) == {"field", "field [1]"}
    w.layer_set.value = "field [1]"
    assert w.current.layers["nucleus"].name == "field nucleus [1]"
    assert w.current.image_layer.name == "field"
