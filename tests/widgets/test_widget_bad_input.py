"""Bad input and faults fed to every dock: one notification, a usable dock, layers unchanged.

Heavy work is replaced by small fakes where the point is the widget's handling (a worker
that raises, a full disk); tiny synthetic images otherwise.
"""
from __future__ import annotations

import errno
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from napari_wbcseg._widgets import correction_widget as cw_module
from napari_wbcseg._widgets import model_exchange_panel as mx_module
from napari_wbcseg._widgets import preprocess_widget as pw_module
from napari_wbcseg._widgets import project_panel as pp_module
from napari_wbcseg._widgets import segment_widget as sw_module
from napari_wbcseg._widgets import train_widget as tw_module
from napari_wbcseg.schema import labels_layer_kwargs

MODULES = (sw_module, pw_module, cw_module, pp_module, tw_module, mx_module)
KINDS = ("nucleus", "cytoplasm", "cell_type")


def _full_disk(*_a, **_kw):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def notes(monkeypatch):
    shown = {"info": [], "warning": [], "error": []}
    for kind in shown:
        for module in MODULES:
            if hasattr(module, f"show_{kind}"):
                monkeypatch.setattr(module, f"show_{kind}", shown[kind].append)
    return shown


def _one_line(messages):
    assert messages, "no notification"
    assert all("\n" not in m and "Traceback" not in m for m in messages), messages
    return messages[-1]


def _snapshot(viewer):
    return {layer.name: np.array(layer.data) for layer in viewer.layers}


def _unchanged(viewer, before):
    return [l.name for l in viewer.layers] == list(before) and all(
        np.array_equal(l.data, before[l.name]) for l in viewer.layers)


@pytest.fixture(scope="module")
def smear():
    from napari_wbcseg.core.synthetic import synthetic_smear

    return synthetic_smear(shape=(96, 128), n_wbc=2, classes=[1, 2], seed=3)


def _add_set(viewer, smear, name="field", **meta):
    viewer.add_image(smear.image.copy(), name=name, rgb=True)
    return {k: viewer.add_labels(getattr(smear, k).copy(), metadata=dict(meta),
                                 **labels_layer_kwargs(name, k)) for k in KINDS}


def _dock(viewer, title):
    return viewer.window.add_plugin_dock_widget("napari-wbcseg", title)[1]


# ---- Segment ---------------------------------------------------------------------------------
@pytest.fixture
def segment(make_napari_viewer, tiny_model):
    viewer = make_napari_viewer()
    w = _dock(viewer, "Segment white blood cells")
    w.refresh_models()
    w.model.value, w.device.value = tiny_model, "cpu"
    return viewer, w


# (each corpus runs in one viewer: a viewer per case would make the module slow)
SEGMENT_BAD_IMAGES = [
    (None, False, "select an image layer"),
    (np.random.default_rng(0).random((64, 64), np.float32), False, "floating point"),
    (np.zeros((4, 4), np.uint8), False, "4x4 pixels"),
    (np.zeros((64, 64, 2), np.uint8), False, "2 channels"),
    (np.zeros((2, 3, 64, 64), np.uint8), False, "one 2D image"),
    (np.full((64, 64), -5, np.int16), False, "negative pixel values"),
]


def _check_refusals(viewer, w, notes, corpus, press, idle):
    for i, (data, rgb, expected) in enumerate(corpus):
        notes["error"].clear()
        if data is not None:  # (None: the first case, no layer open yet)
            w.image.value = viewer.add_image(data, name=f"bad{i}", rgb=rgb)
        before = _snapshot(viewer)
        press()
        assert len(notes["error"]) == 1 and expected in _one_line(notes["error"]), expected
        assert idle() and _unchanged(viewer, before), expected


def test_segment_refuses_bad_images(segment, notes):
    viewer, w = segment
    _check_refusals(viewer, w, notes, SEGMENT_BAD_IMAGES, w.run,
                    lambda: w._worker is None and w.run_button.text == "Segment")


def test_segment_refuses_a_huge_image_before_copying_it(segment, notes, smear, monkeypatch):
    from napari_wbcseg.core import image as image_module
    from napari_wbcseg.inference import segment as segment_module

    converted = []
    monkeypatch.setattr(segment_module, "MAX_MEGAPIXELS", 0.005)  # 96x128 is 0.012 MP
    monkeypatch.setattr(image_module, "as_rgb_uint8", lambda *a, **k: converted.append(1))
    viewer, w = segment
    w.image.value = viewer.add_image(smear.image.copy(), name="f", rgb=True)
    before = _snapshot(viewer)
    w.run()
    assert "megapixels" in _one_line(notes["error"]) and not converted
    assert w._worker is None and _unchanged(viewer, before)


def test_segment_refuses_a_cell_diameter_below_the_bound(segment, notes, smear):
    viewer, w = segment
    w.image.value = viewer.add_image(smear.image.copy(), name="f", rgb=True)
    w.cell_diameter.value = 2  # 0 means "auto"; 0 < d < 4 px is no cell size
    before = _snapshot(viewer)
    w.run()
    assert "cell_diameter" in _one_line(notes["error"]).replace(" ", "_")
    assert w._worker is None and _unchanged(viewer, before)


def test_preprocess_refuses_a_huge_plane(preprocess, notes, smear, monkeypatch):
    from napari_wbcseg.core import batch

    monkeypatch.setattr(batch, "MAX_PLANE_MEGAPIXELS", 0.005)
    viewer, w = preprocess
    w.image.value = viewer.add_image(smear.image.copy(), name="f", rgb=True)
    w.apply()
    assert "megapixels" in _one_line(notes["error"]) and w._worker is None
    assert [l.name for l in viewer.layers] == ["f"]


def _variants(smear, scale16):
    """(name, data, rgb) of images the docks must take: grey, RGBA, 16-bit, and an HxWx3
    16-bit layer that napari shows as three planes (not flagged RGB)."""
    rgba = np.dstack([smear.image, np.full(smear.image.shape[:2], 255, np.uint8)])
    wide = smear.image.astype(np.uint16) * scale16
    return [("grey", smear.image[..., 1].copy(), False), ("rgba", rgba, True),
            ("u16", wide, True), ("u16planes", wide.copy(), False)]


def test_segment_takes_grey_rgba_and_16_bit(segment, notes, qtbot, smear):
    viewer, w = segment
    for name, image, rgb in _variants(smear, 16):  # 16: a 12-bit camera in 16 bits
        w.image.value = viewer.add_image(image, name=name, rgb=rgb)
        before = np.array(viewer.layers[name].data)
        w.run()
        qtbot.waitUntil(lambda: w._worker is None, timeout=60000)
        assert not notes["error"] and f"{name} cell type" in viewer.layers, name
        assert viewer.layers[f"{name} nucleus"].data.shape == smear.image.shape[:2], name
        assert np.array_equal(viewer.layers[name].data, before), name


def _raising_steps(exc):
    def steps(*_args, **_kwargs):
        yield from ()
        raise exc
    return steps


@pytest.mark.parametrize("exc, expected", [
    (ValueError("the image is 400 megapixels; the limit is 64"), "Segment: the image is 400"),
    (RuntimeError("CUDA exploded"), "Segment failed: CUDA exploded"),
    (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
])
def test_segment_worker_errors_become_one_notification(segment, notes, qtbot, smear,
                                                       monkeypatch, exc, expected):
    from napari_wbcseg.inference import segment as segment_module

    monkeypatch.setattr(segment_module, "segment_steps", _raising_steps(exc))
    viewer, w = segment
    w.image.value = viewer.add_image(smear.image.copy(), name="f", rgb=True)
    before = _snapshot(viewer)
    w.run()
    qtbot.waitUntil(lambda: w._worker is None, timeout=30000)
    assert expected in _one_line(notes["error"]) and len(notes["error"]) == 1
    assert w.run_button.text == "Segment" and _unchanged(viewer, before)


def _user_models() -> Path:
    return Path(os.environ["NAPARI_WBCSEG_MODELS"])


@pytest.mark.parametrize("weights, card, expected", [
    (b"\x00garbage, not safetensors", {"architecture": "wcsegnet-compact"}, "broken"),
    (None, {"architecture": 5, "native_cell_diameter_px": "big"}, "broken"),
    (None, ["not", "a", "card"], "broken"),
])
def test_segment_with_a_model_that_fails_to_load(segment, notes, qtbot, smear, weights, card,
                                                 expected):
    folder = _user_models()
    (folder / "broken.safetensors").write_bytes(
        weights if weights is not None else (folder / "tiny.safetensors").read_bytes())
    (folder / "broken.json").write_text(json.dumps(card))
    viewer, w = segment
    w.refresh_models()  # a broken model never breaks the model list
    assert "tiny" in w.model.choices
    if "broken" not in w.model.choices:
        return  # refused when listed: nothing to run
    w.model.value = "broken"
    w.image.value = viewer.add_image(smear.image.copy(), name="f", rgb=True)
    before = _snapshot(viewer)
    w.run()
    qtbot.waitUntil(lambda: w._worker is None, timeout=30000)
    assert _one_line(notes["error"]).startswith("Segment") and len(notes["error"]) == 1
    assert w.run_button.text == "Segment" and _unchanged(viewer, before)


def test_segment_export_onto_a_full_disk(segment, notes, qtbot, smear, monkeypatch, tmp_path):
    from qtpy.QtWidgets import QFileDialog

    from napari_wbcseg.io import writer

    viewer, w = segment
    w.image.value = viewer.add_image(smear.image.copy(), name="f", rgb=True)
    w.run()
    qtbot.waitUntil(lambda: w._worker is None, timeout=60000)
    target = tmp_path / "diff.csv"
    target.write_text("old\n")
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    monkeypatch.setattr(writer, "save_table", _full_disk)
    w.export_button.native.click()
    assert "No space left" in _one_line(notes["error"]) and target.read_text() == "old\n"
    assert w.export_button.enabled


# ---- AHE-Retinex -----------------------------------------------------------------------------
@pytest.fixture
def preprocess(make_napari_viewer):
    viewer = make_napari_viewer()
    return viewer, _dock(viewer, "AHE-Retinex colour correction")


PREPROCESS_BAD_IMAGES = [
    (None, False, "select an image layer"),
    (np.ones((64, 64, 3), np.float64), True, "floating point"),
    (np.zeros((64, 64, 2), np.uint8), False, "2 channels"),
    (np.zeros((5, 5), np.uint16), False, "5x5 pixels"),
]


def test_preprocess_refuses_bad_images(preprocess, notes):
    viewer, w = preprocess
    _check_refusals(viewer, w, notes, PREPROCESS_BAD_IMAGES, w.apply,
                    lambda: w._worker is None and w.apply_button.enabled)


def test_preprocess_takes_grey_rgba_and_16_bit(preprocess, notes, qtbot, smear):
    viewer, w = preprocess
    for name, image, rgb in _variants(smear, 256):
        w.image.value = viewer.add_image(image, name=name, rgb=rgb)
        before = np.array(viewer.layers[name].data)
        w.apply()
        qtbot.waitUntil(lambda: w._worker is None, timeout=30000)
        assert not notes["error"] and f"{name} AHE-Retinex" in viewer.layers, name
        out = viewer.layers[f"{name} AHE-Retinex"]
        assert out.rgb and out.data.shape == (*smear.image.shape[:2], 3), name
        assert np.array_equal(viewer.layers[name].data, before), name


def test_preprocess_worker_error_and_source_removed_meanwhile(preprocess, notes, qtbot, smear,
                                                              monkeypatch):
    viewer, w = preprocess
    layer = viewer.add_image(smear.image.copy(), name="f", rgb=True)
    w.image.value = layer
    monkeypatch.setattr(pw_module, "preprocess_planes", _raising_steps(MemoryError("12 GiB")))
    w.apply()
    qtbot.waitUntil(lambda: w._worker is None, timeout=30000)
    assert "AHE-Retinex failed" in _one_line(notes["error"]) and w.apply_button.enabled
    assert [l.name for l in viewer.layers] == ["f"]

    release = threading.Event()

    def slow(data, params, rgb):
        release.wait(10)
        yield from ()
        return data.copy()

    monkeypatch.setattr(pw_module, "preprocess_planes", slow)
    w.apply()
    viewer.layers.remove(layer)
    release.set()
    qtbot.waitUntil(lambda: w._worker is None, timeout=30000)
    assert "removed" in _one_line(notes["warning"]) and len(viewer.layers) == 0
    assert w.apply_button.enabled


# ---- Correction ------------------------------------------------------------------------------
@pytest.fixture
def correction(make_napari_viewer):
    viewer = make_napari_viewer()
    return viewer, _dock(viewer, "Correct white-cell labels")


@pytest.mark.parametrize("kind", KINDS)
def test_correction_refuses_label_layers_of_another_shape(correction, notes, smear, kind):
    viewer, w = correction
    layers = _add_set(viewer, smear)
    layers[kind].data = np.zeros((40, 50), np.int32)
    before = _snapshot(viewer)
    w._attach("field")
    assert "40x50" in _one_line(notes["warning"]) and not notes["error"]
    assert w.current is None
    assert not w.delete_cell() and _unchanged(viewer, before)
    assert w.save_project(Path("unused")) == [] and "40x50" in notes["error"][-1]


def test_correction_project_faults(correction, notes, smear, monkeypatch, tmp_path, qtbot):
    viewer, w = correction
    _add_set(viewer, smear)
    before = _snapshot(viewer)
    monkeypatch.setattr(pp_module, "save_image_entry", _full_disk)
    assert w.save_project(tmp_path / "p") == []
    assert "Save project: " in _one_line(notes["error"]) and "No space" in notes["error"][-1]
    worker = w.save_project_in_background(tmp_path / "p")
    assert not w.save_button.enabled  # busy while it writes
    qtbot.waitUntil(lambda: w.project_worker is None, timeout=30000)
    assert "No space" in _one_line(notes["error"]) and len(notes["error"]) == 2 and worker
    assert w.save_button.enabled and w.open_button.enabled and _unchanged(viewer, before)

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "project.json").write_text("{not json")
    assert w.open_project(bad) == [] and "Open project: " in _one_line(notes["error"])
    w.open_project_in_background(bad)
    qtbot.waitUntil(lambda: w.project_worker is None, timeout=30000)
    assert "not readable JSON" in _one_line(notes["error"]) and len(notes["error"]) == 4
    assert _unchanged(viewer, before)


def test_review_state_one_format_old_keys_still_read(correction, notes, smear):
    from napari_wbcseg._widgets.viewer_training_data import review_state

    viewer, w = correction
    layers = _add_set(viewer, smear, wbcseg_reviewed=True, wbcseg_reviewed_cells=[2])
    assert w.current.review.reviewed and w.current.review.cells == {2}
    assert w.image_reviewed.value is True
    w.image_reviewed.value = False  # written in the one format; the old keys go
    for layer in layers.values():
        assert layer.metadata["wbcseg_review"] == {"reviewed": False, "reviewed_cells": [2]}
        assert "wbcseg_reviewed" not in layer.metadata
    assert review_state(list(layers.values())) == (False, [2])
    layers["cell_type"].metadata["wbcseg_review"] = "junk"
    assert review_state(list(layers.values())) == (False, [2])


# ---- Train and model exchange ----------------------------------------------------------------
@pytest.fixture
def train(make_napari_viewer, tmp_path, monkeypatch):
    from napari_wbcseg.inference.predictor import clear_cache

    monkeypatch.setenv("NAPARI_WBCSEG_MODELS", str(tmp_path / "models"))
    clear_cache()
    viewer = make_napari_viewer()
    w = _dock(viewer, "Train / fine-tune a network")
    w.epochs.value, w.steps.value, w.batch.value, w.crop.value = 1, 1, 2, 64
    w.val_fraction.value = 0
    return viewer, w


@pytest.mark.parametrize("exc, expected", [
    (RuntimeError("out of memory"), "Training failed: out of memory"),
    (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
])
def test_train_worker_errors(train, notes, qtbot, smear, monkeypatch, exc, expected):
    from napari_wbcseg.training.engine import session

    monkeypatch.setattr(session, "run", _raising_steps(exc))
    viewer, w = train
    _add_set(viewer, smear, wbcseg_reviewed=True)
    before = _snapshot(viewer)
    w.train()
    qtbot.waitUntil(lambda: w._worker is None, timeout=30000)
    assert expected in _one_line(notes["error"]) and len(notes["error"]) == 1
    assert w.train_button.text == "Train" and w.train_button.enabled
    assert _unchanged(viewer, before)


@pytest.mark.parametrize("card", [{"architecture": 7}, {"architecture": "wcsegnet-compact",
                                                         "config": "wide"}, [1, 2]])
def test_import_of_a_model_with_a_bad_card(train, notes, qtbot, tiny_model, tmp_path, card):
    viewer, w = train
    src = tmp_path / "in"
    src.mkdir()
    (src / "odd.safetensors").write_bytes((_user_models() / "tiny.safetensors").read_bytes())
    (src / "odd.json").write_text(json.dumps(card))
    w.import_model(src / "odd.safetensors")
    qtbot.waitUntil(lambda: w.exchange.worker is None, timeout=30000)
    assert _one_line(notes["error"]).startswith("Import") and len(notes["error"]) == 1
    assert w.exchange.import_button.enabled


def test_export_onto_a_full_disk(train, notes, qtbot, tmp_path, monkeypatch):
    from napari_wbcseg.io import model_exchange

    monkeypatch.setattr(model_exchange, "export_model", _full_disk)
    viewer, w = train
    w.export_model(tmp_path / "m.safetensors", "wcsegnet-compact")
    qtbot.waitUntil(lambda: w.exchange.worker is None, timeout=30000)
    msg = _one_line(notes["error"])
    assert msg.startswith("Export") and "No space left" in msg
    assert not (tmp_path / "m.safetensors").exists() and w.exchange.export_button.enabled


# ---- heavy calls never run on the GUI thread ---------------------------------------------------
def _record_thread(monkeypatch, module, name, calls):
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        calls.append((name, threading.current_thread() is threading.main_thread()))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)


def test_dock_buttons_run_heavy_work_off_the_gui_thread(make_napari_viewer, qtbot, notes,
                                                        tiny_model, smear, monkeypatch,
                                                        tmp_path):
    from qtpy.QtWidgets import QFileDialog

    from napari_wbcseg.inference import predictor
    from napari_wbcseg.inference import segment as segment_module
    from napari_wbcseg.io import model_exchange
    from napari_wbcseg.training.engine import session

    calls: list = []
    for module, name in ((predictor, "load_model"), (segment_module, "segment_steps"),
                         (pw_module, "preprocess_planes"), (pp_module, "save_image_entry"),
                         (pp_module, "load_entry"), (pp_module, "read_project"),
                         (session, "run"), (model_exchange, "export_model"),
                         (model_exchange, "import_model")):
        _record_thread(monkeypatch, module, name, calls)
    viewer = make_napari_viewer()
    _add_set(viewer, smear, wbcseg_reviewed=True)

    seg = _dock(viewer, "Segment white blood cells")
    seg.confirm_replace = lambda name: "keep both"  # keep the reviewed set for Train
    seg.refresh_models()
    seg.model.value, seg.device.value = tiny_model, "cpu"
    seg.image.value = viewer.layers["field"]
    seg.run_button.native.click()
    qtbot.waitUntil(lambda: seg._worker is None, timeout=60000)

    pre = _dock(viewer, "AHE-Retinex colour correction")
    pre.image.value = viewer.layers["field"]
    pre.apply_button.native.click()
    qtbot.waitUntil(lambda: pre._worker is None, timeout=30000)

    cor = _dock(viewer, "Correct white-cell labels")
    cor.layer_set.value = "field"
    folder = str(tmp_path / "proj")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: folder)
    cor.save_button.native.click()
    qtbot.waitUntil(lambda: cor.project_worker is None, timeout=30000)
    cor.open_button.native.click()
    qtbot.waitUntil(lambda: cor.project_worker is None, timeout=30000)

    tr = _dock(viewer, "Train / fine-tune a network")
    tr.epochs.value, tr.steps.value, tr.batch.value, tr.crop.value = 1, 1, 2, 64
    tr.val_fraction.value = 0
    tr.architecture.value = "wcsegnet-compact"
    tr.start.value = tiny_model
    tr.train_button.native.click()
    qtbot.waitUntil(lambda: tr._worker is None, timeout=120000)
    out = str(tmp_path / "exported.safetensors")
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (out, ""))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (out, ""))
    tr.exchange.model_to_export.value = tiny_model
    tr.exchange.export_button.native.click()
    qtbot.waitUntil(lambda: tr.exchange.worker is None, timeout=30000)
    tr.exchange.import_button.native.click()
    qtbot.waitUntil(lambda: tr.exchange.worker is None, timeout=30000)

    assert not notes["error"], notes["error"]
    ran = {name for name, _ in calls}
    assert ran == {"load_model", "segment_steps", "preprocess_planes", "save_image_entry",
                   "load_entry", "read_project", "run", "export_model", "import_model"}
    on_gui = sorted({name for name, main in calls if main})
    assert not on_gui, f"ran on the GUI thread: {on_gui}"
