"""Segmentation metrics from the papers, on boolean masks (numpy only).

Each function takes a prediction and a ground truth of the same shape and an
optional ``valid`` mask of pixels that count (unknown pixels are left out).
Empty-versus-empty counts as a perfect score, not as NaN.
"""
from __future__ import annotations

import numpy as np


def _counts(pred, truth, valid=None):
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction {pred.shape} and truth {truth.shape} differ in shape")
    if valid is not None:
        valid = np.asarray(valid, bool)
        pred, truth = pred & valid, truth & valid
        n = int(valid.sum())
    else:
        n = pred.size
    tp = int((pred & truth).sum())
    fp = int(pred.sum()) - tp
    fn = int(truth.sum()) - tp
    return tp, fp, fn, n - tp - fp - fn


def dice(pred, truth, valid=None) -> float:
    tp, fp, fn, _ = _counts(pred, truth, valid)
    return 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def iou(pred, truth, valid=None) -> float:
    tp, fp, fn, _ = _counts(pred, truth, valid)
    return 1.0 if tp + fp + fn == 0 else tp / (tp + fp + fn)


def precision(pred, truth, valid=None) -> float:
    tp, fp, _, _ = _counts(pred, truth, valid)
    return 1.0 if tp + fp == 0 else tp / (tp + fp)


def recall(pred, truth, valid=None) -> float:
    tp, _, fn, _ = _counts(pred, truth, valid)
    return 1.0 if tp + fn == 0 else tp / (tp + fn)


def mean_iou_two_class(pred, truth, valid=None) -> float:
    """mIoU over foreground and background, as Lu et al. and Fan et al. define it."""
    tp, fp, fn, tn = _counts(pred, truth, valid)
    fg = 1.0 if tp + fp + fn == 0 else tp / (tp + fp + fn)
    bg = 1.0 if tn + fp + fn == 0 else tn / (tn + fp + fn)
    return (fg + bg) / 2


def misclassification_error(pred, truth, valid=None) -> float:
    tp, fp, fn, tn = _counts(pred, truth, valid)
    total = tp + fp + fn + tn
    return 0.0 if total == 0 else (fp + fn) / total


def false_positive_rate(pred, truth, valid=None) -> float:
    _, fp, _, tn = _counts(pred, truth, valid)
    return 0.0 if fp + tn == 0 else fp / (fp + tn)


def false_negative_rate(pred, truth, valid=None) -> float:
    tp, _, fn, _ = _counts(pred, truth, valid)
    return 0.0 if tp + fn == 0 else fn / (tp + fn)


# --- multi-class (cell-type) pixel metrics, Zhu et al. 2023 ------------------------------
#
# Zhu et al. score their five-class leukocyte segmentation per class from a confusion
# matrix (their Eqs. 7-11: P, R, F1, IoU, Acc) and "if the IoU obtained from each class of
# prediction is summed and averaged, mean intersection over union (mIoU) will be
# obtained".  Unlike the binary functions above, a class that is absent from both the
# truth and the prediction is not scored (NaN) and is left out of the mean, so that a
# missing basophil does not count as a perfect class.


def confusion_matrix(pred, truth, n_classes: int, valid=None) -> np.ndarray:
    """(n_classes, n_classes) pixel counts, rows = true class, columns = predicted class.

    ``pred`` and ``truth`` hold integer class indices ``0 .. n_classes - 1``; pixels
    outside ``valid`` (or with a truth outside that range) are not counted.
    """
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction {pred.shape} and truth {truth.shape} differ in shape")
    keep = (truth >= 0) & (truth < n_classes)
    if valid is not None:
        keep &= np.asarray(valid, bool)
    p, t = pred[keep].astype(np.int64), truth[keep].astype(np.int64)
    if p.size and (p.min() < 0 or p.max() >= n_classes):
        raise ValueError(f"predicted classes must lie in 0..{n_classes - 1}")
    return np.bincount(t * n_classes + p, minlength=n_classes ** 2).reshape(n_classes, n_classes)


def per_class_scores(confusion) -> dict[str, np.ndarray]:
    """Per class (one against the rest): precision, recall, f1, iou and accuracy.

    Accuracy is Zhu et al.'s Eq. 11, (TP + TN) / all pixels, for the class's own
    one-against-rest split.  A class seen in neither truth nor prediction gets NaN
    everywhere; a class seen in only one of them gets 0 for the ratios whose
    denominator is empty (it was entirely missed, or entirely hallucinated).
    """
    c = np.asarray(confusion, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"confusion matrix must be square, got {c.shape}")
    total = c.sum()
    tp = np.diag(c)
    fp = c.sum(axis=0) - tp
    fn = c.sum(axis=1) - tp
    tn = total - tp - fp - fn
    seen = tp + fp + fn > 0

    def ratio(num, den):
        out = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
        return np.where(seen, out, np.nan)

    precision_ = ratio(tp, tp + fp)
    recall_ = ratio(tp, tp + fn)
    return {
        "precision": precision_,
        "recall": recall_,
        "f1": ratio(2 * tp, 2 * tp + fp + fn),  # = 2PR / (P + R) where both are defined
        "iou": ratio(tp, tp + fp + fn),
        "accuracy": np.where(seen, (tp + tn) / total if total else np.nan, np.nan),
    }


def mean_iou(confusion, classes=None) -> float:
    """Mean of the per-class IoU over ``classes`` (default: all), classes never seen left out."""
    iou_ = per_class_scores(confusion)["iou"]
    if classes is not None:
        iou_ = iou_[list(classes)]
    iou_ = iou_[~np.isnan(iou_)]
    return float(iou_.mean()) if iou_.size else float("nan")


def pixel_accuracy(confusion) -> float:
    """Fraction of counted pixels whose class is right (trace over total)."""
    c = np.asarray(confusion, dtype=np.float64)
    total = c.sum()
    return float(np.trace(c) / total) if total else float("nan")
