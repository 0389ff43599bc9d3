"""Evaluation in the papers' terms: per-dataset tables of region metrics and cell types.

Region metrics (Lu et al., Fan et al.): Precision, Dice, two-class mIoU,
misclassification error (ME), false-positive rate (FPR) and false-negative rate (FNR),
for the whole cell, the nucleus and the cytoplasm, as per-image means over the pixels
whose label is known (the rules are :func:`.evaluate.regions`, shared with the training
loop).  Cell types: accuracy over annotated cells and a confusion matrix
(each cell's class = argmax of the class probabilities averaged over its true area).

Five-class pixel segmentation (Zhu et al. 2023): every pixel gets a class, background (0)
or one of the five cell types (1..5): predicted cell pixels (:func:`semantic_prediction`
> 0) take the argmax of the class probabilities, the rest is background; the truth is
``cell_class``, and pixels of unknown type (255, incl. whole cells whose type is unknown)
are left out.  One confusion matrix is pooled over all pixels of a dataset (Zhu et al.
fill "a confusion matrix" and do not say they average per image), and per class (one
against the rest) P, R, F1, IoU and accuracy (their Eqs. 7-11) follow from it, with mIoU
the mean IoU over the six classes including background (their Table 1 IoUs of the five
cell types average 90.33%, below their 91.89% mIoU, which needs a sixth, background IoU
of 99.70%) and, for reference, over the five cell types alone.
numpy only; the caller supplies ``predict``.
"""
from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from ...core import metrics as m
from ...io.atomic import atomic_path
from .evaluate import cell_type_votes, predict_at_own_resolution, regions, semantic_prediction

REGION_METRICS = {
    "precision": m.precision, "dice": m.dice, "miou": m.mean_iou_two_class,
    "me": m.misclassification_error, "fpr": m.false_positive_rate,
    "fnr": m.false_negative_rate,
}
REGIONS = ("cell", "nucleus", "cytoplasm")
CLASS_NAMES = ("neutrophil", "lymphocyte", "monocyte", "eosinophil", "basophil")
PIXEL_CLASS_NAMES = ("background",) + CLASS_NAMES
PIXEL_CLASS_METRICS = ("precision", "recall", "f1", "iou", "accuracy")


def pixel_class_maps(probs: np.ndarray, semantic: np.ndarray, cell_class: np.ndarray,
                     n_classes: int = 5):
    """(predicted class map, true class map, valid pixels) for the five-class metrics."""
    pred = np.where(semantic_prediction(probs) > 0,
                    probs[3:3 + n_classes].argmax(axis=0) + 1, 0)
    valid = (cell_class <= n_classes) & (semantic != 255)
    return pred, cell_class.astype(np.int64), valid


def pixel_class_summary(confusion) -> dict:
    """Per-class scores, mIoU (with and without background) and pixel accuracy."""
    confusion = np.asarray(confusion)
    scores = m.per_class_scores(confusion)
    return {
        "confusion": confusion.tolist(),
        "per_class": {name: {k: float(scores[k][i]) for k in PIXEL_CLASS_METRICS}
                      for i, name in enumerate(PIXEL_CLASS_NAMES[:len(confusion)])},
        "miou": m.mean_iou(confusion),
        "miou_cell_types": m.mean_iou(confusion, range(1, len(confusion))),
        "accuracy": m.pixel_accuracy(confusion),
    }


def score_image(probs: np.ndarray, semantic: np.ndarray, cell_class: np.ndarray,
                n_classes: int = 5) -> dict:
    """Region metrics, (true, predicted) cell classes and the five-class pixel confusion
    (``pixel_confusion``, rows true, columns predicted, background first) of one image."""
    sem_pred = semantic_prediction(probs)
    out: dict = {"regions": {}, "cells": []}
    pred_cls, true_cls, valid = pixel_class_maps(probs, semantic, cell_class, n_classes)
    out["pixel_confusion"] = m.confusion_matrix(pred_cls, true_cls, n_classes + 1, valid)
    for region, pred, truth, valid in regions(sem_pred, semantic):  # the shared rule
        out["regions"][region] = {k: f(pred, truth, valid) for k, f in REGION_METRICS.items()}
    out["cells"] = cell_type_votes(probs, cell_class, n_classes)
    return out


def evaluate_datasets(predict, samples, multiple: int, *, on_sample=None) -> dict:
    """Per source: mean region metrics, cell-type accuracy and confusion matrix, and the
    five-class pixel metrics (``pixel_classes``) from the confusion pooled over the source's
    pixels, where the source has pixels of a known cell type."""
    per_source: dict[str, list[dict]] = defaultdict(list)
    for i, s in enumerate(samples):
        probs = predict_at_own_resolution(predict, s, multiple)
        per_source[s.source].append(score_image(probs, s.semantic, s.cell_class))
        if on_sample is not None:
            on_sample(i + 1, len(samples))
    report = {}
    for source, scores in sorted(per_source.items()):
        row: dict = {"images": len(scores), "regions": {}}
        for region in REGIONS:
            vals = [sc["regions"][region] for sc in scores if region in sc["regions"]]
            if vals:
                row["regions"][region] = {k: float(np.mean([v[k] for v in vals]))
                                          for k in REGION_METRICS}
        cells = [c for sc in scores for c in sc["cells"]]
        if cells:
            confusion = np.zeros((len(CLASS_NAMES), len(CLASS_NAMES)), int)
            for true, guess in cells:
                confusion[true - 1, guess - 1] += 1
            row["cell_type_accuracy"] = float(np.trace(confusion) / confusion.sum())
            row["confusion"] = confusion.tolist()
        pixels = sum(sc["pixel_confusion"] for sc in scores)
        if pixels[1:].sum() > 0:
            row["pixel_classes"] = pixel_class_summary(pixels)
        report[source] = row
    return report


def format_report(report: dict) -> str:
    """One table per dataset in the papers' layout (metrics in %, as they print them)."""
    lines = []
    for source, row in report.items():
        lines.append(f"{source} ({row['images']} images)")
        lines.append(f"  {'region':10}" + "".join(f"{k.upper():>10}" for k in REGION_METRICS))
        for region, vals in row["regions"].items():
            lines.append(f"  {region:10}" + "".join(f"{100 * v:>10.2f}" for v in vals.values()))
        if "confusion" in row:
            lines.append(f"  cell-type accuracy {100 * row['cell_type_accuracy']:.2f}% "
                         f"over {int(np.sum(row['confusion']))} cells; confusion "
                         "(rows true, columns predicted):")
            lines.append("  " + " " * 12 + "".join(f"{n[:5]:>7}" for n in CLASS_NAMES))
            for name, counts in zip(CLASS_NAMES, row["confusion"]):
                lines.append(f"  {name:12}" + "".join(f"{c:>7}" for c in counts))
        if "pixel_classes" in row:
            lines += _format_pixel_classes(row["pixel_classes"])
        lines.append("")
    return "\n".join(lines)


def _pct(v: float, width: int = 10) -> str:
    return f"{'-':>{width}}" if v != v else f"{100 * v:>{width}.2f}"  # NaN: class not seen


def _format_pixel_classes(pc: dict) -> list[str]:
    lines = [f"  five-class pixel segmentation (Zhu et al.; pooled over pixels): "
             f"mIoU {_pct(pc['miou'], 0)}% (background + 5 types), "
             f"{_pct(pc['miou_cell_types'], 0)}% (5 types), "
             f"pixel accuracy {_pct(pc['accuracy'], 0)}%"]
    lines.append(f"  {'class':12}" + "".join(f"{k.upper():>10}" for k in PIXEL_CLASS_METRICS))
    for name, vals in pc["per_class"].items():
        lines.append(f"  {name:12}" + "".join(_pct(vals[k]) for k in PIXEL_CLASS_METRICS))
    return lines


def write_csv(report: dict, path) -> Path:
    """Long format: dataset, region, metric, value (fractions, not %)."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["dataset", "region", "metric", "value"])
        for source, row in report.items():
            for region, vals in row["regions"].items():
                for k, v in vals.items():
                    w.writerow([source, region, k, f"{v:.6f}"])
            if "cell_type_accuracy" in row:
                w.writerow([source, "cell type", "accuracy", f"{row['cell_type_accuracy']:.6f}"])
                for i, counts in enumerate(row["confusion"]):
                    for j, c in enumerate(counts):
                        w.writerow([source, "cell type", f"{CLASS_NAMES[i]}->{CLASS_NAMES[j]}", c])
            if "pixel_classes" in row:
                pc = row["pixel_classes"]
                for k in ("miou", "miou_cell_types", "accuracy"):
                    w.writerow([source, "five-class", k, f"{pc[k]:.6f}"])
                for name, vals in pc["per_class"].items():
                    for k in PIXEL_CLASS_METRICS:
                        w.writerow([source, f"five-class {name}", k, f"{vals[k]:.6f}"])
                for i, counts in enumerate(pc["confusion"]):
                    for j, c in enumerate(counts):
                        w.writerow([source, "five-class pixels",
                                    f"{PIXEL_CLASS_NAMES[i]}->{PIXEL_CLASS_NAMES[j]}", c])
    return path
