"""The Segment dock segments in the image's class table (issue 15): an image of a loaded
project (its label layers carry the project's table) or one whose own metadata names a
table gets result layers carrying that table, painted and counted with it."""
from __future__ import annotations

import numpy as np
import pytest

from napari_wbcseg._widgets import segment_widget as sw_module
from napari_wbcseg._widgets.live_counts import layer_classes
from napari_wbcseg.schemes import builtin_schemes
from napari_wbcseg.schemes.tables import classes_to_json

WIDGET = "Segment white blood cells"
MARROW = builtin_schemes()["marrow-icsh"]


@pytest.fixture
def widget(make_napari_viewer, tiny_model, qtbot, monkeypatch):
    warnings = []
    monkeypatch.setattr(sw_module, "show_warning", warnings.append)
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget("napari-wbcseg", WIDGET)
    w.refresh_models()
    w.model.value, w.device.value = tiny_model, "cpu"
    return viewer, w, warnings


@pytest.fixture
def smear():
    from napari_wbcseg.core.synthetic import synthetic_smear

    return synthetic_smear(shape=(192, 256), n_wbc=3, seed=1)


def _run(qtbot, w):
    w.run()
    qtbot.waitUntil(lambda: w._worker is None, timeout=60000)


def test_a_table_in_the_image_metadata_reaches_the_result(widget, qtbot, smear):
    viewer, w, warnings = widget
    w.image.value = viewer.add_image(smear.image, name="field", rgb=True,
                                     metadata={"classes": classes_to_json(MARROW.classes)})
    assert w.params().classes == MARROW.classes
    _run(qtbot, w)
    ct = viewer.layers["field cell type"]
    assert layer_classes(ct) == MARROW.classes  # the counts, Correct and the gallery read it
    assert viewer.layers["field nucleus"].metadata["classes"] == ct.metadata["classes"]
    assert set(np.unique(ct.data).tolist()) - {0} <= set(MARROW.codes)
    promyelocyte = MARROW.by_code[8].color  # painted in the marrow colours
    want = [int(promyelocyte[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    assert np.allclose(ct.colormap.map(8)[..., :3], want, atol=0.01)
    assert len(w.counts.value["data"]) >= 16  # counted by the 16 marrow classes
    assert any("neutrophil as segmented neutrophil" in m for m in warnings)


def test_an_image_of_a_loaded_marrow_project(widget, qtbot, smear, tmp_path):
    from napari_wbcseg._widgets.project_panel import add_project_to_viewer
    from napari_wbcseg.io.project import create_project, save_image_entry

    viewer, w, _ = widget
    folder = tmp_path / "marrow"
    create_project(folder, "marrow-icsh")
    zeros = np.zeros(smear.image.shape[:2], np.uint16)
    save_image_entry(folder, "field", smear.image, zeros, zeros, zeros.astype(np.uint8))
    add_project_to_viewer(viewer, folder)
    assert "classes" not in viewer.layers["field"].metadata  # the labels carry the table
    w.image.value = viewer.layers["field"]
    assert w.params().classes == MARROW.classes
    w.confirm_replace = lambda name: "replace"
    _run(qtbot, w)
    ct = viewer.layers["field cell type"]
    assert layer_classes(ct) == MARROW.classes and ct.data.any()


def test_an_image_without_a_table_segments_as_before(widget, qtbot, smear):
    viewer, w, warnings = widget
    w.image.value = viewer.add_image(smear.image, name="field", rgb=True)
    assert w.params().classes is None
    _run(qtbot, w)
    assert "classes" not in viewer.layers["field cell type"].metadata
    assert not any("mapped" in m for m in warnings)
