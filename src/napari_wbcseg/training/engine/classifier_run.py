"""One classifier training run, end to end: split, cells, training, one validation score, save.

Shared by ``napari-wbcseg train-classifier`` and ``scripts/train_classifier.py``.  The
split is :func:`.protocol.three_way_split`: the classifier trains on the inner-train
part, picks its epoch and temperature on the inner-selection part, and the validation
part is scored once at the end (``selection_free`` in the card).
"""
from __future__ import annotations

import datetime as _dt
import json
import time
from pathlib import Path

import numpy as np

__all__ = ["MIN_TRAIN_CELLS", "ClassifierRun", "run_classifier_training", "write_classifier"]

#: fewer labelled training cells than this teach a classifier nothing worth installing
MIN_TRAIN_CELLS = 20


class ClassifierRun:
    """Progress callbacks are optional; ``log`` gets one-line messages."""

    def __init__(self, log=print, on_event=None):
        self.log, self.on_event = log, on_event


def segmenter_predict(model_name, device: str = "cpu"):
    """(predict callable for collect_cells, size multiple, model name) of a segmenter."""
    from ...inference.predictor import load_model

    net = load_model(model_name, device)
    return net, net.size_multiple, net.entry.name  # LoadedModel takes 0..255, as predict does


def run_classifier_training(samples, spec, classes, config, *, segmenter=None, out_dirs=(),
                            name="cell-classifier", log=print, on_event=None,
                            should_stop=lambda: False, initial_state=None, notes="",
                            folds=1):
    """Train and save a classifier; returns ``(card path, result, validation report)``.

    ``folds`` > 1: cross-validated on the inner-train cells (:mod:`.classifier_cv`), an
    ensemble of the fold models; the inner selection split is then only scored (for the
    card and the later head-weight choice), never trained or chosen on.
    """
    from ...core.batch import run_to_end
    from ..data.cell_data import collect_cells
    from .classifier import (classifier_scores, mean_nll, predict_logits,
                             train_classifier_steps)
    from ..evaluation.protocol import three_way_split

    codes = [int(c["code"]) for c in classes]
    inner, select, val = three_way_split(samples, spec)
    predict, multiple, seg_name = (None, 32, "truth") if segmenter is None else \
        segmenter_predict(segmenter)
    t0 = time.perf_counter()
    cells = {part: collect_cells(group, codes, predict=predict, multiple=multiple,
                                 size=config.crop_size)
             for part, group in (("train", inner), ("selection", select), ("val", val))}
    counts = {part: _per_class(c.labels, len(codes)) for part, c in cells.items()}
    log(f"cells ({'masks from ' + seg_name}) in {time.perf_counter() - t0:.0f} s: "
        f"{json.dumps(counts)}")
    from ..data.cell_data import class_table_of

    class_table_of(cells["train"], classes)  # no cell / one class: the clearer message first
    if len(cells["train"]) < MIN_TRAIN_CELLS:
        raise ValueError(f"only {len(cells['train'])} labelled training cells were found; a "
                         f"classifier needs at least {MIN_TRAIN_CELLS} (label more cells)")
    for folder in out_dirs:  # fail before training, not after
        if Path(folder).exists() and not Path(folder).is_dir():
            raise ValueError(f"{folder} exists and is not a folder")
    if folds > 1:
        if initial_state is not None:
            raise ValueError("cross-validation (folds > 1) trains from ImageNet; it cannot "
                             "start from a given classifier")
        from .classifier_cv import train_cross_validated

        steps = train_cross_validated(cells["train"], classes, config, folds=folds,
                                      should_stop=should_stop)
    else:
        steps = train_classifier_steps(cells["train"], cells["selection"], classes, config,
                                       initial_state=initial_state, should_stop=should_stop)
    result = run_to_end(steps, on_event)
    if result.best_epoch < 1:
        raise ValueError(f"training stopped ({result.stopped}) before its first epoch ended: "
                         "nothing was saved")
    report = classifier_scores(predict_logits(result.model, cells["val"].crops), cells["val"],
                               len(codes)) if len(cells["val"]) else {}
    if report:
        report["calibration"] = _calibration(result, cells["val"])
        report["selection_free"] = True
    data = {"split_spec": spec.to_card(), "masks_from": seg_name, "cells": counts}
    if folds > 1 and len(cells["selection"]):  # scored, not chosen on
        logits = predict_logits(result.model, cells["selection"].crops)
        data["selection_split"] = {**classifier_scores(logits, cells["selection"], len(codes)),
                                   "nll": mean_nll(logits / result.temperature,
                                               cells["selection"].labels)}
    from ...io.classifier_store import check_name

    check_name(name)
    cards = [write_classifier(folder, name, result, classes=classes, data=data,
                              validation=report, notes=notes) for folder in out_dirs]
    return (cards[0] if cards else None), result, report


def _per_class(labels, k) -> list[int]:
    return np.bincount(np.asarray(labels, np.int64), minlength=k).tolist()


def _calibration(result, cells) -> dict:
    """Expected calibration error (10 bins) and accuracy / coverage at confidence 0.5."""
    import torch

    from .classifier import predict_logits

    logits = predict_logits(result.model, cells.crops)
    p = torch.softmax(torch.from_numpy(logits) / result.temperature, 1).numpy()
    conf, pred = p.max(1), p.argmax(1)
    right = pred == cells.labels
    bins = np.minimum((conf * 10).astype(int), 9)
    ece = sum(abs(right[bins == b].mean() - conf[bins == b].mean()) * (bins == b).mean()
              for b in range(10) if (bins == b).any())
    sure = conf >= 0.5
    return {"ece": float(ece), "coverage_at_0.5": float(sure.mean()),
            "accuracy_at_0.5": float(right[sure].mean()) if sure.any() else float("nan")}


def write_classifier(folder, name, result, *, classes, data, validation, notes="") -> Path:
    """``<folder>/<name>.safetensors`` + card (``"kind": "cell-classifier"``), atomically."""
    from ...io.atomic import write_text_atomic
    from ...io.fetch import sha256_of
    from ...models.weights import save_weights
    from .bundle import hardware

    folder = Path(folder)
    weights = save_weights(result.model, folder / f"{name}.safetensors", {"name": name},
                           dtype="float16")
    card = {
        "kind": "cell-classifier", "name": name, "architecture": result.model.architecture,
        "config": result.model.config,
        "parameters": int(sum(p.numel() for p in result.model.parameters())),
        "classes": list(classes), "input": "5 x S x S crop: RGB 0..1, nucleus and cytoplasm "
        "masks of the cell (core/cell_crops.py), at the native scale",
        "native_cell_diameter_px": 80.0, "temperature": result.temperature,
        "default_threshold": 0.5,
        "training": {"data": data, "settings": result.config, "best_epoch": result.best_epoch,
                     "stopped": result.stopped, "seconds": round(result.seconds, 1),
                     "hardware": hardware(), "date": _dt.date.today().isoformat()},
        "selection": result.selection, "validation": validation,
        "weights": {"file": weights.name, "sha256": sha256_of(weights),
                    "format": "safetensors", "storage_dtype": "float16"},
        "notes": notes,
    }
    path = folder / f"{name}.json"
    write_text_atomic(path, json.dumps(card, indent=2) + "\n")
    return path
