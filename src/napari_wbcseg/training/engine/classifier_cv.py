"""Cross-validated classifier training: K fold models, one epoch and one temperature chosen
on out-of-fold cells, and the K models kept together as an ensemble.

Why: an inner selection split of about a hundred cells saturates (103 of 104 right), so it
cannot tell two choices apart.  K folds over the training cells score every one of them
once, out of fold, with a model that never saw it.  The folds are group-aware: all cells of
one image group (one patient or one field) fall in the same fold.  Nothing here looks at a
selection or validation split, so the caller keeps both for later choices and the report.
"""
from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np

from .classifier import (ClassifierResult, classifier_scores, fit_temperature, predict_logits,
                         train_classifier_steps)
from .loop import NoticeEvent

__all__ = ["MAX_FOLDS", "group_folds", "train_cross_validated"]

MAX_FOLDS = 8


def group_folds(cells, k: int, seed: int = 0) -> np.ndarray:
    """Fold index (0..k-1) per cell; every group in one fold, folds of similar size.

    Raises ``ValueError`` when there are fewer groups than folds.
    """
    if type(k) is not int or not 2 <= k <= MAX_FOLDS:
        raise ValueError(f"folds must be an integer in 2..{MAX_FOLDS}, got {k!r}")
    n = len(cells)
    keys = [cells.groups[i] if i < len(cells.groups) and cells.groups[i] else
            (cells.names[i] if i < len(cells.names) else str(i)) for i in range(n)]
    groups = sorted(set(keys))
    if len(groups) < k:
        raise ValueError(f"{k} folds need at least {k} image groups; the training cells "
                         f"come from {len(groups)}")
    rng = np.random.default_rng(seed)
    order = [groups[i] for i in rng.permutation(len(groups))]
    size = {g: 0 for g in groups}
    for key in keys:
        size[key] += 1
    order.sort(key=lambda g: -size[g])  # stable: equal sizes keep the shuffled order
    fill, fold_of = np.zeros(k, np.int64), {}
    for g in order:  # largest groups first, each into the emptiest fold
        f = int(np.argmin(fill))
        fold_of[g] = f
        fill[f] += size[g]
    return np.array([fold_of[key] for key in keys], np.int64)


def _pooled_score(confusions) -> tuple[float, dict]:
    c = np.sum(confusions, 0)
    rows = c.sum(1)
    recall = [c[i, i] / rows[i] for i in range(len(c)) if rows[i]]
    acc = float(np.trace(c) / c.sum()) if c.sum() else float("nan")
    bal = float(np.mean(recall)) if recall else float("nan")
    return (acc + bal) / 2, {"accuracy": acc, "balanced_accuracy": bal}


def train_cross_validated(cells, classes, config, *, folds: int = 4,
                          should_stop=lambda: False):
    """Train ``folds`` models; yields their events, returns a :class:`ClassifierResult`.

    Each fold model trains on the other folds for ``config.epochs`` epochs (no early stop:
    every epoch is scored).  The epoch with the best pooled out-of-fold score
    ((accuracy + balanced accuracy) / 2, as the single-model loop) is chosen for all
    folds; the temperature is fitted on the pooled out-of-fold logits of that epoch.  The
    result's model is the ensemble of the fold models at that epoch.  If stopped early,
    the result has ``best_epoch`` 0 and holds no trained ensemble.
    """
    import torch

    from ...models.cell_classifier import create_classifier

    fold = group_folds(cells, folds, config.seed)
    t0 = time.perf_counter()
    cfg = type(config)(**{**asdict(config), "patience": config.epochs})
    states, confusions, first = [], [], None
    for f in range(folds):
        train = cells.subset(np.flatnonzero(fold != f))
        held = cells.subset(np.flatnonzero(fold == f))
        yield NoticeEvent(f"fold {f + 1} of {folds}: training on {len(train)} cells, "
                          f"scoring {len(held)} out of fold")
        kept = []  # (weights, report on the held-out fold) per epoch
        result = yield from train_classifier_steps(train, held, classes, cfg,
                                                   should_stop=should_stop, keep_states=kept)
        first = result if first is None else first
        if result.stopped in ("user", "non-finite loss") or len(kept) < cfg.epochs:
            return ClassifierResult(result.model, 0, float("nan"), {}, 1.0, [], result.stopped,
                                    time.perf_counter() - t0, {**asdict(config), "folds": folds})
        states.append([state for state, _ in kept])
        confusions.append([np.asarray(report["confusion"]) for _, report in kept])
    history = []
    for e in range(cfg.epochs):
        score, parts = _pooled_score([c[e] for c in confusions])
        history.append({"epoch": e + 1, "score": score, **parts})
    best = max(range(cfg.epochs), key=lambda e: (history[e]["score"], -e))
    member = create_classifier(config.architecture, num_classes=len(classes),
                               crop_size=config.crop_size)
    member = member.to(memory_format=torch.channels_last)
    member.precision = first.model.precision
    logits = np.zeros((len(cells), len(classes)), np.float32)
    for f in range(folds):
        member.load_state_dict(states[f][best])
        idx = np.flatnonzero(fold == f)
        logits[idx] = predict_logits(member, cells.crops[idx])
    temperature = fit_temperature(logits, cells.labels)
    report = classifier_scores(logits, cells, len(classes))
    report["out_of_fold"] = {"folds": folds, "cells_per_fold": np.bincount(
        fold, minlength=folds).tolist()}
    model = create_classifier(config.architecture, num_classes=len(classes),
                              crop_size=config.crop_size, members=folds)
    model.load_state_dict({**{f"nets.{f}.{k[len('net.'):]}": v for f in range(folds)
                              for k, v in states[f][best].items() if k.startswith("net.")},
                           "temperature": first.model.temperature.new_tensor(temperature)})
    model.precision = first.model.precision
    model = model.to(memory_format=torch.channels_last).eval()
    return ClassifierResult(model, best + 1, history[best]["score"], report, temperature,
                            history, "finished", time.perf_counter() - t0,
                            {**asdict(config), "patience": cfg.patience, "folds": folds})
