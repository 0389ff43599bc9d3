"""Validation of a network on labelled samples, per dataset (source).

The region rules (:func:`regions`, :func:`semantic_prediction`, :func:`cell_type_votes`)
live here only; :mod:`.report` (the papers' tables) imports them, so the loop's Dice and
``napari-wbcseg evaluate``'s Dice are the same numbers.

Samples are resampled to the network's native scale and predicted whole (padded to the
size multiple); the probabilities are resized back to the sample's own pixels, as
Segment resizes them for the user (:func:`predict_at_own_resolution`), and scored
against the sample's own labels where they are known:
whole-cell Dice where the target is 0..3, nucleus / cytoplasm Dice where it is
0..2, and the cell type of each annotated cell from the class probabilities
averaged over its true area.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from ...core.metrics import dice
from ...core.resize import resize_probabilities
from ..data.augment import resample_to_native


def predict_sample(predict, image: np.ndarray, multiple: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (3 + K, H, W) probabilities.

    ``predict`` maps ``(1, 3, h, w)`` float32 pixel values **0..255** (the one input scale
    of every ``predict`` here: a :class:`~napari_wbcseg.inference.predictor.LoadedModel`
    itself, or :func:`model_predict` of a torch network) to probabilities."""
    h, w = image.shape[:2]
    ph, pw = -h % multiple, -w % multiple
    x = image.astype(np.float32).transpose(2, 0, 1)[None]
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect")
    return predict(x)[0, :, :h, :w]


def predict_at_own_resolution(predict, sample, multiple: int) -> np.ndarray:
    """(3 + K, H, W) probabilities of ``sample`` at its own H x W: predicted at the native
    scale, then resized back bilinearly (the papers score at the images' resolution, and
    the user's masks are made there; scoring nearest-neighbour-resampled labels would
    count the resampling's jagged edges as errors)."""
    native = resample_to_native(sample)
    probs = predict_sample(predict, native.image, multiple)
    return resize_probabilities(probs, sample.shape)


def semantic_prediction(probs: np.ndarray, cell_threshold: float = 0.5) -> np.ndarray:
    """0/1/2 map decided as post-processing does: cell where P(cyto) + P(nucleus) >= 0.5,
    nucleus where "nucleus" is the most likely of the three classes inside the cell."""
    cell = probs[1] + probs[2] >= cell_threshold
    sem = np.where(cell, 1, 0).astype(np.uint8)
    sem[cell & (probs[:3].argmax(0) == 2)] = 2
    return sem


def regions(sem_pred: np.ndarray, semantic: np.ndarray):
    """The one region rule of every evaluator: ``(region, predicted mask, true mask, valid
    pixels)`` for each region the labels can score (the truth has pixels of it there).

    Whole cell where the label is 0..3; nucleus / cytoplasm where it is 0..2, and only in
    images without whole-cell-only masks (BCISC's code 3 says nothing of the parts)."""
    known_cell = semantic <= 3
    candidates = [("cell", sem_pred > 0, (semantic >= 1) & known_cell, known_cell)]
    if (semantic[known_cell] != 3).all():
        known_part = semantic <= 2
        candidates += [("nucleus", sem_pred == 2, semantic == 2, known_part),
                       ("cytoplasm", sem_pred == 1, semantic == 1, known_part)]
    for region, pred, truth, valid in candidates:
        if truth[valid].any():
            yield region, pred, truth, valid


def cell_type_votes(probs: np.ndarray, cell_class: np.ndarray, n_classes: int = 5):
    """``[(true code, predicted code)]`` per cell type present in the image: the argmax of
    the class probabilities averaged over the pixels of that type."""
    out = []
    for code in np.unique(cell_class[(cell_class >= 1) & (cell_class <= n_classes)]):
        guess = int(probs[3:, cell_class == code].mean(axis=1).argmax()) + 1
        out.append((int(code), guess))
    return out


def score_sample(probs: np.ndarray, semantic: np.ndarray, cell_class: np.ndarray) -> dict:
    """``{region}_dice`` per scorable region, ``class_correct`` / ``class_total``."""
    sem = semantic_prediction(probs)
    out = {f"{region}_dice": dice(pred, truth, valid)
           for region, pred, truth, valid in regions(sem, semantic)}
    votes = cell_type_votes(probs, cell_class)
    if votes:
        out["class_correct"] = sum(t == g for t, g in votes)
        out["class_total"] = len(votes)
    return out


def evaluate(predict, samples, multiple: int = 16) -> dict[str, dict[str, float]]:
    """Mean per-image scores per source, plus ``class_accuracy`` over cells, and ``n``."""
    per_source: dict[str, list[dict]] = defaultdict(list)
    for s in samples:
        per_source[s.source].append(score_sample(
            predict_at_own_resolution(predict, s, multiple), s.semantic, s.cell_class))
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


def model_predict(model):
    """``predict`` for :func:`evaluate` from a network of :mod:`..models` (torch, lazily):
    0..255 pixel values in, as :class:`~napari_wbcseg.inference.predictor.LoadedModel`
    takes them; the networks themselves take 0..1."""
    import torch

    def predict(x):
        x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32) / np.float32(255.0))
        return np.concatenate([o.numpy() for o in model.predict(x).values()], 1)

    return predict


def score_validation(model, samples, preprocess: str = "none") -> dict:
    """:func:`evaluate` report of ``model`` on ``samples`` after the run's preprocessing
    (the loop preprocesses its validation images the same way)."""
    from ..data.sampling import preprocess_samples

    samples = preprocess_samples(list(samples), preprocess)
    return evaluate(model_predict(model), samples, model.size_multiple) if samples else {}
