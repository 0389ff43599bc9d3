"""Fine-tuning from corrected labels: the Qt-free half of the training widget.

The widget snapshots the reviewed images of the viewer as :class:`LayerSet` objects
(plain arrays, never layers) and hands them, with project folders and
:class:`SessionParams`, to :func:`run`: a generator that loads the data, builds the
fine-tune settings, drives :func:`.loop.train_steps` (its events pass through), saves
the best weights as a user model and returns a :class:`SessionOutcome`.  With 50 or
more labelled training cells of 2 or more types it then fine-tunes the per-cell
classifier too (:mod:`.session_classifier`), saved as ``<name>-classifier`` beside the
model.  Scripts
(``scripts/bench_finetune.py``) and tests consume the same generator synchronously.

A fine-tune from a trained model is compared with it: the starting model is scored on
the validation images first (epoch 0, :class:`BaselineEvent`), and a run whose best
epoch does not beat that score is never saved silently (``if_worse`` of :func:`run`).
Saving (all or nothing) lives in :mod:`.session_save`.
Export / import of model files live in :mod:`napari_wbcseg.io.model_exchange` (re-exported
here).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ...io.model_exchange import (ModelFileError, _models_changed, _publish, check_name,  # noqa: F401
                                 export_model, import_model, read_model_file)
from ..data.sample import IGNORE, UNKNOWN_CLASS, Sample
from .progress import PlanEvent
from .session_save import WorseThanStart, save_model, worse_than_start  # noqa: F401

#: quick fine-tune defaults (start from a trained model) and from-scratch defaults
FINETUNE_DEFAULTS = {"epochs": 5, "steps_per_epoch": 20, "lr": 5e-4, "batch_size": 4, "crop": 192}
SCRATCH_DEFAULTS = {"epochs": 30, "steps_per_epoch": 60, "lr": 2e-3, "batch_size": 8, "crop": 192}
MAX_STAND_IN_VAL = 8  # training images that score epochs when there is no validation split
MIN_VAL_CELLS_FOR_CLASSES = 20  # fewer labelled validation cells: rank epochs by Dice only
# a fine-tune on fewer labelled cells trains the segmentation only: 8-10 cells lowered the
# cell-type accuracy on other images in every repeat (docs/finetune.md); 50 is our choice
MIN_TRAIN_CELLS_FOR_CLASSES = 50


class TrainingInputError(ValueError):
    """Training data or settings that cannot be used; the message says why in one line."""


@dataclass(frozen=True)
class LayerSet:
    """One image and its three schema label arrays (copies, not layers).

    ``reviewed``: every cell was checked.  Otherwise only ``reviewed_cells`` are trusted
    (the other cells are ignored by the loss).  ``ignore``: optional HxW bool of pixels
    whose label is unknown (e.g. unannotated cells of public data).
    """
    name: str
    image: np.ndarray
    nucleus: np.ndarray
    cytoplasm: np.ndarray
    cell_type: np.ndarray
    reviewed: bool = True
    reviewed_cells: tuple | None = None
    ignore: np.ndarray | None = None


@dataclass(frozen=True)
class SessionParams:
    name: str
    architecture: str = "wcsegnet-compact"
    base_model: str | None = "wcsegnet-compact"  # a model name; None: from scratch
    epochs: int = FINETUNE_DEFAULTS["epochs"]
    steps_per_epoch: int = FINETUNE_DEFAULTS["steps_per_epoch"]
    lr: float = FINETUNE_DEFAULTS["lr"]
    batch_size: int = FINETUNE_DEFAULTS["batch_size"]
    crop: int = FINETUNE_DEFAULTS["crop"]
    augment: bool = True
    val_fraction: float = 0.2
    seed: int = 0
    threads: int | None = None
    keep_norm_statistics: bool = True  # fine-tuning keeps the base model's BatchNorm stats
    # also fine-tune the per-cell classifier (session_classifier), saved beside the model;
    # classifier_settings: ClassifierConfig fields over its short schedule (e.g. crop_size)
    train_classifier: bool = True
    classifier_settings: dict = field(default_factory=dict)
    # the class table of the data (e.g. the open project's, CellClass or dicts); None:
    # that of the project folders given, else the starting model's, else the five blood
    # classes.  The per-cell classifier learns it; the segmentation head keeps its own.
    classes: tuple | None = None


@dataclass
class Prepared:
    """Everything a run (and its resume) trains on; built once, in the worker."""
    train: list
    val: list
    config: object  # loop.TrainConfig
    base: dict | None  # {"name", "architecture", "sha256"} of the starting model
    initial_state: dict | None
    native_cell_diameter: float
    data: dict
    messages: list = field(default_factory=list)
    baseline: float | None = None  # validation score of the starting model, once scored


@dataclass
class DataEvent:
    message: str
    warning: bool = False  # something the user should act on (skipped image, one class)


@dataclass
class BaselineEvent:
    """Validation of the starting model before any training (epoch 0)."""
    score: float
    validation: dict


@dataclass
class SessionOutcome:
    name: str
    result: object | None  # loop.TrainResult (None: stopped before training)
    prepared: Prepared | None
    batches: int = 0
    card: Path | None = None
    error: str | None = None  # saving failed (nothing was listed)
    messages: list = field(default_factory=list)
    classifier: str | None = None  # the per-cell classifier saved beside the model
    # no epoch beat the starting model (a WorseThanStart); saved only on request
    worse: WorseThanStart | None = None
    # run(if_worse="ask"): the save waits for an answer, see save_pending
    pending: dict | None = None

    @property
    def saved(self) -> bool:
        return self.card is not None

    @property
    def baseline(self) -> float | None:
        return self.prepared.baseline if self.prepared is not None else None


# ------------------------------------------------------------------------------ data

def samples_from_layer_sets(sets, num_classes: int | None = None, classes=None
                            ) -> tuple[list[Sample], list[str]]:
    """``(samples, skipped)``: one sample per usable set, a one-line reason per unusable one.

    Cell types keep their codes (any class table); codes not in ``classes`` (a table;
    default: every code 1..254) and, with ``num_classes``, above it become 255."""
    from ...core.image import ImageFormatError, as_rgb_uint8
    from ...schema import LabelSchemaError, check_labels, semantic_from_layers
    from ..data.class_tables import keep_table_codes, table_codes
    from ..data.folders import _image_class, _scale_from_cells

    codes = None if classes is None else table_codes(classes)
    rows, ids_list, skipped = [], [], []
    for s in sets:
        try:
            image = as_rgb_uint8(np.asarray(s.image), what=repr(s.name))
        except ImageFormatError as exc:
            skipped.append(f"{s.name!r} skipped: {exc}")
            continue
        labels = {k: np.asarray(getattr(s, k)) for k in ("nucleus", "cytoplasm", "cell_type")}
        bad = [f"{k.replace('_', ' ')} labels are {'x'.join(map(str, a.shape))}"
               for k, a in labels.items() if a.shape != image.shape[:2]]
        if bad:
            skipped.append(f"{s.name!r} skipped: {', '.join(bad)} but the image is "
                           f"{image.shape[0]}x{image.shape[1]}")
            continue
        nuc, cyt, ct = labels["nucleus"], labels["cytoplasm"], labels["cell_type"]
        try:
            check_labels(nuc, cyt, ct)
        except LabelSchemaError as exc:
            skipped.append(f"{s.name!r} skipped: {exc}")
            continue
        semantic = semantic_from_layers(nuc, cyt)
        cell = semantic > 0
        cell_class = keep_table_codes(ct, cell, codes, num_classes)
        ids = np.where(nuc > 0, nuc, cyt).astype(np.int64)
        if not s.reviewed:
            unchecked = cell & ~np.isin(ids, list(s.reviewed_cells or ()))
            semantic[unchecked] = IGNORE
            cell_class[unchecked] = UNKNOWN_CLASS
            ids = np.where(unchecked, 0, ids)
        if s.ignore is not None:
            ignore = np.asarray(s.ignore, bool)
            semantic[ignore] = IGNORE
            cell_class[ignore] = UNKNOWN_CLASS
        rows.append((s, image, semantic, cell_class))
        ids_list.append(ids)
    scale = _scale_from_cells(ids_list)
    samples = [Sample(image=image, semantic=semantic, cell_class=cell_class, source="viewer",
                      group=f"viewer:{s.name}", name=f"viewer/{s.name}", scale=scale,
                      complete=bool(s.reviewed), image_class=_image_class(cell_class),
                      meta={"reviewed": s.reviewed, "reviewed_cells": s.reviewed_cells})
               for (s, image, semantic, cell_class) in rows]
    return samples, skipped


def class_codes(samples) -> list[int]:
    """Cell-type codes (1..254) labelled on at least one pixel of ``samples``."""
    codes: set[int] = set()
    for s in samples:
        codes.update(int(c) for c in np.unique(s.cell_class) if 0 < c < UNKNOWN_CLASS)
    return sorted(codes)


def fine_tune_config(params: SessionParams, base_card: dict | None = None, *,
                     train_classes: bool = True):
    """The TrainConfig of a run: the "fast" recipe with the widget's settings on top.

    From a trained model: its network settings, preprocessing and class-loss weight, the
    whole network trained at once (no encoder freezing) with its BatchNorm statistics
    kept.  ``train_classes=False`` sets
    the cell-type loss weight to 0 (segmentation only).
    """
    from .loop import TrainConfig
    from .presets import _NO_AUG, check_config, preset

    values = preset("fast", params.architecture)
    values.update(epochs=params.epochs, steps_per_epoch=params.steps_per_epoch, lr=params.lr,
                  batch_size=params.batch_size, crop=params.crop, seed=params.seed,
                  threads=params.threads, freeze_encoder_fraction=0.0,
                  patience=max(values["patience"], params.epochs))
    if base_card:
        values["model_config"] = dict(base_card.get("config") or {})
        values["preprocess"] = (base_card.get("preprocessing") or {}).get("method", "none")
        settings = (base_card.get("training") or {}).get("settings") or {}
        values["class_weight"] = float(settings.get("class_weight", 1.0))
        # a few corrected images must not overwrite the normalisation statistics learnt
        # on the full training data (measured: scripts/bench_finetune.py)
        values["freeze_norm"] = params.keep_norm_statistics
        # and the cell-type loss of a few images must not reshape the shared features
        # (measured: the other images lost 0.026 whole-cell Dice when it did)
        values["class_head_only"] = True
        values["class_loss_present_only"] = True
    if not params.augment:
        values.update(augment=dict(_NO_AUG), scale_jitter=0.0)
    if not train_classes:
        values["class_weight"] = 0.0
    config = TrainConfig.from_dict(values)
    try:
        check_config(config)
    except ValueError as exc:
        raise TrainingInputError(str(exc)) from None
    return config


def prepare(params: SessionParams, layer_sets=(), folders=()):
    """Generator of :class:`DataEvent`; returns :class:`Prepared` (``TrainingInputError``)."""
    from ...models import UnknownArchitectureError, architecture_info
    from ..data.datasets import split_by_group
    from ..data.sources import load_data_folders

    try:
        arch = architecture_info(params.architecture)["name"]
    except UnknownArchitectureError as exc:
        raise TrainingInputError(str(exc)) from None
    messages, samples = [], []
    if layer_sets:
        yield DataEvent(f"reading {len(layer_sets)} reviewed image(s) from the viewer")
        samples, skipped = samples_from_layer_sets(layer_sets, classes=params.classes)
        messages += skipped
    for folder in folders:
        yield DataEvent(f"loading {folder}")
        try:
            samples += load_data_folders([folder])
        except (FileNotFoundError, ValueError) as exc:  # skipped; an error if nothing is left
            messages.append(f"skipped: {exc}")
    if not samples:
        why = "; ".join(messages) or "no reviewed images and no project folders"
        raise TrainingInputError(f"no training data: {why}. Mark corrected images as reviewed "
                                 "or add an annotation-project folder with reviewed images.")
    train, val = split_by_group(samples, params.val_fraction, seed=params.seed)
    base_card, base, state, diameter = None, None, None, 80.0
    if params.base_model:
        yield DataEvent(f"loading the starting model {params.base_model}")
        base_card, base, state = _base_model(params.base_model, arch)
        diameter = float(base_card.get("native_cell_diameter_px", 80.0))
    if params.base_model and architecture_info(arch)["family"].startswith("Mask R-CNN"):
        messages.append(f"quick fine-tunes of {arch} lowered Dice on other images in our "
                        "benchmark (docs/finetune.md); the dense networks, e.g. "
                        "wcsegnet-compact, learn from a few corrections without that loss")
    from ..data.sampling import cell_type_counts

    table = _data_table(params, folders, base_card)
    table_codes = [r["code"] for r in table]
    head = _head_codes(base_card)  # the segmentation head's own classes (codes 1..K)
    codes = [c for c in class_codes(train) if c in table_codes]
    head_present = [c for c in codes if c in head]
    if len(head_present) < 2:
        names = ", ".join(next((r["name"] for r in table if r["code"] == c), str(c))
                          for c in head_present) or "none"
        messages.append(f"cell types: {len(head_present)} class of the segmentation model's "
                        f"in the training data ({names}); learning cell types needs at least "
                        "2, so only the segmentation is trained (the cell-type head keeps its "
                        "starting weights)")
    train_cells = int(cell_type_counts(train, codes=head).sum())
    table_cells = int(cell_type_counts(train, codes=table_codes).sum())
    learn_types = len(head_present) >= 2
    if learn_types and params.base_model and train_cells < MIN_TRAIN_CELLS_FOR_CLASSES:
        learn_types = False
        messages.append(f"cell types: {train_cells} labelled training cell(s) are too few to "
                        "learn cell types without losing accuracy on other images (measured "
                        "in docs/finetune.md), so only the segmentation is trained (the "
                        f"cell-type head keeps its starting weights; {MIN_TRAIN_CELLS_FOR_CLASSES}"
                        " or more cells of 2 or more types train it)")
    counts: dict = {}
    for part, group in (("train", train), ("val", val)):
        for s in group:
            counts.setdefault(s.source, {"train": 0, "val": 0})[part] += 1
    validation = "held-out images"
    if not val:  # score epochs on training images: without any, the loop would rank epochs
        # by training loss against an initial best of -1 (a loss above 1 never "improves")
        val = train[:MAX_STAND_IN_VAL]
        validation = f"{len(val)} training image(s) (no held-out image)"
        messages.append(f"no separate validation image ({len(samples)} image(s), validation "
                        f"fraction {params.val_fraction:g}): epochs are scored on "
                        f"{len(val)} training image(s), which says little about new images")
    config = fine_tune_config(replace(params, architecture=arch), base_card,
                              train_classes=learn_types)
    val_cells = int(cell_type_counts(val, codes=head).sum())
    ranking = "segmentation Dice and cell-type accuracy"
    if val_cells < MIN_VAL_CELLS_FOR_CLASSES:  # 2 cells: accuracy 0, 0.5 or 1 by chance
        config = replace(config, score_without_classes=True)
        ranking = (f"segmentation Dice only ({val_cells} labelled validation cell(s), "
                   f"fewer than {MIN_VAL_CELLS_FOR_CLASSES})")
        yield DataEvent(f"epochs are ranked by {ranking}")
    data = {"split": f"group-aware, validation fraction {params.val_fraction:g}, "
                     f"seed {params.seed}",
            "samples": counts, "validation": validation, "classes": codes,
            "class_table": table,
            "labelled_training_cells": table_cells, "head_training_cells": train_cells,
            "cell_types_trained": learn_types,
            "epoch_ranking": ranking, "viewer_images": [s.name for s in layer_sets],
            "folders": [str(Path(f).resolve()) for f in folders]}
    return Prepared(train, val, config, base, state, diameter, data, messages)


def _data_table(params: SessionParams, folders, base_card) -> list[dict]:
    """The class table of the run's data (see ``SessionParams.classes``)."""
    from ..data.class_tables import ClassTableError, data_class_table, table_rows

    if params.classes:
        try:
            return table_rows(params.classes)
        except ValueError as exc:
            raise TrainingInputError(f"class table: {exc}") from None
    fallback = (base_card or {}).get("classes") or None
    try:
        return data_class_table(folders, fallback=fallback)
    except ClassTableError as exc:
        raise TrainingInputError(str(exc)) from None


def _head_codes(base_card) -> list[int]:
    """Codes of the segmentation head's classes: the starting model's card, else the five
    blood classes (a new network's head; index i learns code i + 1)."""
    from ..data.class_tables import default_table

    rows = (base_card or {}).get("classes") or default_table()
    return [int(r["code"]) for r in rows]


def _base_model(name: str, arch: str):
    from ...io.model_store import ModelNotFoundError, find_model
    from ...models.weights import load_weights

    try:
        entry = find_model(name)
    except ModelNotFoundError as exc:
        raise TrainingInputError(str(exc)) from None
    if entry.architecture != arch:
        raise TrainingInputError(f"model {name!r} is a {entry.architecture!r}, not {arch!r}")
    try:
        state, _ = load_weights(entry.weights)
    except (OSError, ValueError) as exc:
        raise TrainingInputError(f"cannot read the starting model: {exc}") from None
    sha = (entry.card.get("weights") or {}).get("sha256")
    return entry.card, {"name": name, "architecture": arch, "origin": entry.origin,
                        "sha256": sha}, state


def predictor(model):
    """``predict`` of a torch model for the evaluator (:func:`.evaluate.model_predict`)."""
    from ..evaluation.evaluate import model_predict

    return model_predict(model)


def baseline(prepared: Prepared) -> BaselineEvent:
    """Score of the starting weights on the validation images (as the loop scores epochs)."""
    from ...models import create_model
    from ..evaluation.evaluate import evaluate, summary
    from .loop import _score
    from .optim import warm_start

    model = create_model(prepared.config.architecture, **prepared.config.model_config)
    warm_start(model, prepared.initial_state)
    model.eval()
    report = evaluate(predictor(model), prepared.val, model.size_multiple)
    return BaselineEvent(_score(summary(report), not prepared.config.score_without_classes),
                         report)


# ------------------------------------------------------------------------------- run

def checkpoint_dir(name: str) -> Path:
    from ...io.model_store import user_dir

    return user_dir() / "checkpoints" / name


def saved_checkpoint(name: str) -> Path | None:
    """The checkpoint a run called ``name`` left on disk (``last.pt``), or None."""
    # checkpoint.FILENAME; that module imports torch, and this runs on the GUI thread
    path = checkpoint_dir(name) / "last.pt" if name else None
    return path if path is not None and path.is_file() else None


IF_WORSE = ("save", "keep", "ask")


def run(params: SessionParams, layer_sets=(), folders=(), *, should_stop=lambda: False,
        prepared: Prepared | None = None, resume=None, ckpt_dir=None, save: bool = True,
        folder=None, if_worse: str = "save"):
    """Load, train and save; a generator of events returning a :class:`SessionOutcome`.

    Yields :class:`DataEvent`, :class:`.progress.PlanEvent`, :class:`BaselineEvent` and the
    loop's events.  ``prepared``
    (from an earlier outcome) skips loading; ``resume`` continues that run's checkpoint.
    Nothing is saved for a run stopped before its first epoch was complete or stopped by a
    non-finite loss.  ``folder``: where to save (default: the user model folder).
    A fine-tune whose best epoch does not beat its starting model sets ``outcome.worse``
    and a message, and then, by ``if_worse``: "save" saves it (its card notes it),
    "keep" saves nothing (the starting model stays the one to use), "ask" leaves the save
    to :func:`save_pending` (``outcome.pending``), once the user has chosen.
    """
    from .loop import BatchEvent, NoticeEvent, train_steps
    from .session_classifier import classifier_stage, planned_work

    if if_worse not in IF_WORSE:
        raise ValueError(f"if_worse must be one of {IF_WORSE}, not {if_worse!r}")

    if prepared is None:
        prepared = yield from prepare(params, layer_sets, folders)
        for message in prepared.messages:
            yield DataEvent(message, warning=True)
    outcome = SessionOutcome(params.name, None, prepared)
    if should_stop():
        outcome.messages.append("stopped before training started: nothing was saved")
        return outcome
    score_start = bool(prepared.val) and prepared.initial_state is not None and \
        prepared.baseline is None
    cls_batches, cls_epochs = planned_work(prepared, params, MIN_TRAIN_CELLS_FOR_CLASSES) \
        if save else (0, 0)
    yield PlanEvent(prepared.config.epochs, prepared.config.steps_per_epoch, score_start,
                    cls_batches, cls_epochs)
    if score_start:  # a resumed run scores it too, once: its result is compared with it
        yield DataEvent("scoring the starting model on the validation images")
        start = baseline(prepared)
        prepared.baseline = start.score
        yield start
    steps = None
    gen = train_steps(prepared.train, prepared.val, prepared.config,
                      initial_state=prepared.initial_state, should_stop=should_stop,
                      checkpoint_dir=ckpt_dir or checkpoint_dir(params.name), resume=resume)
    try:
        while True:
            try:
                ev = next(gen)
            except StopIteration as stop:
                result = stop.value
                break
            if isinstance(ev, BatchEvent):
                outcome.batches += 1
                steps = ev.steps
            elif isinstance(ev, NoticeEvent) and ev.message.startswith("non-finite"):
                outcome.messages.append(ev.message)
            yield ev
    except ValueError as exc:  # a corrupt or foreign checkpoint, bad settings
        raise TrainingInputError(str(exc)) from None
    finally:
        gen.close()
    outcome.result = result
    if result.stopped == "non-finite loss":
        return outcome
    if result.best_epoch < 1:  # e.g. validation images without any labelled cell
        outcome.messages.append("no epoch could be scored (validation score "
                                f"{result.best_score:.3g}): nothing was saved")
        return outcome
    if result.stopped == "user" and resume is None and outcome.batches < (steps or 1):
        outcome.messages.append(
            f"stopped after {outcome.batches} batch(es), before the first epoch was complete: "
            "no model was saved (Resume continues from the checkpoint)")
        return outcome
    if not save:
        return outcome
    stage = None
    if params.train_classifier:
        stage = yield from classifier_stage(params, prepared, result, should_stop,
                                            MIN_TRAIN_CELLS_FOR_CLASSES)
    outcome.pending = {"result": result, "classifier": stage, "folder": folder,
                       "overwrite": resume is not None}
    outcome.worse = worse_than_start(result, prepared)
    if outcome.worse is not None:
        if if_worse == "ask":
            return outcome
        if if_worse == "keep":
            outcome.pending = None
            outcome.messages.append(f"{outcome.worse.message()}: nothing was saved; keep "
                                    f"using {outcome.worse.base}")
            return outcome
    return save_pending(outcome)


def save_pending(outcome: SessionOutcome) -> SessionOutcome:
    """Save the run that ``run`` left pending (after the user chose to keep a fine-tune
    that is not better than its starting model); sets ``card`` / ``classifier`` or
    ``error``.  Its card notes the comparison."""
    pending, outcome.pending = outcome.pending, None
    if pending is None:
        return outcome
    stage = pending["classifier"]
    try:
        outcome.card = save_model(pending["result"], outcome.prepared, outcome.name,
                                  folder=pending["folder"], overwrite=pending["overwrite"],
                                  classifier=stage, worse=outcome.worse)
        outcome.classifier = stage.name if stage is not None and stage.trained else None
    except ModelFileError as exc:
        outcome.error = str(exc)
        return outcome
    if outcome.worse is not None:
        outcome.messages.append(f"{outcome.worse.message()}; saved as {outcome.name!r} "
                                "all the same (its card says so)")
    return outcome


__all__ = ["BaselineEvent", "DataEvent", "FINETUNE_DEFAULTS", "LayerSet", "ModelFileError",
           "Prepared", "SCRATCH_DEFAULTS", "SessionOutcome", "SessionParams",
           "TrainingInputError", "WorseThanStart", "check_name", "class_codes", "export_model",
           "fine_tune_config", "import_model", "predictor", "prepare", "read_model_file", "run",
           "samples_from_layer_sets", "save_model", "save_pending"]
