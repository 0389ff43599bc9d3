"""The Train dock at the end of a run: a fine-tune not better than its starting model is
saved only when the user says so, and the bar and status say what was really done.

The starting model's score is forced (monkeypatched ``session.baseline``) so that the
tiny run is worse (or better) for sure; the answer to the question is the dock's
``worse_answer`` (no dialog in tests)."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from napari_wbcseg._widgets import train_outcome  # noqa: E402
from napari_wbcseg._widgets import train_widget as tw_module  # noqa: E402
from napari_wbcseg.io.model_store import list_models  # noqa: E402
from napari_wbcseg.schema import labels_layer_kwargs  # noqa: E402
from napari_wbcseg.training.engine import session  # noqa: E402

WIDGET = "Train / fine-tune a network"


def _add_image(viewer, name, seed):
    from napari_wbcseg.core.synthetic import synthetic_smear

    sm = synthetic_smear(shape=(128, 160), n_wbc=2, classes=[1, 2], seed=seed,
                         pixel_size_um=0.35)
    viewer.add_image(sm.image, name=name, rgb=True)
    for kind in ("nucleus", "cytoplasm", "cell_type"):
        viewer.add_labels(getattr(sm, kind).copy(), metadata={"wbcseg_reviewed": True},
                          **labels_layer_kwargs(name, kind))


@pytest.fixture
def notes(monkeypatch):
    shown = {"info": [], "warning": [], "error": []}
    for kind in shown:
        monkeypatch.setattr(tw_module, f"show_{kind}", shown[kind].append)
    return shown


@pytest.fixture
def dock(make_napari_viewer, tmp_path, monkeypatch, notes):
    from napari_wbcseg.inference.predictor import clear_cache

    models = tmp_path / "models"
    monkeypatch.setenv("NAPARI_WBCSEG_MODELS", str(models))
    clear_cache()
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget("napari-wbcseg", WIDGET)
    w.epochs.value, w.steps.value, w.batch.value, w.crop.value = 1, 3, 2, 64
    w.val_fraction.value = 0
    _add_image(viewer, "a", seed=1)
    return w, models


def _start_at(monkeypatch, score):
    monkeypatch.setattr(session, "baseline", lambda prepared: session.BaselineEvent(score, {}))


def _train(w, qtbot, name, statuses=None):
    """Train and wait; ``statuses``: gets the status line after each event."""
    w.name.value = name
    w.train()
    if statuses is not None:  # connected after the dock's own handler: runs after it
        w._worker.yielded.connect(lambda ev: statuses.append(w.status.value))
    qtbot.waitUntil(lambda: w._worker is None and w._saving is None, timeout=60000)


def test_worse_than_the_start_keep_old_saves_nothing(dock, qtbot, notes, monkeypatch):
    w, models = dock
    _start_at(monkeypatch, 0.9999)
    w.worse_answer = train_outcome.KEEP
    _train(w, qtbot, "worse-kept")
    assert "worse-kept" not in list_models() and not list(models.glob("*.json"))
    assert any("not better than the starting model" in m for m in notes["warning"])
    assert any("nothing was saved" in m for m in notes["warning"])
    assert "not saved" in w.status.value and "not above the starting model's 1.000" in \
        w.status.value
    assert not notes["error"] and not any("saved model" in m for m in notes["info"])
    assert w.plot.reference == 0.9999 and w.train_button.text == "Train"


def test_worse_than_the_start_save_anyway_notes_it_on_the_card(dock, qtbot, notes,
                                                               monkeypatch):
    w, models = dock
    _start_at(monkeypatch, 0.9999)
    w.worse_answer = train_outcome.SAVE
    statuses = []
    _train(w, qtbot, "worse-saved", statuses)
    assert "worse-saved" in list_models() and "saved as worse-saved" in w.status.value
    card = json.loads((models / "worse-saved.json").read_text())
    assert card["training"]["worse_than_start"]["starting_score"] == 0.9999
    assert "no epoch beat the starting model" in card["notes"]
    assert any("all the same" in m for m in notes["warning"])
    # the epoch's line never calls an epoch below the start "(best)"
    epoch_lines = [s for s in statuses if s.startswith("epoch 1:")]
    assert epoch_lines and not any("(best)" in s for s in epoch_lines)
    assert all("not above the starting model's" in s for s in epoch_lines)


def test_better_than_the_start_is_saved_without_asking(dock, qtbot, notes, monkeypatch):
    w, models = dock
    _start_at(monkeypatch, 0.0)
    monkeypatch.setattr(train_outcome, "ask_if_worse", lambda *a: pytest.fail("asked"))
    statuses = []
    _train(w, qtbot, "better", statuses)
    assert "better" in list_models()
    assert not any("starting model" in m for m in notes["warning"]), notes["warning"]
    assert any(s.startswith("epoch 1:") and "(best)" in s for s in statuses)
    assert w.progress.value == w.progress.max  # it did all its work
    assert "worse_than_start" not in json.loads((models / "better.json").read_text())["training"]


def test_stop_mid_run_the_bar_stays_and_the_status_says_stopped(dock, qtbot, notes,
                                                                monkeypatch):
    from napari_wbcseg.training.engine.loop import BatchEvent

    w, _ = dock
    _start_at(monkeypatch, 0.0)
    w.steps.value = 100
    w.name.value = "stopped-early"
    w.train()
    w._worker.yielded.connect(lambda ev: w.stop() if isinstance(ev, BatchEvent)
                              and ev.step == 2 else None)
    qtbot.waitUntil(lambda: w._worker is None and w._saving is None, timeout=60000)
    assert 0 < w.progress.value < w.progress.max
    assert w.progress.max == 1 + 100 + 1  # the starting model, the batches, the validation
    # Stop is seen after batch 2; the worker may finish one more before it polls
    assert 2 <= w._last.batches < 100
    assert w.status.value.startswith(f"stopped after {w._last.batches} of 100 batches")
    assert "not saved" in w.status.value  # stopped inside its first epoch


@pytest.mark.real_dialogs
def test_closing_the_question_keeps_the_starting_model(dock, qtbot):
    """The dialog itself (no answer injected): closed without a choice, nothing is saved."""
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    from napari_wbcseg.training.engine.session_save import WorseThanStart

    w, _ = dock
    seen = []

    def close():
        box = QApplication.activeModalWidget()
        seen.append(box.text())
        box.reject()  # Esc / the window's close button

    QTimer.singleShot(200, close)
    answer = train_outcome.ask_if_worse(w, WorseThanStart("wbcseg-lite0", 0.828, 0.803, 2))
    assert answer == train_outcome.KEEP
    assert seen and seen[0].startswith("The fine-tune is not better than the starting model")
