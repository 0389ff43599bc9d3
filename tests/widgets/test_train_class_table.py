"""The Train dock trains in the class table of the reviewed viewer images (issue 15):
``SessionParams.classes`` is the merged table of their cell-type layers, None when they
all use the default five-class table.  The run itself is not started (captured)."""
from __future__ import annotations

import pytest

from napari_wbcseg._widgets import train_widget as tw_module
from napari_wbcseg._widgets.viewer_training_data import reviewed_class_table
from napari_wbcseg.schema import DEFAULT_CLASSES, labels_layer_kwargs
from napari_wbcseg.schemes import builtin_schemes
from napari_wbcseg.schemes.tables import classes_to_json

WIDGET = "Train / fine-tune a network"
KINDS = ("nucleus", "cytoplasm", "cell_type")
MARROW = builtin_schemes()["marrow-icsh"]
EXTENDED = builtin_schemes()["blood-extended"]


def _add(viewer, name, scheme=None, reviewed=True, seed=0):
    from napari_wbcseg.core.synthetic import synthetic_smear

    sm = synthetic_smear(shape=(96, 128), n_wbc=1, seed=seed)
    viewer.add_image(sm.image, name=name, rgb=True)
    meta = {"wbcseg_reviewed": reviewed, "source_layer": name}
    if scheme is not None:
        meta["classes"] = classes_to_json(scheme.classes)
    for k in KINDS:
        viewer.add_labels(getattr(sm, k).copy(), metadata=dict(meta),
                          **labels_layer_kwargs(name, k))


@pytest.fixture
def widget(make_napari_viewer, tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_WBCSEG_MODELS", str(tmp_path / "models"))
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget("napari-wbcseg", WIDGET)
    started = []
    monkeypatch.setattr(tw_module.TrainWidget, "_start",
                        lambda self, run, params, *a, **kw: started.append(params))
    return viewer, w, started


def test_reviewed_marrow_images_train_on_the_marrow_table(widget):
    viewer, w, started = widget
    _add(viewer, "m1", MARROW, seed=1)
    _add(viewer, "m2", MARROW, seed=2)
    _add(viewer, "other", EXTENDED, reviewed=False, seed=3)  # not reviewed: not counted
    w.train()
    assert [p.classes for p in started] == [MARROW.classes]


def test_default_tables_give_none(widget):
    viewer, w, started = widget
    _add(viewer, "plain", seed=1)  # no table in the metadata: the default
    _add(viewer, "blood", builtin_schemes()["blood-5part"], seed=2)
    assert reviewed_class_table(viewer.layers) is None
    w.train()
    assert started[0].classes is None


def test_mixed_tables_merge_with_unidentified_last(widget):
    viewer, w, _ = widget
    _add(viewer, "plain", seed=1)
    _add(viewer, "ext", EXTENDED, seed=2)
    table = reviewed_class_table(viewer.layers)
    assert [c.code for c in table] == [c.code for c in DEFAULT_CLASSES if c.code != 255] + [
        c.code for c in EXTENDED.classes if c.code > 5 and c.code != 255] + [255]


def test_the_viewer_table_is_left_out_when_the_viewer_is_not_used(widget, tmp_path):
    viewer, w, started = widget
    _add(viewer, "m1", MARROW, seed=1)
    w.use_viewer.value = False
    w.add_folder(tmp_path)
    w.train()
    assert started[0].classes is None  # the folders' own table (session.py) decides
