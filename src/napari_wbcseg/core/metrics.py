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
