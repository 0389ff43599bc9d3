"""The Correct dock's class keys (Ctrl+digit) never shadow napari's own keys: with the dock
open, napari's number keys still pick the label tools (issue 14, item 9)."""
import numpy as np
import pytest
from napari.layers import Image, Labels
from napari.utils.key_bindings import coerce_keybinding
from napari.utils.shortcuts import default_shortcuts
from qtpy.QtCore import Qt

from napari_wbcseg.schema import UNIDENTIFIED, labels_layer_kwargs

KINDS = ("nucleus", "cytoplasm", "cell_type")


@pytest.fixture
def opened(make_napari_viewer):
    from napari_wbcseg.core.synthetic import synthetic_smear

    s = synthetic_smear(shape=(128, 160), n_wbc=2, seed=3, classes=[1, 2])
    viewer = make_napari_viewer()
    viewer.add_image(s.image, name="field", rgb=True)
    layers = {k: viewer.add_labels(getattr(s, k).copy(), **labels_layer_kwargs("field", k))
              for k in KINDS}
    before = {cls: dict(cls.class_keymap) for cls in (Labels, Image)}
    _, w = viewer.window.add_plugin_dock_widget("napari-wbcseg", "Correct white-cell labels")
    assert w.current is not None
    return viewer, w, layers, s, before


def press(viewer, key, modifier=Qt.KeyboardModifier.NoModifier):
    from qtpy.QtTest import QTest

    QTest.keyClick(viewer.window._qt_viewer.canvas.native, key, modifier)


def test_class_keys_are_none_of_napari_keys(opened):
    viewer, w, layers, _, before = opened
    ours = {coerce_keybinding(k) for k in w.class_keys()}
    napari_keys = {coerce_keybinding(k) for keys in default_shortcuts.values() for k in keys}
    assert len(ours) == 6 and not ours & napari_keys  # 5 classes + unidentified
    for cls, keymap in before.items():  # napari's class keymaps are left as they were
        assert dict(cls.class_keymap) == keymap
    digits = {coerce_keybinding(str(d)) for d in range(10)}
    for owner in (viewer, viewer.layers["field"], *layers.values()):
        assert not digits & set(owner.keymap)  # no bare digit bound anywhere


def test_napari_number_keys_still_pick_label_tools(opened):
    viewer, w, layers, _, _ = opened
    viewer.layers.selection.active = layers["cytoplasm"]
    for key, mode in ((Qt.Key.Key_2, "paint"), (Qt.Key.Key_1, "erase"),
                      (Qt.Key.Key_4, "fill"), (Qt.Key.Key_5, "pick"),
                      (Qt.Key.Key_6, "pan_zoom")):
        press(viewer, key)
        assert layers["cytoplasm"].mode == mode
    viewer.layers.selection.active = viewer.layers["field"]
    press(viewer, Qt.Key.Key_2)
    assert viewer.layers["field"].mode == "transform"
    assert np.array_equal(layers["cell_type"].data, w.current.arrays()["cell_type"])


def test_ctrl_digits_set_the_class(opened):
    viewer, w, layers, s, _ = opened
    ctrl = Qt.KeyboardModifier.ControlModifier
    w.select_at(tuple(np.argwhere(s.nucleus == 1)[0]))
    cell = (s.nucleus == 1) | (s.cytoplasm == 1)
    for active in (layers["nucleus"], viewer.layers["field"]):  # whatever layer is active
        viewer.layers.selection.active = active
        press(viewer, Qt.Key.Key_3, ctrl)
        assert (layers["cell_type"].data[cell] == 3).all()
        press(viewer, Qt.Key.Key_0, ctrl)
        assert (layers["cell_type"].data[cell] == UNIDENTIFIED).all()
    assert layers["nucleus"].mode == "pan_zoom"  # the class key picked no napari tool
    assert "unidentified (Ctrl+0)" in [b.text for b in w.class_buttons]
