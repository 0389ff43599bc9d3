"""One key press in the gallery: one recount, no cell measured again (the class edit and the
review mark are one update); a project's class table keeps its hotkeys (marrow-icsh)."""
from types import SimpleNamespace

import numpy as np
import pytest

from napari_wbcseg._widgets import live_counts as lc_module
from napari_wbcseg._widgets import review_gallery_actions as actions_module
from napari_wbcseg.core import image_counts as ic_module
from napari_wbcseg.core import measurements
from napari_wbcseg.schema import DEFAULT_CLASSES, UNIDENTIFIED, labels_layer_kwargs
from napari_wbcseg.schemes.builtin import load_scheme
from napari_wbcseg.schemes.tables import classes_to_json

KINDS = ("nucleus", "cytoplasm", "cell_type")


@pytest.fixture(scope="module")
def smear():
    from napari_wbcseg.core.synthetic import synthetic_smear

    return synthetic_smear(shape=(256, 320), n_wbc=3, seed=1, classes=[1, 2, 3])


def _open(make_napari_viewer, smear, monkeypatch, classes=None):
    for name in ("show_info", "show_warning"):
        monkeypatch.setattr(actions_module, name, lambda *_: None)
    viewer = make_napari_viewer()
    viewer.add_image(smear.image, name="field", rgb=True)
    meta = {} if classes is None else {"classes": classes_to_json(classes)}
    layers = {k: viewer.add_labels(getattr(smear, k).copy(), metadata=dict(meta),
                                   **labels_layer_kwargs("field", k, classes or DEFAULT_CLASSES))
              for k in KINDS}
    _, gallery = viewer.window.add_plugin_dock_widget("napari-wbcseg", "Review cells")
    _, correct = viewer.window.add_plugin_dock_widget("napari-wbcseg",
                                                      "Correct white-cell labels")
    return SimpleNamespace(viewer=viewer, layers=layers, g=gallery, cw=correct)


def _codes(s, cid):
    mask = (np.asarray(s.layers["nucleus"].data) == cid) | (
        np.asarray(s.layers["cytoplasm"].data) == cid)
    return set(np.unique(np.asarray(s.layers["cell_type"].data)[mask]).tolist())


def _cell(s, cid):
    return next(c for c in s.g.model.rows.cells if c.cell_id == cid)


def test_one_key_press_one_recount_and_no_cell_measured(make_napari_viewer, smear,
                                                        monkeypatch, qtbot):
    s = _open(make_napari_viewer, smear, monkeypatch)
    live = s.cw.current.live
    live.current()
    measured, published = [], []
    real_table, real_publish = ic_module.cell_table, lc_module.LiveCounts._publish
    counting = lambda *a, **k: measured.append(1) or real_table(*a, **k)  # noqa: E731
    monkeypatch.setattr(ic_module, "cell_table", counting)
    monkeypatch.setattr(measurements, "cell_table", counting)
    monkeypatch.setattr(lc_module.LiveCounts, "_publish",
                        lambda self, *a: published.append(1) or real_publish(self, *a))
    assert s.g.current_cell().cell_id == 1
    assert s.g.on_key("4")  # class edit + review mark
    assert _codes(s, 1) == {4} and 1 in s.cw.current.review.cells
    qtbot.wait(100)  # the layers' own events and the gallery's refresh have run
    assert len(published) == 1 and measured == []
    assert _cell(s, 1).code == 4 and _cell(s, 1).reviewed
    assert s.layers["nucleus"].features.set_index("index").loc[1, "class_code"] == 4
    assert s.cw.undo()  # the Correct dock's undo: the old class, still nothing measured
    qtbot.waitUntil(lambda: _cell(s, 1).code == 1, timeout=5000)
    assert _codes(s, 1) == {1} and measured == []
    assert "1 of 3 reviewed" in s.g.reviewed_label.value  # the mark is not the class edit


def test_marrow_table_keeps_its_hotkeys(make_napari_viewer, smear, monkeypatch, qtbot):
    marrow = load_scheme("marrow-icsh").classes
    s = _open(make_napari_viewer, smear, monkeypatch, classes=marrow)
    assert [c.hotkey for c in s.g.classes] == [c.hotkey for c in marrow]  # 16 + unidentified
    assert len(s.g.model.rows.groups) == 17  # needs review + 16 classes
    for key, code in (("0", 10), ("a", 12), ("p", 11), ("u", UNIDENTIFIED)):
        cell = s.g.current_cell()
        assert s.g.on_key(key), key
        assert _codes(s, cell.cell_id) == {code}, key
        qtbot.wait(20)


def test_layer_classes_restore_a_builtin_table_stored_without_hotkeys(make_napari_viewer):
    marrow = load_scheme("marrow-icsh").classes
    viewer = make_napari_viewer()
    bare = [{"code": c.code, "name": c.name, "color": c.color} for c in marrow]
    layer = viewer.add_labels(np.zeros((4, 4), np.uint8), metadata={"classes": bare})
    assert [(c.hotkey, c.group) for c in lc_module.layer_classes(layer)] == [
        (c.hotkey, c.group) for c in marrow]
    custom = [{"code": 7, "name": "blast", "color": "#ff0000", "hotkey": "b"}]
    layer.metadata = {"classes": custom}
    assert lc_module.layer_classes(layer)[0].hotkey == "b"
    layer.metadata = {"classes": [{"name": "no code"}]}
    assert lc_module.layer_classes(layer) == lc_module.DEFAULT_CLASSES
