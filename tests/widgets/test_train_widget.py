"""The training dock widget: tiny runs (64 px crops, 1-2 batches), mechanics not accuracy."""
from __future__ import annotations


import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_wbcseg._widgets import model_exchange_panel as exchange_module  # noqa: E402
from napari_wbcseg._widgets import train_widget as tw_module  # noqa: E402
from napari_wbcseg.io.model_store import list_models  # noqa: E402
from napari_wbcseg.schema import labels_layer_kwargs  # noqa: E402

WIDGET = "Train / fine-tune a network"
KINDS = ("nucleus", "cytoplasm", "cell_type")


def _add_image(viewer, name, seed, classes=(1, 2), reviewed=True, shape=(128, 160)):
    from napari_wbcseg.core.synthetic import synthetic_smear

    sm = synthetic_smear(shape=shape, n_wbc=len(classes), classes=list(classes), seed=seed,
                         pixel_size_um=0.35)
    viewer.add_image(sm.image, name=name, rgb=True)
    meta = {"wbcseg_reviewed": True} if reviewed else {}
    return [viewer.add_labels(getattr(sm, k).copy(), metadata=dict(meta),
                              **labels_layer_kwargs(name, k)) for k in KINDS]


def _snapshot(viewer):
    return {layer.name: np.array(layer.data) for layer in viewer.layers}


def _unchanged(viewer, before):
    return [l.name for l in viewer.layers] == list(before) and all(
        np.array_equal(l.data, before[l.name]) for l in viewer.layers)


@pytest.fixture
def notes(monkeypatch):
    shown = {"info": [], "warning": [], "error": []}
    for kind in shown:
        monkeypatch.setattr(tw_module, f"show_{kind}", shown[kind].append)
        if hasattr(exchange_module, f"show_{kind}"):
            monkeypatch.setattr(exchange_module, f"show_{kind}", shown[kind].append)
    return shown


@pytest.fixture
def widget(make_napari_viewer, tmp_path, monkeypatch, notes):
    from napari_wbcseg.inference.predictor import clear_cache

    monkeypatch.setenv("NAPARI_WBCSEG_MODELS", str(tmp_path / "models"))
    clear_cache()
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget("napari-wbcseg", WIDGET)
    w.epochs.value, w.steps.value, w.batch.value, w.crop.value = 1, 2, 2, 64
    # a tiny run may not beat the starting model: these tests save it (no dialog);
    # test_train_widget_outcome.py tests the question itself
    w.worse_answer = "save"
    return viewer, w


def _wait(qtbot, w, timeout=60000):
    # a fine-tune kept after "not better than the start" is saved by a second worker
    qtbot.waitUntil(lambda: w._worker is None and w._saving is None, timeout=timeout)


def test_defaults_are_a_quick_fine_tune_of_the_bundled_model(make_napari_viewer):
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget("napari-wbcseg", WIDGET)
    assert (w.architecture.value, w.start.value) == ("wbcseg-lite0", "wbcseg-lite0")
    assert (w.epochs.value, w.steps.value, w.lr.value, w.batch.value, w.crop.value) == \
        (5, 20, 5e-4, 4, 192)
    assert w.augment.value and w.val_fraction.value == 0.2 and w.name.value
    w.start.value = tw_module._SCRATCH  # from scratch: the longer "fast" schedule
    assert (w.epochs.value, w.steps.value, w.lr.value) == (30, 60, 2e-3)
    w.architecture.value = "wcsegnet-compact"
    assert w.start.value == "wcsegnet-compact" and w.lr.value == 5e-4


def test_finds_reviewed_images_and_copies_them(widget):
    viewer, w = widget
    full = _add_image(viewer, "full", seed=1)
    part = _add_image(viewer, "part", seed=2, reviewed=False)
    for layer in part:
        layer.metadata["wbcseg_reviewed_cells"] = [2]
    from napari_wbcseg.core.correction_state import METADATA_KEY, ReviewState

    packed = _add_image(viewer, "packed", seed=3, reviewed=False)
    for layer in packed:  # as the correction widget stores it
        layer.metadata[METADATA_KEY] = ReviewState(True).to_dict()
    cells = _add_image(viewer, "cells", seed=5, reviewed=False)
    for layer in cells:
        layer.metadata[METADATA_KEY] = ReviewState(False, {1}).to_dict()
    _add_image(viewer, "plain", seed=4, reviewed=False)
    # a second segmentation of "full": napari names its layers "full nucleus [1]" ...
    for kind, layer in zip(KINDS, full):
        dup = viewer.add_labels(layer.data.copy(), name=f"{layer.name} [1]",
                                metadata={"wbcseg_reviewed": True, "source_layer": "full"})
        assert dup.name.endswith("[1]"), kind
    assert "5 reviewed" in w.data_info.value and "part (some cells)" in w.data_info.value
    sets, notes = w.reviewed_layer_sets()
    by_name = {s.name: s for s in sets}
    assert sorted(by_name) == ["cells", "full", "full [1]", "packed", "part"] and not notes
    assert by_name["part"].reviewed_cells == (2,) and not by_name["part"].reviewed
    assert by_name["cells"].reviewed_cells == (1,) and not by_name["cells"].reviewed
    assert by_name["packed"].reviewed and by_name["full [1]"].reviewed
    full[0].data[:] = 0  # editing after pressing Train does not change the snapshot
    assert by_name["full"].nucleus.any()


def test_sees_what_the_correction_widget_marks_reviewed(widget):
    viewer, w = widget
    _add_image(viewer, "field", seed=1, reviewed=False)
    _, cw = viewer.window.add_plugin_dock_widget("napari-wbcseg", "Correct white-cell labels")
    assert w.reviewed_layer_sets()[0] == []
    cw.image_reviewed.value = True
    sets, _ = w.reviewed_layer_sets()
    assert [s.name for s in sets] == ["field"] and sets[0].reviewed


def test_training_run_saves_a_model_segment_lists_it_and_gui_stays_responsive(widget, qtbot,
                                                                              notes):
    """The event loop keeps running (a 10 ms timer keeps firing) from pressing Train to the
    end of the run, after the dock's background warm-up.  How long it stalls is measured by
    ``benchmarks/bench_gui_stall.py``, not bounded here (no timed assertions in tests)."""
    from qtpy.QtCore import QTimer

    viewer, w = widget
    _, seg = viewer.window.add_plugin_dock_widget("napari-wbcseg", "Segment white blood cells")
    for i in range(3):
        _add_image(viewer, f"img{i}", seed=i)
    _add_image(viewer, "unreviewed", seed=9, reviewed=False)
    assert "3 reviewed: img0, img1, img2" in w.data_info.value
    w.val_fraction.value = 0.35
    w.name.value = "ft-test"
    before = _snapshot(viewer)
    w._warm_up.join()
    ticks, measuring = [], [True]
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(1) if measuring[0] else None)  # loop kept going
    timer.start()
    w.train()
    assert w.train_button.text == "Stop"
    _wait(qtbot, w)
    measuring[0] = False
    timer.stop()
    assert not notes["error"], notes["error"]
    assert "ft-test" in list_models() and "ft-test" in seg.model.choices
    assert "ft-test" in w.model_to_export.choices
    assert any("saved model 'ft-test'" in m for m in notes["info"])
    assert len(w.plot.loss) == 2 and len(w.plot.score) == 2  # starting model + epoch 1
    assert w.plot.grab().width() > 0
    assert "saved as ft-test" in w.status.value and w.train_button.text == "Train"
    assert _unchanged(viewer, before)
    assert w.name.value != "ft-test" and not w.resume_button.enabled

    assert len(ticks) > 20


def test_fine_tune_trains_the_cell_classifier_too(widget, qtbot, notes, monkeypatch):
    """>= 50 labelled training cells of 2 types: the classifier's batches follow the
    network's on the bar and the loss plot, and it is saved beside the model."""
    from dataclasses import replace

    from napari_wbcseg.io.classifier_store import classifier_for
    from napari_wbcseg.io.model_store import find_model

    viewer, w = widget
    _, seg = viewer.window.add_plugin_dock_widget("napari-wbcseg", "Segment white blood cells")
    for i in range(5):  # 14 cells each: 56 in the 4 training images
        _add_image(viewer, f"f{i}", seed=i, classes=(1, 2) * 7, shape=(256, 320))
    w.val_fraction.value, w.name.value = 0.2, "with-cls"
    params = tw_module.TrainWidget.params  # + a tiny classifier schedule
    monkeypatch.setattr(tw_module.TrainWidget, "params", lambda self: replace(
        params(self), classifier_settings={"crop_size": 64, "epochs": 1, "steps_per_epoch": 3,
                                           "batch_size": 4, "imagenet": False,
                                           "precision": "fp32"}))
    w.train()
    _wait(qtbot, w)
    assert not notes["error"], notes["error"]
    assert any("saved model 'with-cls' and its cell classifier 'with-cls-classifier'" in m
               for m in notes["info"]), notes["info"]
    # the starting model's scoring, 2 batches and their validation, then the classifier's
    assert w.progress.max == w.progress.value == (1 + 2 + 1) + (3 + 1)
    assert [x for x, _ in w.plot.loss] == [1, 2, 3, 4, 5]
    assert "(cell classifier with-cls-classifier)" in w.status.value
    assert classifier_for(find_model("with-cls").card["classes"]).name == "with-cls-classifier"
    assert "with-cls-classifier" in seg.classifier.choices


def test_stop_in_first_batch_then_resume(widget, qtbot, notes):
    from napari_wbcseg.training.engine.loop import BatchEvent

    viewer, w = widget
    _add_image(viewer, "a", seed=1)
    _add_image(viewer, "b", seed=2)
    w.val_fraction.value = 0
    w.name.value = "stopped"
    w.train()
    w.stop()  # before the worker even started: nothing happens, nothing is saved
    _wait(qtbot, w)
    assert "before training" in w.status.value and not w.resume_button.enabled
    w.steps.value = 50
    w.train()
    w._worker.yielded.connect(lambda ev: w.stop() if isinstance(ev, BatchEvent) else None)
    _wait(qtbot, w)
    assert "stopped" not in list_models() and w.resume_button.enabled
    assert any("first epoch" in m for m in notes["warning"])
    assert "not saved" in w.status.value and w.train_button.text == "Train"
    w.resume()  # the checkpoint of the stopped epoch: nothing left to train, the model is saved
    _wait(qtbot, w)
    assert "stopped" in list_models() and not notes["error"]


def test_resume_a_run_of_an_earlier_session_by_its_name(widget, qtbot, notes,
                                                       make_napari_viewer):
    from napari_wbcseg.training.engine.loop import BatchEvent

    viewer, w = widget
    _add_image(viewer, "a", seed=1)
    _add_image(viewer, "b", seed=2)
    w.val_fraction.value, w.steps.value, w.name.value = 0, 50, "earlier"
    w.train()
    w._worker.yielded.connect(lambda ev: w.stop() if isinstance(ev, BatchEvent) else None)
    _wait(qtbot, w)
    assert "earlier" not in list_models()
    # a new viewer and dock (as after restarting napari): nothing of the run in memory
    viewer2 = make_napari_viewer()
    _, w2 = viewer2.window.add_plugin_dock_widget("napari-wbcseg", WIDGET)
    w2.epochs.value, w2.steps.value, w2.batch.value, w2.crop.value = 1, 50, 2, 64
    w2.val_fraction.value = 0
    w2.worse_answer = "save"  # as the fixture's dock: a tiny run may not beat its start
    assert not w2.resume_button.enabled
    w2.resume()
    assert "no checkpoint of a run called" in notes["error"][-1]
    w2.name.value = "earlier"
    assert w2.resume_button.enabled
    w2.resume()
    assert "no reviewed training data. To resume, open" in notes["error"][-1]
    _add_image(viewer2, "a", seed=1)
    _add_image(viewer2, "b", seed=2)
    w2.resume()  # continues the stopped epoch from the checkpoint and saves the model
    _wait(qtbot, w2)
    assert "earlier" in list_models() and "saved as earlier" in w2.status.value


def test_bad_input_notifies_and_leaves_layers_alone(widget, qtbot, notes):
    viewer, w = widget
    w.train()
    assert "no reviewed training data" in notes["error"][-1]
    layers = _add_image(viewer, "odd", seed=1)
    layers[0].data = np.zeros((100, 160), layers[0].data.dtype)  # nucleus of another size
    before = _snapshot(viewer)
    w.train()
    _wait(qtbot, w)
    assert "no training data: 'odd' skipped" in notes["error"][-1]
    assert "nucleus labels are 100x160 but the image is 128x160" in notes["error"][-1]
    assert not w.resume_button.enabled and w.train_button.text == "Train"
    assert _unchanged(viewer, before)

    viewer.layers.clear()
    _add_image(viewer, "mono", seed=3, classes=(2, 2))
    w.val_fraction.value = 0
    w.name.value = "mono-ft"
    before = _snapshot(viewer)
    w.train()
    _wait(qtbot, w)
    assert any("at least 2" in m for m in notes["warning"])
    assert "mono-ft" in list_models() and _unchanged(viewer, before)
    w.name.value = "mono-ft"  # taken now
    w.train()
    assert "exists" in notes["error"][-1] and w._worker is None


def test_full_disk_when_saving(widget, qtbot, notes, monkeypatch, tmp_path):
    from napari_wbcseg.training.engine import bundle

    def full(*a, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bundle, "write_model", full)
    viewer, w = widget
    _add_image(viewer, "a", seed=1)
    w.val_fraction.value = 0
    w.name.value = "nospace"
    w.train()
    _wait(qtbot, w)
    assert "No space left" in notes["error"][-1] and "Resume" in notes["error"][-1]
    assert "nospace" not in list_models() and w.resume_button.enabled
    assert not list((tmp_path / "models").glob("*.safetensors"))
    monkeypatch.undo()  # space freed: Resume saves the finished run
    monkeypatch.setenv("NAPARI_WBCSEG_MODELS", str(tmp_path / "models"))
    w.resume()
    _wait(qtbot, w)
    assert "nospace" in list_models()


def test_closing_the_viewer_stops_training(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_WBCSEG_MODELS", str(tmp_path / "models"))
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget("napari-wbcseg", WIDGET)
    _add_image(viewer, "a", seed=1)
    w.epochs.value, w.steps.value, w.batch.value, w.crop.value = 50, 50, 2, 64
    w.val_fraction.value = 0
    w.train()
    worker = w._worker
    qtbot.waitUntil(lambda: bool(w.plot.loss), timeout=60000)  # training is under way
    done = []
    worker.finished.connect(lambda: done.append(1))
    viewer.close()
    qtbot.waitUntil(lambda: bool(done), timeout=30000)
    assert w._stop.is_set() and not list((tmp_path / "models").glob("*.json"))


def test_export_and_import(widget, qtbot, notes, tmp_path):
    viewer, w = widget
    w.export_model(tmp_path / "out" / "copy.safetensors", "wcsegnet-compact")
    qtbot.waitUntil(lambda: w.exchange.worker is None, timeout=30000)
    assert (tmp_path / "out" / "copy.json").is_file() and "exported" in notes["info"][-1]
    w.import_model(tmp_path / "out" / "copy.safetensors")
    qtbot.waitUntil(lambda: w.exchange.worker is None, timeout=30000)
    assert "copy" in list_models() and "copy" in w.model_to_export.choices
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model at all")
    w.import_model(bad)
    qtbot.waitUntil(lambda: w.exchange.worker is None, timeout=30000)
    assert "bad.safetensors is not a usable napari-wbcseg model" in notes["error"][-1]
    assert "bad" not in list_models()
