"""Training the per-cell classifier: a generator of events, like the segmentation loop.

Class-balanced sampling (every class equally often, whatever its frequency), strong
geometric and stain augmentation of the crops, label smoothing, AdamW with a one-cycle
schedule, bf16 autocast + channels-last where the CPU has it.  The best epoch and the
softmax temperature (calibration) are chosen on the ``select`` cells, which must come
from an inner split of the training data; nothing here looks at a validation split.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from ..data.cell_data import CellSet, class_table_of
from .loop import BatchEvent, EpochEvent, NoticeEvent, settings_from_dict

__all__ = ["ClassifierConfig", "ClassifierResult", "augment_crops", "classifier_scores",
           "fit_temperature", "mean_nll", "predict_logits", "train_classifier_steps"]


@dataclass(frozen=True)
class ClassifierConfig:
    architecture: str = "cell-classifier-lite0"
    crop_size: int = 128
    epochs: int = 12
    steps_per_epoch: int = 50
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    imagenet: bool = True
    patience: int = 5
    seed: int = 0
    precision: str = "auto"

    @classmethod
    def from_dict(cls, values: dict) -> "ClassifierConfig":
        return settings_from_dict(cls, values, "classifier")


@dataclass
class ClassifierResult:
    model: object
    best_epoch: int
    best_score: float
    selection: dict
    temperature: float
    history: list
    stopped: str
    seconds: float
    config: dict


def augment_crops(crops: np.ndarray, rng) -> np.ndarray:
    """Random rotation (any angle), flip, +-10% scale, +-6 px shift, stain and brightness
    jitter, and a 1-2 px grow or shrink of the masks (segmentation is never exact)."""
    import cv2

    n, c, s, _ = crops.shape
    out = np.empty((n, c, s, s), np.float32)
    for i in range(n):
        img = crops[i].transpose(1, 2, 0)
        angle, zoom = rng.uniform(0, 360), math.exp(rng.uniform(-0.1, 0.1))
        M = cv2.getRotationMatrix2D((s / 2, s / 2), angle, zoom)
        M[:, 2] += rng.uniform(-6, 6, 2)
        img = cv2.warpAffine(img, M, (s, s), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT)
        if rng.random() < 0.5:
            img = img[:, ::-1]
        x = img.astype(np.float32) / 255.0
        rgb = x[..., :3]
        gain = rng.uniform(0.9, 1.1, 3) * rng.uniform(0.85, 1.15)  # stain + exposure
        mean = rgb.mean()
        rgb = (rgb - mean) * rng.uniform(0.8, 1.2) + mean  # contrast
        rgb = np.clip(rgb * gain + rng.uniform(-0.05, 0.05), 0, 1) ** rng.uniform(0.8, 1.25)
        masks = x[..., 3:]
        r = int(rng.integers(-2, 3))
        if r:
            k = np.ones((2 * abs(r) + 1,) * 2, np.uint8)
            masks = (cv2.dilate if r > 0 else cv2.erode)(masks, k).reshape(s, s, 2)
        out[i] = np.concatenate([rgb, masks], -1).transpose(2, 0, 1)
    return out


def predict_logits(model, crops: np.ndarray, batch: int = 128, tta: bool = True) -> np.ndarray:
    """(N, K) logits (mean over the crop and its mirror image with ``tta``)."""
    import torch

    from ...inference.precision import autocast

    was = model.training
    model.eval()
    out = []
    try:
        with torch.inference_mode(), autocast(model.precision):
            for i in range(0, len(crops), batch):
                x = torch.from_numpy(crops[i:i + batch].astype(np.float32) / 255.0)
                x = x.contiguous(memory_format=torch.channels_last)
                logits = model(x).float()
                if tta:
                    logits = (logits + model(torch.flip(x, dims=[3])).float()) / 2
                out.append(logits.numpy())
    finally:
        model.train(was)
    return np.concatenate(out) if out else np.zeros((0, model.num_classes), np.float32)


def classifier_scores(logits: np.ndarray, cells: CellSet, num_classes: int) -> dict:
    """Accuracy overall and per source, recall per class, balanced accuracy, confusion."""
    pred = logits.argmax(1) if len(logits) else np.zeros(0, np.int64)
    truth = cells.labels
    confusion = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(confusion, (truth, pred), 1)
    rows = confusion.sum(1)
    recall = {int(k): float(confusion[k, k] / rows[k]) for k in range(num_classes) if rows[k]}
    sources = sorted(set(cells.sources))
    per_source = {src: float(np.mean(pred[[s == src for s in cells.sources]]
                                     == truth[[s == src for s in cells.sources]]))
                  for src in sources}
    return {"n": int(len(truth)), "accuracy": float(np.mean(pred == truth)) if len(truth) else
            float("nan"), "balanced_accuracy": float(np.mean(list(recall.values())))
            if recall else float("nan"), "recall": recall, "per_source": per_source,
            "confusion": confusion.tolist()}


def mean_nll(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of ``labels`` under softmax(``logits``)."""
    z = logits - logits.max(1, keepdims=True)
    return float(np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(len(labels)), labels]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The softmax temperature minimising the negative log-likelihood (grid 0.25..4)."""
    if len(labels) == 0:
        return 1.0
    best, best_t = float("inf"), 1.0
    for t in np.exp(np.linspace(np.log(0.25), np.log(4.0), 81)):
        nll = mean_nll(logits / t, labels)
        if nll < best:
            best, best_t = nll, float(t)
    return best_t


def _balanced_draw(labels: np.ndarray, rng, n: int) -> np.ndarray:
    classes = np.unique(labels)
    by_class = {c: np.flatnonzero(labels == c) for c in classes}
    picks = rng.choice(classes, n)
    return np.array([rng.choice(by_class[c]) for c in picks])


def train_classifier_steps(train: CellSet, select: CellSet, classes, config=ClassifierConfig(),
                           *, initial_state=None, should_stop=lambda: False,
                           keep_states=None):
    """Train; yields Notice/Batch/Epoch events, returns a :class:`ClassifierResult`.

    ``classes``: the class table (list of ``{"code", "name", "color"}``), index i <->
    ``classes[i]``.  Raises ``ValueError`` for no labelled cells or only one class.
    ``keep_states``: a list that gets ``(weights, report)`` after every epoch: a copy of
    the weights and the epoch's score on ``select`` (for cross-validation, which chooses
    the epoch over all folds).
    """
    import torch

    from ...inference.precision import resolve_precision
    from ...models.cell_classifier import create_classifier
    from ...models.pretrained import PretrainedUnavailableError

    class_table_of(train, classes)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = create_classifier(config.architecture, num_classes=len(classes),
                              crop_size=config.crop_size)
    if initial_state is not None:
        from ...models.cell_classifier import first_member_state

        state = first_member_state(initial_state)
        model.load_state_dict(state)
        yield NoticeEvent("starting from the given classifier's weights" + (
            " (the first model of its ensemble)" if state is not initial_state else ""))
    elif config.imagenet:
        try:
            model.load_imagenet()
            yield NoticeEvent("backbone initialised from ImageNet")
        except PretrainedUnavailableError as exc:
            yield NoticeEvent(f"{exc}; the backbone starts from random weights")
    model.precision = resolve_precision(config.precision, "cpu", config.architecture, "training")
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    total = config.epochs * config.steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, config.lr, total_steps=total,
                                                pct_start=0.15)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    from ...inference.precision import autocast

    best = (-float("inf"), 0, {}, copy.deepcopy(model.state_dict()))
    history, stopped, since, t0 = [], "finished", 0, time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        model.train()
        losses, t_epoch = [], time.perf_counter()
        for step in range(1, config.steps_per_epoch + 1):
            idx = _balanced_draw(train.labels, rng, config.batch_size)
            x = torch.from_numpy(augment_crops(train.crops[idx], rng))
            x = x.contiguous(memory_format=torch.channels_last)
            y = torch.from_numpy(train.labels[idx])
            with autocast(model.precision):
                logits = model(x)
            loss = loss_fn(logits.float(), y)
            if not torch.isfinite(loss):
                stopped = "non-finite loss"
                yield NoticeEvent(f"non-finite loss at epoch {epoch}, step {step}: stopped; "
                                  f"the best weights so far (epoch {best[1]}) are kept")
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            yield BatchEvent(epoch, step, config.steps_per_epoch, losses[-1], {})
            if should_stop():
                stopped = "user"
                break
        if stopped == "non-finite loss":
            break
        report = classifier_scores(predict_logits(model, select.crops), select, len(classes)) \
            if len(select) else {}
        score = (report["accuracy"] + report["balanced_accuracy"]) / 2 if report \
            else -float(np.mean(losses))
        if keep_states is not None:
            keep_states.append(({k: v.detach().clone() for k, v in model.state_dict().items()},
                                report))
        improved = score > best[0]
        if improved:
            best, since = (score, epoch, report, copy.deepcopy(model.state_dict())), 0
        else:
            since += 1
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else None,
                        "score": score})
        yield EpochEvent(epoch, history[-1]["train_loss"], report, score, improved,
                         time.perf_counter() - t_epoch)
        if stopped == "user" or since >= config.patience:
            stopped = "early-stopping" if stopped != "user" else stopped
            break
    model.load_state_dict(best[3])
    temperature = 1.0
    if len(select):
        temperature = fit_temperature(predict_logits(model, select.crops), select.labels)
    model.temperature.fill_(temperature)
    model.eval()
    return ClassifierResult(model, best[1], best[0], best[2], temperature, history, stopped,
                            time.perf_counter() - t0, asdict(config))
