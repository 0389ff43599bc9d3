"""The Segment dock widget with a small random network (mechanics, not accuracy)."""

import numpy as np
import pytest

from napari_wbcseg._widgets import segment_widget as sw_module

WIDGET = "Segment white blood cells"


@pytest.fixture
def widget(make_napari_viewer, tiny_model, qtbot):
    viewer = make_napari_viewer()
    dock, w = viewer.window.add_plugin_dock_widget("napari-wbcseg", WIDGET)
    qtbot.waitUntil(lambda: dock.widget() is not w.native)  # docked in its scroll area
    w.refresh_models()
    w.model.value = tiny_model
    w.device.value = "cpu"
    return viewer, w


@pytest.fixture
def smear():
    from napari_wbcseg.core.synthetic import synthetic_smear

    return synthetic_smear(shape=(256, 320), n_wbc=2, seed=1)


def test_segment_adds_three_schema_layers(widget, qtbot, smear, tmp_path):
    viewer, w = widget
    layer = viewer.add_image(smear.image.copy(), name="field", rgb=True)
    w.image.value = layer
    w.run()
    qtbot.waitUntil(lambda: "field cell type" in viewer.layers, timeout=30000)
    qtbot.waitUntil(lambda: w._worker is None, timeout=30000)
    for kind in ("nucleus", "cytoplasm", "cell type"):
        assert viewer.layers[f"field {kind}"].data.shape == smear.image.shape[:2]
    assert np.array_equal(layer.data, smear.image)
    ct = viewer.layers["field cell type"]
    assert np.allclose(ct.colormap.map(5)[..., :3], [1.0, 32 / 255, 32 / 255], atol=0.01)
    assert "white cells" in w.status.value and w.run_button.text == "Segment"
    assert len(w.counts.value["data"]) >= 5
    out = w.export_differential(tmp_path / "diff.csv")
    assert open(out).readline().startswith("class_code,class,count,percent")


def test_cancel_adds_nothing(widget, qtbot, smear):
    viewer, w = widget
    w.image.value = viewer.add_image(np.tile(smear.image, (3, 3, 1)), name="big", rgb=True)
    w.run()
    assert w.run_button.text == "Cancel"
    w.cancel()
    qtbot.waitUntil(lambda: w._worker is None, timeout=30000)
    assert [l.name for l in viewer.layers] == ["big"]
    assert "cancel" in w.status.value


def test_bad_input_and_removed_layer(widget, qtbot, smear, monkeypatch):
    errors, warnings = [], []
    monkeypatch.setattr(sw_module, "show_error", errors.append)
    monkeypatch.setattr(sw_module, "show_warning", warnings.append)
    viewer, w = widget
    w.run()
    assert "select an image layer" in errors[-1]
    w.image.value = viewer.add_image(np.zeros((64, 64, 2), np.uint8), name="two")
    w.run()
    assert "2 channels" in errors[-1]
    layer = viewer.add_image(smear.image, name="gone", rgb=True)
    w.image.value = layer
    w.run()
    viewer.layers.remove(layer)
    qtbot.waitUntil(lambda: w._worker is None, timeout=30000)
    assert "removed" in warnings[-1] and [l.name for l in viewer.layers] == ["two"]


def test_gui_stays_responsive_while_segmenting(widget, qtbot, smear):
    """The event loop keeps running (a 10 ms timer keeps firing) while the worker segments.

    How long it stalls is measured by ``benchmarks/bench_gui_stall.py``, not bounded here
    (no timed assertions in tests)."""
    from qtpy.QtCore import QTimer

    viewer, w = widget
    w.image.value = viewer.add_image(np.tile(smear.image, (2, 2, 1)), name="f", rgb=True)
    ticks = []  # timer ticks while the worker runs: the event loop kept going
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(1) if w._worker else None)
    timer.start()
    w.run()
    qtbot.waitUntil(lambda: w._worker is None, timeout=60000)
    timer.stop()
    assert len(ticks) > 20


def test_model_list_names_families_and_picks_up_new_models(widget, tmp_path):
    import json
    import os
    import shutil
    from pathlib import Path

    from napari_wbcseg.models import architecture_info

    viewer, w = widget
    combo = w.model.native  # the QComboBox: shown text and the model name behind it
    labels = {combo.itemData(i): combo.itemText(i) for i in range(combo.count())}
    assert "tiny" in labels and architecture_info("wcsegnet-compact")["family"] in labels["tiny"]
    assert "yours" in labels["tiny"]
    folder = Path(os.environ["NAPARI_WBCSEG_MODELS"])
    shutil.copy(folder / "tiny.safetensors", folder / "fresh.safetensors")
    card = json.loads((folder / "tiny.json").read_text())
    (folder / "fresh.json").write_text(json.dumps(card))
    assert "fresh" not in w.model.choices
    viewer.add_image(np.zeros((8, 8)), name="any")  # any new layer refreshes the list
    assert "fresh" in w.model.choices


def _segment_in_dock(qtbot, viewer, w, image, name):
    w.image.value = viewer.add_image(image.copy(), name=name, rgb=True)
    w.run()
    qtbot.waitUntil(lambda: f"{name} cell type" in viewer.layers, timeout=60000)
    qtbot.waitUntil(lambda: w._worker is None, timeout=60000)
    return viewer.layers[f"{name} cell type"]


def test_cell_types_from_the_chosen_classifier_and_threshold(widget, qtbot, smear,
                                                             tiny_classifier):
    from napari_wbcseg.core.batch import run_to_end
    from napari_wbcseg.inference.segment import segment_steps

    viewer, w = widget
    assert "tiny-classifier" not in w.classifier.choices  # installed after the dock opened
    w.refresh_models()
    assert w.classifier.value == "auto" and "tiny-classifier" in w.classifier.choices
    assert w.class_threshold.value == 0.5
    labels = {w.classifier.native.itemData(i): w.classifier.native.itemText(i)
              for i in range(w.classifier.native.count())}
    assert labels["none"] == "network head" and labels["tiny-classifier"].endswith("(yours)")

    w.class_threshold.value = 0.0  # every cell keeps the classifier's best class
    by_classifier = _segment_in_dock(qtbot, viewer, w, smear.image, "auto")
    want = run_to_end(segment_steps(smear.image, w.params()))
    assert want.classifier == "tiny-classifier" and len(want.table)
    assert np.array_equal(by_classifier.data, want.cell_type)
    assert not (by_classifier.data == 255).any()
    assert by_classifier.metadata["classifier"] == "tiny-classifier"
    assert "cell types: tiny-classifier" in w.status.value

    w.classifier.value = "none"
    by_head = _segment_in_dock(qtbot, viewer, w, smear.image, "head")
    want = run_to_end(segment_steps(smear.image, w.params()))
    assert want.classifier == "" and np.array_equal(by_head.data, want.cell_type)
    assert "cell types: network head" in w.status.value
    assert not np.array_equal(by_head.data, by_classifier.data)

    w.classifier.value, w.class_threshold.value = "tiny-classifier", 1.0
    unsure = _segment_in_dock(qtbot, viewer, w, smear.image, "unsure")
    cells = viewer.layers["unsure nucleus"].data + viewer.layers["unsure cytoplasm"].data > 0
    assert cells.any() and (unsure.data[cells] == 255).all() and not unsure.data[~cells].any()


def test_mirror_tta_box_runs_the_network_on_four_views(widget, qtbot, smear, monkeypatch):
    from napari_wbcseg.inference.predictor import LoadedModel

    viewer, w = widget
    assert w.tta.value is False and w.params().tta is False
    calls = []
    real = LoadedModel._forward
    monkeypatch.setattr(LoadedModel, "_forward",
                        lambda self, b: calls.append(self.tta) or real(self, b))
    w.tta.value = True
    assert w.params().tta is True
    layer = viewer.add_image(smear.image.copy(), name="field", rgb=True)
    w.image.value = layer
    w.run()
    qtbot.waitUntil(lambda: w._worker is None and "field cell type" in viewer.layers,
                    timeout=60000)
    assert calls and set(calls) == {True} and len(calls) % 4 == 0


def test_coarse_pass_box_reaches_the_segmentation(widget, qtbot, smear, monkeypatch):
    import napari_wbcseg.inference.sparse_windows as sparse

    viewer, w = widget
    assert w.coarse_pass.value is True and w.params().coarse_pass is True
    calls = []
    real = sparse.predict_two_pass
    monkeypatch.setattr(sparse, "worth_a_coarse_pass", lambda *a, **k: True)  # a small smear
    monkeypatch.setattr(sparse, "predict_two_pass",
                        lambda *a, **k: calls.append(1) or (yield from real(*a, **k)))
    layer = viewer.add_image(smear.image.copy(), name="field", rgb=True)
    w.image.value = layer
    for on, name in ((True, "field"), (False, "field")):
        w.coarse_pass.value = on
        calls.clear()
        w.run()
        qtbot.waitUntil(lambda: w._worker is None and f"{name} cell type" in viewer.layers,
                        timeout=60000)
        assert len(calls) == (1 if on else 0)
