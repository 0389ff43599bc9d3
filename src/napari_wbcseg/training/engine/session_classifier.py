"""The per-cell classifier half of a fine-tuning session (no Qt).

After the segmentation fine-tune, :func:`fine_tune_classifier` trains the classifier that
serves the data's class table (the project's, ``prepared.data["class_table"]``: a marrow
project's 16 classes give a 16-class classifier; starting from the installed one for that
table, ``classifier_for``, else from ImageNet) on the corrected cells, cropped with their
own (truth) masks.  Its epoch and temperature
are picked on the cells of the session's validation images.  The schedule is short:
crops are small, so this takes seconds.  :func:`write_staged` / :func:`publish` let
``session.save_model`` save it together with the model, all or nothing.
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: short fine-tune schedule (ClassifierConfig fields)
CLASSIFIER_FINETUNE = {"epochs": 3, "steps_per_epoch": 20, "batch_size": 16, "lr": 3e-4}

__all__ = ["CLASSIFIER_FINETUNE", "ClassifierEvent", "ClassifierStage", "classifier_name",
           "classifier_stage", "fine_tune_classifier", "planned_work", "publish", "unpublish",
           "write_staged"]


@dataclass
class ClassifierEvent:
    """A loop event (Notice/Batch/Epoch) of the classifier stage; ``total`` batches."""
    event: object
    total: int


@dataclass
class ClassifierStage:
    name: str
    model: str = ""  # the segmentation model it is trained beside
    result: object | None = None  # classifier.ClassifierResult; None: skipped
    classes: list = field(default_factory=list)
    data: dict = field(default_factory=dict)
    validation: dict = field(default_factory=dict)
    note: str = ""  # why nothing is saved (skipped, stopped)
    batches: int = 0

    @property
    def trained(self) -> bool:
        return self.result is not None


def classifier_name(model_name: str) -> str:
    return f"{model_name}-classifier"


def _class_table(prepared) -> list:
    """The data's class table (``session.prepare`` records it), else the starting model's,
    else the five blood classes."""
    from ..data.class_tables import default_table

    table = prepared.data.get("class_table")
    if table:
        return [dict(c) for c in table]
    if prepared.base:
        from ...io.model_store import ModelNotFoundError, find_model

        try:
            classes = find_model(prepared.base["name"]).card.get("classes")
        except ModelNotFoundError:
            classes = None
        if classes:
            return [dict(c) for c in classes]
    return default_table()


def _skip_reason(prepared, min_cells: int) -> str:
    names_of = {int(c["code"]): c["name"] for c in _class_table(prepared)}
    codes = [c for c in prepared.data.get("classes") or [] if c in names_of]
    cells = int(prepared.data.get("labelled_training_cells", 0))
    if len(codes) < 2:
        names = ", ".join(names_of[c] for c in codes) or "none"
        return (f"{len(codes)} cell type in the training data ({names}); it needs labelled "
                "cells of 2 or more types")
    if cells < min_cells:
        return (f"{cells} labelled training cell(s); it needs {min_cells} or more (of 2 or "
                "more types)")
    return ""


def fine_tune_classifier(prepared, model_name: str, *, min_cells: int, overrides=None,
                         seed: int = 0, should_stop=lambda: False):
    """Generator of :class:`ClassifierEvent` (and one ``NoticeEvent`` when skipped);
    returns a :class:`ClassifierStage` (``trained`` False: ``note`` says why)."""
    from .loop import NoticeEvent

    stage = ClassifierStage(classifier_name(model_name), model_name)
    why = _skip_reason(prepared, min_cells)
    if why:
        stage.note = f"cell classifier not fine-tuned: {why}"
    else:
        yield from _train(stage, prepared, overrides, seed, should_stop)
    if stage.note:  # shown by the dock, not an error
        yield NoticeEvent(stage.note)
    return stage


def planned_work(prepared, params, min_cells: int) -> tuple[int, int]:
    """``(batches, epochs)`` the classifier stage of a session will train (0, 0: skipped)."""
    if not params.train_classifier or _skip_reason(prepared, min_cells):
        return 0, 0
    values = dict(CLASSIFIER_FINETUNE, **(params.classifier_settings or {}))
    epochs, steps = int(values.get("epochs", 0)), int(values.get("steps_per_epoch", 0))
    return epochs * steps, epochs


def classifier_stage(params, prepared, result, should_stop, min_cells: int):
    """The classifier fine-tune after the segmentation one (events pass through)."""
    from .loop import NoticeEvent
    from .session import DataEvent

    if result.stopped == "user" or should_stop():
        stage = ClassifierStage(classifier_name(params.name),
                                note="stopped: the cell classifier was not fine-tuned")
        yield NoticeEvent(stage.note)
        return stage
    yield DataEvent("fine-tuning the cell classifier on the corrected cells")
    return (yield from fine_tune_classifier(
        prepared, params.name, min_cells=min_cells, overrides=params.classifier_settings,
        seed=params.seed, should_stop=should_stop))


def _train(stage, prepared, overrides, seed, should_stop):
    from ...io.classifier_store import classifier_for
    from ..data.cell_data import collect_cells
    from .classifier import ClassifierConfig, train_classifier_steps
    from .loop import BatchEvent

    classes = _class_table(prepared)
    entry = classifier_for(classes)
    values = dict(CLASSIFIER_FINETUNE, seed=seed, imagenet=entry is None)
    state = None
    if entry is not None:
        from ...models.weights import load_weights

        classes = [dict(c) for c in entry.card["classes"]]  # its index order
        config = entry.card.get("config") or {}
        values.update(architecture=entry.card.get("architecture", "cell-classifier-lite0"),
                      crop_size=int(config.get("crop_size", 128)))
        try:
            state, _ = load_weights(entry.weights)
        except (OSError, ValueError) as exc:
            stage.note = f"cell classifier not fine-tuned: cannot read {entry.name}: {exc}"
            return
    values.update(overrides or {})
    config = ClassifierConfig.from_dict(values)
    codes = [int(c["code"]) for c in classes]
    train = collect_cells(prepared.train, codes, size=config.crop_size)
    select = collect_cells(prepared.val, codes, size=config.crop_size)
    total = config.epochs * config.steps_per_epoch
    gen = train_classifier_steps(train, select, classes, config, initial_state=state,
                                 should_stop=should_stop)
    try:
        while True:
            try:
                ev = next(gen)
            except StopIteration as stop:
                result = stop.value
                break
            stage.batches += isinstance(ev, BatchEvent)
            yield ClassifierEvent(ev, total)
    except ValueError as exc:  # no labelled cell / one class once cropped
        stage.note = f"cell classifier not fine-tuned: {exc}"
        return
    finally:
        gen.close()
    if result.best_epoch < 1 or (result.stopped == "user"
                                 and stage.batches < config.steps_per_epoch):
        stage.note = (f"cell classifier not saved: {result.stopped} after {stage.batches} "
                      "batch(es), before its first epoch was complete")
        return
    per_class = lambda c: np.bincount(c.labels, minlength=len(classes)).tolist()  # noqa: E731
    stage.result, stage.classes = result, classes
    stage.data = {"source": "napari-wbcseg training widget", "segmentation_model": stage.model,
                  "masks_from": "truth", "base_classifier": entry.name if entry else None,
                  "init": entry.name if entry else ("imagenet" if config.imagenet else
                                                    "scratch"),
                  "cells": {"train": per_class(train), "selection": per_class(select)},
                  "viewer_images": prepared.data.get("viewer_images", []),
                  "folders": prepared.data.get("folders", [])}
    # the epoch was picked on these cells: the score is not selection-free
    stage.validation = dict(result.selection, selection_free=False) if result.selection else {}


def write_staged(stage: ClassifierStage, folder: Path) -> Path:
    """Write the classifier into a hidden staging folder inside ``folder`` (OSError)."""
    from .classifier_run import write_classifier

    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".saving-{stage.name}-", dir=folder))
    try:
        write_classifier(staging, stage.name, stage.result, classes=stage.classes,
                         data=stage.data, validation=stage.validation,
                         notes="Fine-tuned in the napari-wbcseg training widget beside "
                               f"segmentation model {stage.model!r}")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def publish(staging: Path, name: str, folder: Path) -> None:
    """Weights, then card, into ``folder`` (the card lists it); the cache forgets it."""
    from ...inference.classify import clear_cache
    from ...io.model_exchange import _publish

    _publish(staging, name, folder)
    clear_cache()  # one saved again under its name must not be served from the cache


def unpublish(name: str, folder: Path) -> None:
    for suffix in (".json", ".safetensors"):
        (folder / f"{name}{suffix}").unlink(missing_ok=True)
