"""Validation of a network on labelled samples, per dataset (source).

Samples are resampled to the network's native scale, predicted whole (padded to
the size multiple) and scored where their labels are known:
whole-cell Dice where the target is 0..3, nucleus / cytoplasm Dice where it is
0..2, and the cell type of each annotated cell from the class probabilities
averaged over its true area.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..core.metrics import dice
from .augment import resample_to_native


def predict_sample(predict, image: np.ndarray, multiple: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (3 + K, H, W) probabilities; ``predict`` maps (1,3,h,w) float 0..1."""
    h, w = image.shape[:2]
    ph, pw = -h % multiple, -w % multiple
    x = image.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect")
    return predict(x)[0, :, :h, :w]


def semantic_prediction(probs: np.ndarray, cell_threshold: float = 0.5) -> np.ndarray:
    """0/1/2 map decided as post-processing does: cell where P(cyto) + P(nucleus) >= 0.5,
    nucleus where "nucleus" is the most likely of the three classes inside the cell."""
    cell = probs[1] + probs[2] >= cell_threshold
    sem = np.where(cell, 1, 0).astype(np.uint8)
    sem[cell & (probs[:3].argmax(0) == 2)] = 2
    return sem


def score_sample(probs: np.ndarray, semantic: np.ndarray, cell_class: np.ndarray) -> dict:
    sem = semantic_prediction(probs)
    out = {}
    known_cell = semantic <= 3
    if (semantic[known_cell] > 0).any():
        out["cell_dice"] = dice(sem > 0, (semantic >= 1) & (semantic <= 3), known_cell)
    known_part = semantic <= 2
    if (semantic[known_part] > 0).any() and (semantic[known_cell] != 3).all():
        out["nucleus_dice"] = dice(sem == 2, semantic == 2, known_part)
        out["cytoplasm_dice"] = dice(sem == 1, semantic == 1, known_part)
    labelled = (cell_class >= 1) & (cell_class < 255)
    if labelled.any():
        codes = np.unique(cell_class[labelled])
        correct = [int(probs[3:, cell_class == c].mean(axis=1).argmax()) + 1 == c for c in codes]
        out["class_correct"], out["class_total"] = sum(correct), len(correct)
    return out


def evaluate(predict, samples, multiple: int = 16) -> dict[str, dict[str, float]]:
    """Mean per-image scores per source, plus ``class_accuracy`` over cells, and ``n``."""
    per_source: dict[str, list[dict]] = defaultdict(list)
    for s in samples:
        native = resample_to_native(s)
        per_source[s.source].append(score_sample(
            predict_sample(predict, native.image, multiple), native.semantic, native.cell_class))
    report = {}
    for source, scores in sorted(per_source.items()):
        row: dict[str, float] = {"n": len(scores)}
        for key in ("cell_dice", "nucleus_dice", "cytoplasm_dice"):
            vals = [sc[key] for sc in scores if key in sc]
            if vals:
                row[key] = float(np.mean(vals))
        total = sum(sc.get("class_total", 0) for sc in scores)
        if total:
            row["class_accuracy"] = float(sum(sc.get("class_correct", 0) for sc in scores) / total)
        report[source] = row
    return report


def summary(report: dict[str, dict[str, float]]) -> dict[str, float]:
    """Sample-weighted means over sources of each metric (for early stopping and cards)."""
    out = {}
    for key in ("cell_dice", "nucleus_dice", "cytoplasm_dice", "class_accuracy"):
        pairs = [(row[key], row["n"]) for row in report.values() if key in row]
        if pairs:
            out[key] = float(sum(v * n for v, n in pairs) / sum(n for _, n in pairs))
    return out
