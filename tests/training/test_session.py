"""Fine-tuning sessions (the training widget's engine): data, run, save, export / import.

Training is kept tiny (64 px crops, 1-2 batches) on purpose: mechanics, not accuracy.
"""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_wbcseg.core.batch import run_to_end  # noqa: E402
from napari_wbcseg.io.model_store import list_models, model_entries  # noqa: E402
from napari_wbcseg.training.engine import session, session_save  # noqa: E402
from napari_wbcseg.training.engine.loop import BatchEvent, EpochEvent, NoticeEvent  # noqa: E402
from napari_wbcseg.training.engine.session_classifier import ClassifierEvent  # noqa: E402
from napari_wbcseg.training.data.sample import IGNORE  # noqa: E402

TINY = dict(epochs=1, steps_per_epoch=2, batch_size=2, crop=64, threads=1)


def layer_set(seed, classes=(1, 2), name=None, **kw) -> session.LayerSet:
    from napari_wbcseg.core.synthetic import synthetic_smear

    sm = synthetic_smear(shape=(128, 160), n_wbc=len(classes), classes=list(classes), seed=seed,
                         pixel_size_um=0.35)
    return session.LayerSet(name or f"smear {seed}", sm.image, sm.nucleus, sm.cytoplasm,
                            sm.cell_type, **kw)


@pytest.fixture
def models(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    monkeypatch.setenv("NAPARI_WBCSEG_MODELS", str(folder))
    return folder


def _run(params, sets=(), **kw):
    events = []
    outcome = run_to_end(session.run(params, sets, **kw), events.append)
    return outcome, events


def test_samples_from_layer_sets_checks_shapes_and_review_state():
    good = layer_set(1)
    small = layer_set(2, name="cropped")
    small = session.LayerSet(small.name, small.image, small.nucleus[:100], small.cytoplasm,
                             small.cell_type)
    cells = np.unique(good.nucleus[good.nucleus > 0])
    partial = session.LayerSet("partial", good.image, good.nucleus, good.cytoplasm,
                               good.cell_type, reviewed=False, reviewed_cells=(int(cells[0]),))
    ignore = np.zeros(good.image.shape[:2], bool)
    ignore[:5] = True
    masked = session.LayerSet("masked", good.image, good.nucleus, good.cytoplasm, good.cell_type,
                              ignore=ignore)
    samples, skipped = session.samples_from_layer_sets([good, small, partial, masked])
    assert [s.name for s in samples] == ["viewer/smear 1", "viewer/partial", "viewer/masked"]
    assert len(skipped) == 1 and "'cropped'" in skipped[0] and "100x160" in skipped[0]
    assert "128x160" in skipped[0]
    full, part, mask = samples
    other = (good.nucleus == cells[1]) | (good.cytoplasm == cells[1])
    assert (part.semantic[other] == IGNORE).all() and not part.complete
    assert (full.semantic[other] > 0).all() and full.complete
    assert (mask.semantic[:5] == IGNORE).all()
    assert session.class_codes(samples) == [1, 2]
    assert 0.5 < full.scale < 3


def test_fine_tune_defaults_follow_the_base_model():
    from napari_wbcseg.io.model_store import find_model
    from napari_wbcseg.training.engine.presets import _NO_AUG

    card = find_model("wcsegnet-compact").card
    p = session.SessionParams("x")
    assert (p.base_model, p.epochs, p.steps_per_epoch, p.lr, p.batch_size, p.crop) == \
        ("wcsegnet-compact", 5, 20, 5e-4, 4, 192)
    c = session.fine_tune_config(p, card)
    assert c.model_config == card["config"] and c.lr == 5e-4 and c.epochs == 5
    assert c.freeze_encoder_fraction == 0 and c.class_weight == 2.0 and c.augment == {}
    assert c.class_head_only and c.freeze_norm and c.class_loss_present_only
    scratch = session.fine_tune_config(session.SessionParams("x", base_model=None))
    assert not (scratch.class_head_only or scratch.freeze_norm or scratch.class_loss_present_only)
    off = session.fine_tune_config(session.SessionParams("x", augment=False), card,
                                   train_classes=False)
    assert off.augment == _NO_AUG and off.scale_jitter == 0 and off.class_weight == 0


def test_run_saves_a_listed_user_model_with_its_card(models):
    sets = [layer_set(s, name=f"img{s}") for s in range(3)]
    before = [s.nucleus.copy() for s in sets]
    params = session.SessionParams("my-ft", val_fraction=0.34, **TINY)
    outcome, events = _run(params, sets)
    assert outcome.saved and outcome.error is None and outcome.batches == 2
    assert any(isinstance(e, session.BaselineEvent) for e in events)
    assert sum(isinstance(e, BatchEvent) for e in events) == 2
    assert any(isinstance(e, EpochEvent) for e in events)
    assert "my-ft" in list_models() and model_entries()["my-ft"].origin == "user"
    assert outcome.classifier is None  # 6 labelled cells: too few for the classifier
    assert any(isinstance(e, NoticeEvent) and "cell classifier not fine-tuned: 4 labelled "
               "training cell(s); it needs 50" in e.message for e in events)
    card = json.loads((models / "my-ft.json").read_text())
    t = card["training"]
    assert t["base_model"]["name"] == "wcsegnet-compact" and t["date"]
    assert t["settings"]["lr"] == 5e-4 and t["settings"]["crop"] == 64
    assert t["data"]["viewer_images"] == ["img0", "img1", "img2"]
    assert t["data"]["samples"]["viewer"]["val"] >= 1 and "summary" in card["validation"]
    assert card["config"] == model_entries()["wcsegnet-compact"].card["config"]
    assert all(np.array_equal(a, s.nucleus) for a, s in zip(before, sets))
    assert not [p for p in models.iterdir() if p.name.startswith(".")]
    with pytest.raises(session.ModelFileError, match="exists"):
        session.check_name("my-ft")
    with pytest.raises(session.ModelFileError, match="bundled"):
        session.check_name("wcsegnet-compact", overwrite=True)
    with pytest.raises(session.ModelFileError, match="letters"):
        session.check_name("../evil")


def test_bad_inputs(models, tmp_path):
    with pytest.raises(session.TrainingInputError, match="no training data"):
        _run(session.SessionParams("a", **TINY), [])
    bad = layer_set(1)
    bad = session.LayerSet("bad", bad.image, bad.nucleus[:50], bad.cytoplasm, bad.cell_type)
    with pytest.raises(session.TrainingInputError, match="'bad' skipped.*nucleus labels"):
        _run(session.SessionParams("a", **TINY), [bad])
    (tmp_path / "empty").mkdir()
    with pytest.raises(session.TrainingInputError, match="empty"):
        _run(session.SessionParams("a", **TINY), [], folders=[tmp_path / "empty"])
    with pytest.raises(session.TrainingInputError, match="not 'wbc-net-compact'"):
        _run(session.SessionParams("a", architecture="wbc-net-compact", **TINY), [layer_set(1)])


def test_single_class_trains_segmentation_only(models):
    params = session.SessionParams("one-class", val_fraction=0, **TINY)
    gen = session.prepare(params, [layer_set(1, classes=(3, 3))])
    prepared = run_to_end(gen, lambda e: None)
    assert prepared.config.class_weight == 0
    assert any("at least 2" in m and "monocyte" in m for m in prepared.messages)
    assert any("no separate validation image" in m for m in prepared.messages)
    assert prepared.val == prepared.train and "no held-out" in prepared.data["validation"]
    outcome, _ = _run(params, prepared=prepared)
    assert outcome.saved


def test_few_validation_cells_rank_epochs_by_dice_only(models, monkeypatch):
    sets = [layer_set(s, name=f"img{s}") for s in range(4)]
    prepared = run_to_end(session.prepare(session.SessionParams("r", val_fraction=0.5), sets),
                          lambda e: None)
    assert prepared.config.score_without_classes and prepared.val
    assert "Dice only" in prepared.data["epoch_ranking"]
    monkeypatch.setattr(session, "MIN_VAL_CELLS_FOR_CLASSES", 1)
    prepared = run_to_end(session.prepare(session.SessionParams("r", val_fraction=0.5), sets),
                          lambda e: None)
    assert not prepared.config.score_without_classes
    assert prepared.data["epoch_ranking"].startswith("segmentation Dice and cell-type")


def test_few_labelled_cells_train_the_segmentation_only(models, monkeypatch):
    sets = [layer_set(s, name=f"img{s}") for s in range(3)]  # 2 cells of 2 types each
    prepared = run_to_end(session.prepare(session.SessionParams("c"), sets), lambda e: None)
    assert prepared.config.class_weight == 0 and not prepared.data["cell_types_trained"]
    assert any("too few to learn cell types" in m for m in prepared.messages)
    scratch = run_to_end(session.prepare(session.SessionParams("s", base_model=None), sets),
                         lambda e: None)  # from scratch there is no head to keep
    assert scratch.config.class_weight > 0
    monkeypatch.setattr(session, "MIN_TRAIN_CELLS_FOR_CLASSES", 2)
    prepared = run_to_end(session.prepare(session.SessionParams("c"), sets), lambda e: None)
    assert prepared.config.class_weight > 0 and prepared.data["cell_types_trained"]


def test_mask_rcnn_fine_tunes_come_with_the_measured_warning(models):
    sets = [layer_set(1), layer_set(2)]
    arch = "leukocytemask-compact"
    prepared = run_to_end(session.prepare(
        session.SessionParams("m", architecture=arch, base_model=arch), sets), lambda e: None)
    assert any("lowered Dice on other images" in m for m in prepared.messages)
    prepared = run_to_end(session.prepare(session.SessionParams("d"), sets), lambda e: None)
    assert not any("lowered Dice" in m for m in prepared.messages)


def test_stop_in_first_batch_saves_nothing_and_resume_finishes(models):
    sets = [layer_set(1), layer_set(2)]
    params = session.SessionParams("stopped", base_model=None, val_fraction=0, **TINY)
    outcome, _ = _run(params, sets, should_stop=lambda: True)
    assert not outcome.saved and outcome.result is None  # asked to stop before training
    calls = []
    outcome, _ = _run(params, sets, should_stop=lambda: calls.append(1) or len(calls) > 1)
    assert outcome.result.stopped == "user" and outcome.batches == 1 and not outcome.saved
    assert "first epoch" in outcome.messages[-1] and "stopped" not in list_models()
    ckpt = outcome.result.checkpoint
    assert ckpt and Path(ckpt).is_file()
    resumed, _ = _run(params, prepared=outcome.prepared, resume=ckpt)
    assert resumed.saved and "stopped" in list_models()


def test_full_disk_leaves_nothing_listed(models, monkeypatch):
    from napari_wbcseg.io import atomic
    from napari_wbcseg.training.engine import bundle

    def full(path, text, *a, **kw):  # the card write (weights were written first)
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(bundle, "write_text_atomic", full)
        m.setattr(atomic, "write_text_atomic", full)
        outcome, _ = _run(session.SessionParams("full", val_fraction=0, **TINY), [layer_set(1)])
    assert not outcome.saved and "No space left" in outcome.error
    assert "nothing was added" in outcome.error
    assert "full" not in list_models() and not list(models.glob("*.safetensors"))
    assert not [p for p in models.iterdir() if p.name.startswith(".")]

    def broken(*a, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bundle, "write_model", broken)
    outcome, _ = _run(session.SessionParams("full2", val_fraction=0, **TINY), [layer_set(1)])
    assert "full2" not in list_models() and "No space" in outcome.error


def test_export_import_round_trip_and_refusals(models, tmp_path):
    out = session.export_model("wcsegnet-compact", tmp_path / "shared" / "mine")
    assert out.name == "mine.safetensors" and out.with_suffix(".json").is_file()
    name = session.import_model(out)
    assert name == "mine" and model_entries()["mine"].origin == "user"
    assert session.import_model(out) == "mine-2"
    card = json.loads((models / "mine.json").read_text())
    assert card["architecture"] == "wcsegnet-compact" and card["weights"]["file"] == \
        "mine.safetensors"

    # a pickle that would run code when unpickled: refused, and never executed
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(session.ModelFileError, match="not a usable napari-wbcseg model"):
        session.import_model(evil)
    torch.save({"a": torch.zeros(2)}, tmp_path / "ckpt.pt")
    with pytest.raises(session.ModelFileError, match="not a usable"):
        session.import_model(tmp_path / "ckpt.pt")
    assert not marker.exists() and "evil" not in list_models()

    card = json.loads(out.with_suffix(".json").read_text())
    card["weights"]["sha256"] = "0" * 64
    out.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(session.ModelFileError, match="another weight file"):
        session.import_model(out)
    out.with_suffix(".json").unlink()
    assert session.import_model(out, name="bare") == "bare"  # no card: one is made
    assert model_entries()["bare"].card["architecture"] == "wcsegnet-compact"


# ------------------------------------------------------------------ per-cell classifier

CLS_TINY = {"crop_size": 64, "epochs": 1, "steps_per_epoch": 2, "batch_size": 4,
            "imagenet": False, "precision": "fp32"}


def crowded_sets(classes=(1, 2), n=5):
    """``n`` fields of 14 cells each: 4 training images hold 56 labelled cells (>= 50)."""
    from napari_wbcseg.core.synthetic import synthetic_smear

    out = []
    for seed in range(n):
        sm = synthetic_smear(shape=(256, 320), n_wbc=14, classes=list(classes), seed=seed,
                             pixel_size_um=0.35)
        out.append(session.LayerSet(f"field {seed}", sm.image, sm.nucleus, sm.cytoplasm,
                                    sm.cell_type))
    return out


def _blood_classes():
    from napari_wbcseg.io.model_store import find_model

    return find_model("wcsegnet-compact").card["classes"]


@pytest.fixture
def no_bundled_classifier(tmp_path, monkeypatch):
    """As on an install without the bundled classifier: the first fine-tune starts from
    ImageNet, and 'no classifier' is observable."""
    from napari_wbcseg.io import classifier_store

    empty = tmp_path / "no-bundled-classifiers"
    monkeypatch.setattr(classifier_store, "bundled_classifier_dir", lambda: empty)


def test_fine_tune_trains_saves_and_then_fine_tunes_the_classifier(models, monkeypatch,
                                                                   no_bundled_classifier):

    from napari_wbcseg.io.classifier_store import classifier_for

    params = session.SessionParams("cls-ft", val_fraction=0.2, classifier_settings=CLS_TINY,
                                   **TINY)
    assert classifier_for(_blood_classes()) is None
    outcome, events = _run(params, crowded_sets())
    assert outcome.prepared.data["labelled_training_cells"] >= 50 and outcome.prepared.val
    assert outcome.saved and outcome.classifier == "cls-ft-classifier"
    cls_events = [e.event for e in events if isinstance(e, ClassifierEvent)]
    assert sum(isinstance(e, BatchEvent) for e in cls_events) == 2
    assert sum(isinstance(e, BatchEvent) for e in events) == 2  # the segmentation's own
    entry = classifier_for(_blood_classes())
    assert entry.name == "cls-ft-classifier" and entry.origin == "user"
    assert entry.weights.parent == models / "classifiers"
    card = json.loads((models / "cls-ft.json").read_text())
    assert card["training"]["classifier"] == "cls-ft-classifier"
    data = entry.card["training"]["data"]
    assert data["masks_from"] == "truth" and data["segmentation_model"] == "cls-ft"
    assert sum(data["cells"]["train"]) >= 50 and sum(data["cells"]["selection"]) > 0
    assert data["init"] == "scratch" and entry.card["validation"]["selection_free"] is False
    assert not [p for p in (models / "classifiers").iterdir() if p.name.startswith(".")]

    # the next fine-tune starts from that classifier; Stop in its first epoch saves the
    # model but not the classifier
    seen = []
    stop = lambda: any(isinstance(e, ClassifierEvent) for e in seen)  # noqa: E731
    outcome = run_to_end(session.run(session.SessionParams("cls-stop", **TINY,
                                                           classifier_settings=CLS_TINY),
                                     prepared=outcome.prepared, should_stop=stop), seen.append)
    assert outcome.saved and outcome.classifier is None
    card = json.loads((models / "cls-stop.json").read_text())
    assert card["training"]["classifier"] is None and "before its first epoch" in \
        card["training"]["classifier_note"]
    assert classifier_for(_blood_classes()).name == "cls-ft-classifier"

    # a model that cannot be saved takes its classifier with it (all or nothing)
    def full(*a, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(session_save, "_publish", full)
    outcome, _ = _run(session.SessionParams("cls-full", classifier_settings=CLS_TINY, **TINY),
                      prepared=outcome.prepared)
    assert "No space left" in outcome.error and outcome.classifier is None
    assert classifier_for(_blood_classes()).name == "cls-ft-classifier"
    assert sorted(p.name for p in (models / "classifiers").iterdir()) == \
        ["cls-ft-classifier.json", "cls-ft-classifier.safetensors"]
    monkeypatch.undo()
    monkeypatch.setenv("NAPARI_WBCSEG_MODELS", str(models))

    outcome, events = _run(session.SessionParams("cls-ft2", classifier_settings=CLS_TINY,
                                                 **TINY), prepared=outcome.prepared)
    entry = classifier_for(_blood_classes())
    assert outcome.classifier == entry.name == "cls-ft2-classifier"
    assert entry.card["training"]["data"]["base_classifier"] == "cls-ft-classifier"
    assert any(isinstance(e, ClassifierEvent) and "given classifier" in
               getattr(e.event, "message", "") for e in events)


def test_one_class_skips_the_classifier_with_a_message(models, no_bundled_classifier):
    from napari_wbcseg.io.classifier_store import classifier_for

    params = session.SessionParams("mono", val_fraction=0.2, classifier_settings=CLS_TINY,
                                   **TINY)
    outcome, events = _run(params, crowded_sets(classes=(3,)))
    assert outcome.prepared.data["labelled_training_cells"] >= 50
    assert outcome.saved and outcome.classifier is None
    notes = [e.message for e in events if isinstance(e, NoticeEvent)]
    assert any("cell classifier not fine-tuned: 1 cell type in the training data (monocyte)"
               in m for m in notes), notes
    assert not any(isinstance(e, ClassifierEvent) for e in events)
    assert classifier_for(_blood_classes()) is None
    card = json.loads((models / "mono.json").read_text())
    assert card["training"]["classifier"] is None and "monocyte" in \
        card["training"]["classifier_note"]
